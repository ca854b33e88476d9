# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One module body for the file-based ACLs and maps of a running HAProxy (haproxy_acl, haproxy_map)."""

from __future__ import annotations

import os

from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import RuntimeAPIError


def converge_running_entries(module, what: str, wanted, *, read, replace, as_lines) -> None:
    """Bring the running worker's `what` (ACL, map) loaded from params' path to `wanted`; exit the module.

    `read(socket, path)` gives the running entries (None if the worker loads nothing from the path),
    `replace(socket, path, wanted)` swaps them at once, `as_lines(entries)` is the diff's text.
    """
    path, socket_path = module.params["path"], module.params["admin_socket"]
    empty = type(wanted)()
    if not os.path.exists(socket_path):
        module.exit_json(changed=False, loaded=False, before=empty, after=wanted, msg=f"{socket_path} does not exist")
    try:
        before = read(socket_path, path)
        if before is None:
            module.exit_json(changed=False, loaded=False, before=empty, after=wanted)
        changed = before != wanted
        if changed and not module.check_mode:
            replace(socket_path, path, wanted)
            after = read(socket_path, path) or empty
            if after != wanted:
                module.fail_json(msg=f"HAProxy's {what} {path} holds {after} after the update, not {wanted}")
    except RuntimeAPIError as e:
        module.fail_json(msg=f"Cannot update the running {what} {path}: {e}")
    result = {"changed": changed, "loaded": True, "before": before, "after": wanted}
    if module._diff:
        result["diff"] = {"before": as_lines(before), "after": as_lines(wanted)}
    module.exit_json(**result)

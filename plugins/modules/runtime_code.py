#!/usr/bin/python
# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: runtime_code
short_description: Install the collection's runtime code on a balancer, for the programs that run without Ansible
version_added: 0.2.0
description:
  - Writes the collection's C(module_utils) (the reconcile job, the metrics exporter, the HAProxy runtime client,
    the discovery sources) under O(dest), laid out as C(ansible_collections/rtmpedge/balancer/plugins/module_utils),
    so that C(python3) with O(dest) on its path runs them. Files that are already the same are left alone; files
    of an older release that this one no longer has are removed.
  - The code comes from this module's own payload (Ansible ships a module with the module_utils it imports), so
    the whole tree is installed in one task, with one connection to the host, instead of one copy per file.
author:
  - rtmpedge maintainers (@rtmpedge)
options:
  dest:
    description: Where the tree goes.
    type: path
    default: /usr/local/lib/rtmpedge
attributes:
  check_mode:
    description: Says what would change.
    support: full
  diff_mode:
    description: The list of changed files says it.
    support: none
"""

EXAMPLES = r"""
- name: Install the code the reconcile job and the metrics exporter run
  rtmpedge.balancer.runtime_code:
    dest: /usr/local/lib/rtmpedge
"""

RETURN = r"""
changed_files:
  description: Files written or removed, relative to the module_utils directory.
  returned: always
  type: list
  elements: str
  sample: [reconcile.py, discovery/static.py]
path:
  description: The module_utils directory on the host.
  returned: always
  type: str
  sample: /usr/local/lib/rtmpedge/ansible_collections/rtmpedge/balancer/plugins/module_utils
"""

import importlib.resources
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

_PACKAGE = "ansible_collections.rtmpedge.balancer.plugins.module_utils"


def _shipped() -> None:
    """Never called. Ansible ships a module with the module_utils its source imports (anywhere in the
    file): these imports name every file of the runtime code, which the module then installs."""
    from ansible_collections.rtmpedge.balancer.plugins.module_utils import (  # noqa: F401, PLC0415
        apply_lock,
        backend_sync,
        balancer_metrics,
        haproxy_config,
        haproxy_runtime,
        haproxy_service,
        haproxy_settings,
        media_server,
        pem_bundle,
        reconcile,
        reconcile_memo,
        return_paths,
        runtime_entries,
        scale_guard,
    )
    from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery import (  # noqa: F401, PLC0415
        aws,
        common,
        dns_srv,
        docker_source,
        http_json,
        registry,
        sources,
        static,
    )


def _tree(folder=None, prefix: str = "") -> dict[str, bytes]:
    """Every .py file of the runtime code this module was shipped with: {relative path: content}."""
    folder = folder or importlib.resources.files(_PACKAGE)
    found = {}
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name != "__pycache__":
            found.update(_tree(entry, f"{prefix}{entry.name}/"))
        elif entry.name.endswith(".py"):
            found[prefix + entry.name] = entry.read_bytes()
    return found


def _write(path: str, content: bytes) -> None:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".rtmpedge-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def main():
    module = AnsibleModule(
        argument_spec={"dest": {"type": "path", "default": "/usr/local/lib/rtmpedge"}}, supports_check_mode=True
    )
    root = os.path.join(module.params["dest"], *_PACKAGE.split("."))
    try:
        wanted = _tree()
    except (OSError, ModuleNotFoundError) as e:
        module.fail_json(msg=f"cannot read the runtime code this module was shipped with: {e}")
    if "reconcile.py" not in wanted:
        module.fail_json(msg=f"this module was shipped without the collection's runtime code (found {sorted(wanted)})")
    changed = []
    for relative, content in wanted.items():
        path = os.path.join(root, relative)
        try:
            with open(path, "rb") as handle:
                same = handle.read() == content
        except OSError:
            same = False
        if not same:
            changed.append(relative)
            if not module.check_mode:
                _write(path, content)
    # Files an older release installed and this one no longer has.
    for folder, _dirs, names in os.walk(root):
        for name in names:
            relative = os.path.relpath(os.path.join(folder, name), root)
            if name.endswith(".py") and relative not in wanted:
                changed.append(relative)
                if not module.check_mode:
                    os.unlink(os.path.join(folder, name))
    module.exit_json(changed=bool(changed), changed_files=sorted(changed), path=root)


if __name__ == "__main__":
    main()

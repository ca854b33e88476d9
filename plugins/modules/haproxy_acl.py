#!/usr/bin/python
# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_acl
short_description: Make a running HAProxy's file-based ACL hold exactly the given patterns, without a reload
version_added: 0.1.0
description:
  - For ACLs that HAProxy loads from a file (C(src -f /etc/haproxy/publishers-deny.acl)), such as the haproxy
    role's publisher allow and deny lists. The role writes the file; this module brings the running worker
    to the same patterns through the runtime API (C(prepare acl), C(add acl), C(commit acl)), so the change
    applies to new connections at once, in one step, and no stream is cut.
  - When the running worker loads no ACL from O(path) (HAProxy is not running, or the rule using the file
    comes with a configuration change that is still to be reloaded), nothing is done and RV(loaded) is false;
    the next start or reload reads the file.
extends_documentation_fragment:
  - rtmpedge.balancer.haproxy_runtime
author:
  - rtmpedge maintainers (@rtmpedge)
options:
  path:
    description: The file the ACL was loaded from, exactly as the configuration names it.
    type: path
    required: true
  entries:
    description: The patterns, e.g. addresses or CIDR blocks for a C(src) ACL. Order does not matter.
    type: list
    elements: str
    required: true
attributes:
  check_mode:
    description: Reports whether the running ACL differs, changes nothing.
    support: full
  diff_mode:
    description: Returns the running patterns before and after.
    support: full
"""

EXAMPLES = r"""
- name: Refuse publishers from a network at once, without a reload
  rtmpedge.balancer.haproxy_acl:
    path: /etc/haproxy/publishers-deny.acl
    entries:
      - 203.0.113.0/24
      - 198.51.100.7
"""

RETURN = r"""
loaded:
  description: Whether the running worker loads an ACL from O(path).
  returned: always
  type: bool
before:
  description: The running patterns before the change (sorted); empty when RV(loaded) is false.
  returned: always
  type: list
  elements: str
after:
  description: The running patterns after the change (sorted).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import acl_entries, replace_acl
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_settings import argument_spec
from ansible_collections.rtmpedge.balancer.plugins.module_utils.runtime_entries import converge_running_entries


def _running(socket_path: str, path: str) -> list[str] | None:
    entries = acl_entries(socket_path, path)
    return None if entries is None else sorted(set(entries))


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "entries": {"type": "list", "elements": "str", "required": True},
            **argument_spec(),
        },
        supports_check_mode=True,
    )
    wanted = sorted({e.strip() for e in module.params["entries"] if e.strip()})
    converge_running_entries(
        module, "ACL", wanted, read=_running, replace=replace_acl, as_lines=lambda entries: "\n".join(entries) + "\n"
    )


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_map
short_description: Make a running HAProxy's file-based map hold exactly the given keys and values, without a reload
version_added: 0.2.0
description:
  - For maps that HAProxy loads from a file (C(map(/etc/haproxy/acme-challenges.map))), such as the haproxy role's
    ACME HTTP-01 challenges. The caller writes the file; this module brings the running worker to the same entries
    through the runtime API (C(prepare map), C(add map), C(commit map)), in one step, so new requests see them at
    once and no connection is cut.
  - When the running worker loads no map from O(path) (HAProxy is not running, or the configuration using the file
    is still to be reloaded), nothing is done and RV(loaded) is false; the next start or reload reads the file.
extends_documentation_fragment:
  - rtmpedge.balancer.haproxy_runtime
author:
  - rtmpedge maintainers (@rtmpedge)
options:
  path:
    description: The file the map was loaded from, exactly as the configuration names it.
    type: path
    required: true
  entries:
    description:
      - Keys and their values. Neither may be empty or hold white space (the runtime API separates them by a space).
    type: dict
    required: true
attributes:
  check_mode:
    description: Reports whether the running map differs, changes nothing.
    support: full
  diff_mode:
    description: Returns the running entries before and after.
    support: full
"""

EXAMPLES = r"""
- name: Answer an ACME HTTP-01 challenge from the running HAProxy
  rtmpedge.balancer.haproxy_map:
    path: /etc/haproxy/acme-challenges.map
    entries:
      LoqXcYV8q5ONbJQx: LoqXcYV8q5ONbJQx.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI
"""

RETURN = r"""
loaded:
  description: Whether the running worker loads a map from O(path).
  returned: always
  type: bool
before:
  description: The running entries before the change; empty when RV(loaded) is false.
  returned: always
  type: dict
after:
  description: The running entries after the change.
  returned: always
  type: dict
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import map_entries, replace_map
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_settings import argument_spec
from ansible_collections.rtmpedge.balancer.plugins.module_utils.runtime_entries import converge_running_entries

_WORD = re.compile(r"\S+")


def _as_lines(entries: dict[str, str]) -> str:
    return "".join(f"{k} {v}\n" for k, v in sorted(entries.items()))


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "entries": {"type": "dict", "required": True},
            **argument_spec(),
        },
        supports_check_mode=True,
    )
    wanted = {str(k): str(v) for k, v in module.params["entries"].items()}
    bad = sorted(k for k, v in wanted.items() if not _WORD.fullmatch(k) or not _WORD.fullmatch(v))
    if bad:
        module.fail_json(msg=f"map entries must be one word each for key and value; not so for: {', '.join(bad)}")
    converge_running_entries(module, "map", wanted, read=map_entries, replace=replace_map, as_lines=_as_lines)


if __name__ == "__main__":
    main()

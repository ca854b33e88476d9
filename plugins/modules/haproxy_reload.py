#!/usr/bin/python
# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_reload
short_description: Reload HAProxy seamlessly and verify that the new configuration took over
version_added: 0.1.0
description:
  - Saves the servers' runtime state (drain, maintenance, weights) to the server-state file, reloads
    the systemd service of HAProxy in master-worker mode, then waits until the master reports the reload.
  - A reload never cuts a connection. The listeners pass to a new worker; live streams stay on the old
    worker until they end (or until C(hard-stop-after)).
  - systemd reports success even when the master could not load the new configuration (for example a
    port already in use). This module asks the master instead, and fails with HAProxy's own C(ALERT)
    lines when the reload failed; the old worker then keeps serving with the previous configuration.
author:
  - rtmpedge maintainers (@rtmpedge)
options:
  service:
    description: The systemd unit of HAProxy.
    type: str
    default: haproxy
  master_socket:
    description: The master CLI socket (C(haproxy -S)); Debian's unit creates it.
    type: path
    default: /run/haproxy-master.sock
  admin_socket:
    description: The runtime API socket with admin level, used to save the server state.
    type: path
    default: /run/haproxy/admin.sock
  server_state_file:
    description:
      - Where to save C(show servers state) before reloading, for C(load-server-state-from-file).
      - Empty to skip saving.
    type: path
    default: ""
  timeout:
    description: Seconds to wait for the master to report the reload.
    type: int
    default: 30
attributes:
  check_mode:
    description: Reports the reload it would do, without saving state or reloading.
    support: full
  diff_mode:
    description: No diff is produced.
    support: none
"""

EXAMPLES = r"""
- name: Reload HAProxy and verify that the new worker runs
  rtmpedge.balancer.haproxy_reload:
    server_state_file: /var/lib/haproxy/server-state
"""

RETURN = r"""
master_pid:
  description: PID of the HAProxy master.
  returned: success
  type: int
  sample: 166
worker_pid:
  description: PID of the new worker, which now takes the new connections.
  returned: success
  type: int
  sample: 222
old_workers:
  description: Workers of earlier configurations still alive because connections remain on them.
  returned: success
  type: list
  elements: int
  sample: [168]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import RuntimeAPIError, show_proc
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_service import ReloadError, reload


def main():
    module = AnsibleModule(
        argument_spec={
            "service": {"type": "str", "default": "haproxy"},
            "master_socket": {"type": "path", "default": "/run/haproxy-master.sock"},
            "admin_socket": {"type": "path", "default": "/run/haproxy/admin.sock"},
            "server_state_file": {"type": "path", "default": ""},
            "timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    params = module.params
    if module.check_mode:
        try:
            before = show_proc(params["master_socket"])
        except RuntimeAPIError as e:
            module.fail_json(msg=f"cannot read HAProxy's master CLI: {e}")
        module.exit_json(
            changed=True, master_pid=before["master"]["pid"], old_workers=sorted(w["pid"] for w in before["workers"])
        )
    try:
        result = reload(
            params["service"],
            master_socket=params["master_socket"],
            admin_socket=params["admin_socket"],
            state_file=params["server_state_file"],
            timeout=params["timeout"],
        )
    except ReloadError as e:
        module.fail_json(msg=str(e), alerts=e.alerts)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()

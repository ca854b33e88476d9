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

import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import (
    RuntimeAPIError,
    send_command,
    show_proc,
    wait_for_reload,
)


def read_proc(module, path):
    try:
        return show_proc(path)
    except RuntimeAPIError as e:
        module.fail_json(msg=f"cannot read HAProxy's master CLI: {e}")
    return None  # not reached: fail_json exits


def save_server_state(module, admin_socket, path):
    """Write `show servers state` atomically; warn (not fail) when it cannot be read."""
    try:
        state = send_command(admin_socket, "show servers state")
    except RuntimeAPIError as e:
        module.warn(f"server state not saved, drain/maint states set at runtime may be lost: {e}")
        return
    if not state.startswith("1\n"):
        module.warn(f"server state not saved, unexpected answer: {state[:120]!r}")
        return
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".server-state.")
    with os.fdopen(fd, "w") as handle:
        handle.write(state)
    os.chmod(tmp, 0o644)  # read by a master that may run as the haproxy user
    os.replace(tmp, path)


def journal_alerts(module, service, since):
    """HAProxy's ALERT lines (and the master's 'Loading failure') logged since a timestamp."""
    journalctl = module.get_bin_path("journalctl")
    if not journalctl:
        return []
    _rc, out, _err = module.run_command(
        [journalctl, "-u", service, "--since", f"@{int(since) - 1}", "-o", "cat", "--no-pager"]
    )
    return [line.strip() for line in out.splitlines() if "[ALERT]" in line or "Loading failure" in line]


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
    before = read_proc(module, params["master_socket"])
    old_pids = {w["pid"] for w in before["workers"]}
    if module.check_mode:
        module.exit_json(changed=True, master_pid=before["master"]["pid"], old_workers=sorted(old_pids))

    if params["server_state_file"]:
        save_server_state(module, params["admin_socket"], params["server_state_file"])

    started = time.time()
    systemctl = module.get_bin_path("systemctl", required=True)
    rc, out, err = module.run_command([systemctl, "reload", params["service"]])
    if rc != 0:
        alerts = journal_alerts(module, params["service"], started)
        module.fail_json(
            msg="HAProxy reload refused: " + ("; ".join(alerts) or (err or out).strip()),
            alerts=alerts,
            rc=rc,
        )

    outcome, after = wait_for_reload(params["master_socket"], before, params["timeout"])
    if outcome == "timeout":
        module.fail_json(
            msg=f"the HAProxy master did not report a reload with a new worker within {params['timeout']}s",
            alerts=journal_alerts(module, params["service"], started),
            show_proc=after,
        )
    if outcome == "failed":
        alerts = journal_alerts(module, params["service"], started)
        module.fail_json(
            msg="HAProxy could not load the new configuration; the previous worker keeps serving: "
            + ("; ".join(alerts) or "see journalctl -u " + params["service"]),
            alerts=alerts,
        )
    new_workers = [w for w in after["workers"] if w["pid"] not in old_pids]
    module.exit_json(
        changed=True,
        master_pid=after["master"]["pid"],
        worker_pid=min(new_workers, key=lambda w: w["reloads"])["pid"],
        old_workers=sorted(w["pid"] for w in after["workers"] if w["pid"] in old_pids),
    )


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_server
short_description: Drain, pause, re-weight, add or delete one media server on a running HAProxy
version_added: 0.1.0
description:
  - Works on the runtime API only; nothing is reloaded and no stream is cut.
  - O(wait_for=no_sessions) waits until the server carries no session in any worker, old workers of
    earlier reloads included (they are asked through the master CLI), or fails after O(timeout) naming
    the sessions still open.
  - Runtime changes last until the next reload only if the file says the same; the state itself
    (drain, maintenance, weight) survives reloads through the server-state file the haproxy role sets up.
extends_documentation_fragment:
  - rtmpedge.balancer.haproxy_runtime
  - rtmpedge.balancer.haproxy_runtime.config
author:
  - rtmpedge maintainers (@rtmpedge)
options:
  name:
    description: The server's name in the backend (the media server's inventory host name).
    type: str
    required: true
  state:
    description:
      - V(ready) takes new streams, V(drain) takes none but keeps the live ones, V(maint) takes none
        and stops health checks, V(absent) deletes the server (it must have no session).
      - Omit to change only the weight, or to read the server's sessions.
    type: str
    choices: [ready, drain, maint, absent]
  weight:
    description: New weight (0-256).
    type: int
  address:
    description: Add the server at this address when it is not in the backend.
    type: str
  port:
    description: Port with O(address).
    type: int
    default: 1935
  server_options:
    description:
      - Options for a server added with O(address); by default those of the backend's C(default-server)
        line in O(config_path), which runtime-added servers do not inherit.
    type: str
  wait_for:
    description: Wait until the server carries no session in any worker.
    type: str
    choices: [no_sessions]
  timeout:
    description: Seconds O(wait_for) waits at most.
    type: int
    default: 3600
attributes:
  check_mode:
    description: Reports what would change; O(wait_for) is not waited for.
    support: full
  diff_mode:
    description: Returns the server's state before and after.
    support: full
"""

EXAMPLES = r"""
- name: Drain media-3 and wait until its last stream ended
  rtmpedge.balancer.haproxy_server:
    name: media-3
    state: drain
    wait_for: no_sessions
    timeout: 7200

- name: Halve a server's share of new streams
  rtmpedge.balancer.haproxy_server:
    name: media-1
    weight: 5
"""

RETURN = r"""
server:
  description: The server's state after the change (absent when deleted).
  returned: always
  type: dict
  sample: {"address": "10.0.0.3", "port": 1935, "state": "drain", "weight": 10, "sessions": 2}
sessions:
  description: The server's sessions in each worker, by worker PID.
  returned: always
  type: dict
  sample: {"4121": 2, "3980": 1}
total_sessions:
  description: Sum of RV(sessions).
  returned: always
  type: int
commands:
  description: The runtime API commands sent (or, in check mode, that would be sent).
  returned: always
  type: list
  elements: str
  sample: ["set server rtmp_media/media-3 state drain"]
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_config import ConfigError, read_backend
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import (
    RuntimeAPIError,
    add_server_commands,
    backend_state,
    cmd_set_state,
    cmd_set_weight,
    remove_server_commands,
    run,
    sessions_by_worker,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_settings import argument_spec


def sessions(module):
    p = module.params
    counts = sessions_by_worker(p["master_socket"], p["backend"]).get(p["name"], {})
    return {str(pid): n for pid, n in counts.items()}


def commands_for(module, current):
    """The runtime commands the parameters ask for, given the server's current state (None: absent)."""
    p = module.params
    ref = f"{p['backend']}/{p['name']}"
    if current is None and (not p["address"] or p["state"] == "absent"):
        if p["state"] == "ready" or p["weight"] is not None:
            module.fail_json(msg=f"{ref} is not in the running backend; give address to add it")
        # Nothing to take out of rotation here; old workers may still count its sessions.
        module.warn(f"{ref} is not in the running backend")
        return []
    if current is None:
        options = p["server_options"]
        if options is None:
            try:
                with open(p["config_path"]) as handle:
                    options = read_backend(handle.read(), p["backend"])["default_server"]
            except (OSError, ConfigError) as e:
                module.fail_json(msg=f"cannot read the default-server options: {e}")
        return add_server_commands(
            ref, p["address"], p["port"], options, weight=p["weight"], state=p["state"] or "ready"
        )
    commands = []
    if p["weight"] is not None and current["weight"] != p["weight"]:
        commands.append(cmd_set_weight(ref, p["weight"]))
    if p["state"] == "absent":
        commands += remove_server_commands(ref, current["state"])
    elif p["state"] and current["state"] != p["state"]:
        commands.append(cmd_set_state(ref, p["state"]))
    return commands


def wait_for_no_sessions(module):
    p = module.params
    deadline = time.monotonic() + p["timeout"]
    while True:
        counts = sessions(module)
        if sum(counts.values()) == 0:
            return counts
        if time.monotonic() > deadline:
            detail = ", ".join(f"worker {pid}: {n}" for pid, n in sorted(counts.items()) if n)
            module.fail_json(
                msg=f"{p['backend']}/{p['name']} still carries {sum(counts.values())} session(s) after "
                f"{p['timeout']}s ({detail}); it takes no new stream, but is not safe to terminate yet",
                sessions=counts,
                total_sessions=sum(counts.values()),
            )
        time.sleep(1)


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["ready", "drain", "maint", "absent"]},
            "weight": {"type": "int"},
            "address": {"type": "str"},
            "port": {"type": "int", "default": 1935},
            "server_options": {"type": "str"},
            "wait_for": {"type": "str", "choices": ["no_sessions"]},
            "timeout": {"type": "int", "default": 3600},
            **argument_spec("admin_socket", "master_socket", "backend", "config_path"),
        },
        supports_check_mode=True,
    )
    p = module.params
    if p["weight"] is not None and not 0 <= p["weight"] <= 256:
        module.fail_json(msg=f"weight must be 0..256, got {p['weight']}")
    try:
        before = backend_state(p["admin_socket"], p["backend"]).get(p["name"])
        commands = commands_for(module, before)
        if p["state"] == "absent" and before and before["sessions"]:
            module.fail_json(
                msg=f"{p['backend']}/{p['name']} still carries {before['sessions']} session(s); "
                "drain it and wait for no_sessions before deleting it"
            )
        if not module.check_mode:
            for command, expect in commands:
                run(p["admin_socket"], command, expect)
            if p["wait_for"] == "no_sessions":
                wait_for_no_sessions(module)
        after = before if module.check_mode else backend_state(p["admin_socket"], p["backend"]).get(p["name"])
        counts = sessions(module)
    except RuntimeAPIError as e:
        module.fail_json(msg=str(e))
    module.exit_json(
        changed=bool(commands),
        server=after or {},
        sessions=counts,
        total_sessions=sum(counts.values()),
        commands=[command for command, _expect in commands],
        diff={"before": before or {}, "after": after or {}},
    )


if __name__ == "__main__":
    main()

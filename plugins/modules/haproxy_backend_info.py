#!/usr/bin/python
# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_backend_info
short_description: Read a running HAProxy backend's media servers, with their sessions in every worker
version_added: 0.2.0
description:
  - Reads the backend's servers from the runtime API - address, port, admin state (ready, drain, maint),
    health status, weight and maxconn - and counts each server's sessions in every HAProxy worker, old
    workers of earlier reloads included (through the master CLI), since a long stream stays on the worker
    it started on.
  - Changes nothing.
extends_documentation_fragment:
  - rtmpedge.balancer.haproxy_runtime
author:
  - rtmpedge maintainers (@rtmpedge)
options:
  name:
    description: Only this server; the result is then a list of one, or empty when it is not in the backend.
    type: str
attributes:
  check_mode:
    description: Reads in check mode too.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
"""

EXAMPLES = r"""
- name: Read the fleet of this balancer
  rtmpedge.balancer.haproxy_backend_info:
  register: backend

- name: Servers that still carry streams
  ansible.builtin.debug:
    msg: "{{ backend.servers | selectattr('sessions', 'gt', 0) | map(attribute='name') | list }}"

- name: Is media-3 idle on this balancer?
  rtmpedge.balancer.haproxy_backend_info:
    name: media-3
  register: media3
  failed_when: media3.servers | map(attribute='sessions') | sum > 0
"""

RETURN = r"""
servers:
  description: The backend's servers, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Server name.
      type: str
      sample: media-3
    address:
      description: Address, or the host name of a server given by name.
      type: str
      sample: 10.0.1.13
    port:
      description: Port.
      type: int
      sample: 1935
    state:
      description: Admin state, one of ready, drain, maint.
      type: str
      sample: ready
    status:
      description: Health status as HAProxy reports it, such as UP, DOWN or MAINT.
      type: str
      sample: UP
    weight:
      description: Current weight.
      type: int
      sample: 10
    maxconn:
      description: Streams the server takes at most, 0 for no limit.
      type: int
      sample: 200
    sessions:
      description: Sessions in all workers together.
      type: int
      sample: 3
    sessions_by_worker:
      description: Sessions per worker PID; workers of earlier reloads are included.
      type: dict
      sample: {"1071": 2, "4035": 1}
workers:
  description: HAProxy's worker processes, newest first as the master lists them.
  returned: always
  type: list
  elements: dict
  sample: [{"pid": 4035, "reloads": 0, "uptime": "0d00h02m10s", "version": "2.6.12-1+deb12u4"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import (
    RuntimeAPIError,
    backend_state,
    sessions_by_worker,
    show_proc,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_settings import argument_spec


def read_servers(params: dict) -> tuple[list[dict], list[dict]]:
    """The backend's servers with sessions summed over every worker, and the workers."""
    running = backend_state(params["admin_socket"], params["backend"])
    by_worker = sessions_by_worker(params["master_socket"], params["backend"])
    servers = []
    for name in sorted(running):
        if params["name"] is not None and name != params["name"]:
            continue
        have = running[name]
        counts = by_worker.get(name, {})
        servers.append(
            {
                "name": name,
                "address": have["address"],
                "port": have["port"],
                "state": have["state"],
                "status": have["status"],
                "weight": have["weight"],
                "maxconn": have["maxconn"],
                "sessions": sum(counts.values()) if counts else have["sessions"],
                "sessions_by_worker": {str(pid): n for pid, n in sorted(counts.items())},
            }
        )
    return servers, show_proc(params["master_socket"])["workers"]


def main():
    module = AnsibleModule(
        argument_spec={"name": {"type": "str"}, **argument_spec()},
        supports_check_mode=True,
    )
    try:
        servers, workers = read_servers(module.params)
    except RuntimeAPIError as e:
        module.fail_json(msg=f"cannot read backend {module.params['backend']}: {e}")
    module.exit_json(changed=False, servers=servers, workers=workers)


if __name__ == "__main__":
    main()

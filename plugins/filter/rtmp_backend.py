# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters turning the media_servers group into HAProxy backend data."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_config import server_line
from ansible_collections.rtmpedge.balancer.plugins.module_utils.media_server import backend_plan, derived_maxconn


def rtmp_backend_plan(hosts, hostvars):
    """{'servers': [...], 'problems': [...]} for the given hosts."""
    if hosts is None:
        hosts = []
    if isinstance(hosts, str):
        raise AnsibleFilterError(f"rtmp_backend_plan expects a list of hosts, got the string {hosts!r}")
    try:
        return backend_plan(list(hosts), hostvars)
    except (TypeError, AttributeError) as e:
        raise AnsibleFilterError(f"rtmp_backend_plan: cannot read the media servers' variables: {e}") from e


def rtmp_derived_maxconn(servers, per_server_fallback=200, floor=1024):
    """Frontend maxconn derived from the fleet's capacity."""
    return derived_maxconn(servers, int(per_server_fallback), int(floor))


def rtmp_server_line(server):
    """A server entry of rtmp_backend_plan as its haproxy.cfg line (the reconcile job writes the same)."""
    try:
        return server_line(server)
    except (KeyError, TypeError) as e:
        raise AnsibleFilterError(f"rtmp_server_line: not a server entry of rtmp_backend_plan: {server!r}") from e


class FilterModule:
    def filters(self):
        return {
            "rtmp_backend_plan": rtmp_backend_plan,
            "rtmp_derived_maxconn": rtmp_derived_maxconn,
            "rtmp_server_line": rtmp_server_line,
        }

# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: a media server's return paths to the balancers (rtmpedge.balancer.media_route)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.rtmpedge.balancer.plugins.module_utils.return_paths import ReturnPathError, return_paths


def rtmp_return_paths(balancer_hosts, hostvars, media_address, mark_base=256, table_base=200):
    """Paths for the balancer hosts, from their facts or their media_route_* overrides."""
    balancers = []
    for host in balancer_hosts or []:
        host_vars = hostvars[host]
        balancers.append(
            {
                "name": host,
                "id": host_vars.get("rtmp_balancer_id"),
                "facts": host_vars.get("ansible_facts", {}),
                "address": host_vars.get("rtmp_balancer_media_address"),
                "mac": host_vars.get("rtmp_balancer_media_mac"),
            }
        )
    try:
        return return_paths(str(media_address), balancers, int(mark_base), int(table_base))
    except (ReturnPathError, ValueError) as e:
        raise AnsibleFilterError(f"rtmp_return_paths: {e}") from e


class FilterModule:
    def filters(self):
        return {"rtmp_return_paths": rtmp_return_paths}

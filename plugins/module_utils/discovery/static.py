# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source `static`: media servers listed in the configuration."""

from __future__ import annotations

from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import (
    DiscoveryError,
    MediaServer,
    make_server,
)


def discover(label: str, options: dict) -> list[MediaServer]:
    servers = options.get("servers")
    if not isinstance(servers, list):
        raise DiscoveryError(label, f"'servers' must be a list of servers, got {type(servers).__name__}")
    found = []
    for index, item in enumerate(servers):
        if not isinstance(item, dict) or "address" not in item:
            raise DiscoveryError(label, f"servers[{index}] must be a mapping with an 'address', got {item!r}")
        found.append(
            make_server(
                label,
                item.get("name"),
                item["address"],
                port=item.get("port"),
                weight=item.get("weight"),
                maxconn=item.get("maxconn"),
                state=item.get("state"),
                defaults=options,
            )
        )
    return found

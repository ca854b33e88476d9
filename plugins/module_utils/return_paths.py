# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Return paths of a media server to the balancers that proxy to it transparently.

Each balancer gets a stable id, a packet mark and a routing table; its address and
MAC address are those of its interface on the media server's subnet. Pure Python.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping


class ReturnPathError(ValueError):
    """A balancer has no usable interface on the media server's subnet, or ids clash."""


def interfaces_of(facts: Mapping) -> list[dict]:
    """IPv4 interfaces from Ansible facts: [{'name', 'address', 'network', 'mac'}]."""
    found = []
    for name in facts.get("interfaces", []):
        data = facts.get(str(name).replace("-", "_"), {}) or {}
        ipv4 = data.get("ipv4") or {}
        if not ipv4.get("address") or not ipv4.get("netmask"):
            continue
        network = ipaddress.ip_network(f"{ipv4['address']}/{ipv4['netmask']}", strict=False)
        found.append({"name": name, "address": ipv4["address"], "network": network, "mac": data.get("macaddress", "")})
    return found


def return_paths(media_address: str, balancers: Iterable[Mapping], mark_base: int, table_base: int) -> list[dict]:
    """One path per balancer, in balancer id order.

    balancers: [{'name', 'id' (int or None), 'facts', 'address' (optional), 'mac' (optional)}].
    A balancer without an explicit id gets its 1-based position in name order; set ids
    explicitly to keep marks stable when balancers come and go.
    """
    media_ip = ipaddress.ip_address(media_address)
    ordered = sorted(balancers, key=lambda b: str(b["name"]))
    paths = []
    for position, balancer in enumerate(ordered, start=1):
        ident = int(balancer.get("id") or position)
        address, mac = balancer.get("address"), balancer.get("mac")
        if not (address and mac):
            on_subnet = [i for i in interfaces_of(balancer.get("facts") or {}) if media_ip in i["network"]]
            if not on_subnet:
                raise ReturnPathError(
                    f"balancer {balancer['name']} has no interface on the subnet of media server address "
                    f"{media_address} (gather its facts, or set its address and MAC explicitly)"
                )
            address, mac = address or on_subnet[0]["address"], mac or on_subnet[0]["mac"]
        paths.append(
            {
                "name": str(balancer["name"]),
                "id": ident,
                "address": str(address),
                "mac": str(mac).lower(),
                "mark": mark_base + ident,
                "table": table_base + ident,
            }
        )
    ids = [p["id"] for p in paths]
    if len(set(ids)) != len(ids):
        raise ReturnPathError(f"balancer ids clash: {sorted(ids)}")
    return sorted(paths, key=lambda p: p["id"])

# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: the balancers that share stick tables (HAProxy `peers`), with the address each one listens on."""

from __future__ import annotations

import ipaddress
import re

# A peer's name becomes a `server` line in the peers section and `localpeer`.
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")


def _address_problem(host: str, address: str) -> str | None:
    if not address:
        return f"{host}: no address for peers (set haproxy_peers_address, or gather its facts)"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return f"{host}: haproxy_peers_address {address!r} is not an IP address"
    if parsed.is_unspecified or parsed.is_multicast:
        return f"{host}: haproxy_peers_address {address} is not one host's address"
    if parsed.is_global:
        return f"{host}: haproxy_peers_address {address} is public; peers listen on the private network only"
    return None


def rtmp_peers(hosts, hostvars, port):
    """{peers: [{name, address}], problems: [...]} for the group's hosts.

    A host's address is its haproxy_peers_address, else the IPv4 address of its default route.
    """
    peers, problems = [], []
    for host in hosts or []:
        host_vars = hostvars[host]
        address = str(host_vars.get("haproxy_peers_address") or "")
        if not address:
            address = str(((host_vars.get("ansible_facts") or {}).get("default_ipv4") or {}).get("address") or "")
        if not _NAME.match(host):
            problems.append(f"{host}: not usable as a peer name (letters, digits, '_', '.', ':', '-')")
        problem = _address_problem(host, address)
        if problem:
            problems.append(problem)
        peers.append({"name": host, "address": address})
    seen = [p["address"] for p in peers]
    problems += [
        f"{p['name']}: address {p['address']} is used by another peer too"
        for p in peers
        if p["address"] and seen.count(p["address"]) > 1
    ]
    if not 1 <= int(port) <= 65535:
        problems.append(f"haproxy_peers_port must be 1-65535, got {port}")
    return {"peers": peers, "problems": problems}


class FilterModule:
    def filters(self):
        return {"rtmp_peers": rtmp_peers}

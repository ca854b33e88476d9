# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The RTMP backend as data: media-server host vars in, validated server entries out.

One implementation of the inventory contract (rtmp_address, rtmp_port, rtmp_weight,
rtmp_maxconn, rtmp_state), shared by the haproxy role's filter, the modules and the
reconcile job. Pure Python: no Ansible import, so it runs anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

DEFAULT_PORT = 1935
DEFAULT_WEIGHT = 10
MAX_WEIGHT = 256  # HAProxy's limit for server weights
STATES = ("ready", "drain", "maint")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def server_name(host: str) -> str:
    """HAProxy server name for an inventory host (HAProxy allows [A-Za-z0-9_.:-])."""
    return _NAME_UNSAFE.sub("_", str(host))


def as_int(value: object, low: int, high: int | None) -> int | None:
    """The value as an int within [low, high], or None when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    if number < low or (high is not None and number > high):
        return None
    return number


def server_entry(host: str, host_vars: Mapping) -> tuple[dict, list[str]]:
    """One media server's backend entry and the problems found in its variables."""
    problems: list[str] = []
    address = host_vars.get("rtmp_address") or host_vars.get("ansible_host") or host
    address = str(address).strip()
    if not address or any(c.isspace() for c in address):
        problems.append(f"{host}: rtmp_address {address!r} is not an IP address or host name")

    checks = (
        ("rtmp_port", DEFAULT_PORT, 1, 65535),
        ("rtmp_weight", DEFAULT_WEIGHT, 0, MAX_WEIGHT),
        ("rtmp_maxconn", 0, 0, None),
    )
    numbers = {}
    for var, default, low, high in checks:
        raw = host_vars.get(var, default)
        numbers[var] = as_int(raw, low, high)
        if numbers[var] is None:
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            problems.append(f"{host}: {var} must be an integer {bound}, got {raw!r}")

    state = str(host_vars.get("rtmp_state", "ready")).strip().lower()
    if state not in STATES:
        problems.append(f"{host}: rtmp_state must be one of {', '.join(STATES)}, got {state!r}")

    entry = {
        "name": server_name(host),
        "host": str(host),
        "address": address,
        "port": numbers["rtmp_port"],
        "weight": numbers["rtmp_weight"],
        "maxconn": numbers["rtmp_maxconn"],
        "state": state,
    }
    return entry, problems


def backend_plan(hosts: Iterable[str], hostvars: Mapping) -> dict:
    """Servers for the hosts (sorted by name) and every problem found, duplicates included.

    Two hosts pointing at the same address:port would double that server's share of
    streams and break runtime updates keyed by address, so they are a problem too.
    """
    servers: list[dict] = []
    problems: list[str] = []
    seen: dict[tuple[str, int | None], str] = {}
    names: dict[str, str] = {}
    for host in sorted({str(h) for h in hosts}):
        entry, entry_problems = server_entry(host, hostvars.get(host, {}))
        problems += entry_problems
        endpoint = (entry["address"], entry["port"])
        if endpoint in seen:
            problems.append(f"{host}: {entry['address']}:{entry['port']} is also the address of {seen[endpoint]}")
        seen.setdefault(endpoint, host)
        if entry["name"] in names:
            problems.append(f"{host}: server name {entry['name']!r} clashes with {names[entry['name']]}")
        names.setdefault(entry["name"], host)
        servers.append(entry)
    return {"servers": servers, "problems": problems}


def derived_maxconn(servers: Iterable[dict], per_server_fallback: int, floor: int) -> int:
    """Frontend maxconn from the fleet: twice its capacity, never below floor.

    Twice, so that servers added at runtime between reloads still fit; servers
    without a limit count as per_server_fallback streams.
    """
    capacity = sum(s.get("maxconn") or per_server_fallback for s in servers)
    return max(floor, 2 * capacity)

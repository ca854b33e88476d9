# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The media-server contract: what one media server is, its defaults and bounds, and the one check.

A media server is an inventory host with the variables rtmp_address, rtmp_port,
rtmp_weight, rtmp_maxconn and rtmp_state (docs/inventory.md). Discovery sources,
the haproxy role's filter, the modules and the reconcile job all check servers
here, under the same rules, so a value one accepts the others accept too.

Bounds are what HAProxy takes back unchanged: a value it would clamp (a maxconn
of 10**20) would read back different on every run and never converge. Pure Python,
no Ansible import.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DEFAULT_PORT = 1935
DEFAULT_WEIGHT = 10
STATES = ("ready", "drain", "maint")
# (low, high, default) per numeric field. HAProxy: weights 0-256; maxconn is a
# signed 32-bit counter, but a million streams on one media server is already absurd.
BOUNDS = {
    "port": (1, 65535, DEFAULT_PORT),
    "weight": (0, 256, DEFAULT_WEIGHT),
    "maxconn": (0, 1_000_000, 0),
}
MAX_WEIGHT = BOUNDS["weight"][1]
# HAProxy server names: [A-Za-z0-9_.:-]. Long ones are cut and keep a hash, so a
# runtime command stays short and two long names stay different.
MAX_NAME = 64
MAX_ADDRESS = 253
HOST_VARS = {
    "address": "rtmp_address",
    "port": "rtmp_port",
    "weight": "rtmp_weight",
    "maxconn": "rtmp_maxconn",
    "state": "rtmp_state",
}

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_DOTTED = re.compile(r"^[0-9.]+$")


class ContractError(ValueError):
    """A media server's data breaks the contract; the message names the server and the field."""


@dataclass
class MediaServer:
    """One checked media server. `name` is stable (from the source's own id) and safe for HAProxy."""

    name: str
    address: str
    port: int = DEFAULT_PORT
    weight: int = DEFAULT_WEIGHT
    maxconn: int = 0
    state: str = "ready"
    source: str = ""
    meta: dict = field(default_factory=dict)

    def entry(self) -> dict:
        """The backend entry server lines are written from."""
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "weight": self.weight,
            "maxconn": self.maxconn,
            "state": self.state,
        }

    def host_vars(self) -> dict:
        """The inventory host's variables."""
        values = {HOST_VARS[k]: v for k, v in self.entry().items() if k in HOST_VARS}
        return {**values, "rtmp_source": self.source, **self.meta}


def server_name(raw: object) -> str:
    """A HAProxy server name for `raw`: unsafe characters become '_', long names are cut and hashed."""
    text = _NAME_UNSAFE.sub("_", str(raw)) or "_"
    if len(text) <= MAX_NAME:
        return text
    import hashlib  # noqa: PLC0415 - rare; the reconcile job starts every minute without it

    digest = hashlib.sha256(str(raw).encode()).hexdigest()[:10]
    return f"{text[: MAX_NAME - 11]}-{digest}"


def check_address(value: object) -> str | None:
    """The address if it is a usable IP address or a DNS name, else None ('999.1.1.1', '0.0.0.0')."""
    if isinstance(value, str):
        # Fast path for the common case, a canonical IPv4 address (inet_pton takes nothing else):
        # ipaddress would cost ten times as much on every server of a big fleet.
        try:
            packed = socket.inet_pton(socket.AF_INET, value)
        except (OSError, ValueError):  # not IPv4; ValueError: an embedded NUL
            pass
        else:
            unusable = packed in (b"\0\0\0\0", b"\xff\xff\xff\xff") or 224 <= packed[0] <= 239
            return None if unusable else str(value)
    return _check_address_fully(value)


def _check_address_fully(value: object) -> str | None:
    """check_address() without its IPv4 shortcut."""
    text = str(value).strip() if value is not None else ""
    if not text or len(text) > MAX_ADDRESS:
        return None
    import ipaddress  # noqa: PLC0415 - only off the fast path above

    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        # HAProxy reads 0.0.0.0 as "the client's original destination"; multicast and broadcast are no server.
        unusable = ip.is_unspecified or ip.is_multicast or ip == ipaddress.ip_address("255.255.255.255")
        return None if unusable else str(ip)
    if _DOTTED.match(text) or not _HOSTNAME.match(text):
        return None
    return text


def check_number(field_name: str, value: object) -> int | None:
    """The value as an int within the field's bounds, or None ('10', 10 and 10.0 pass; True does not)."""
    low, high, _default = BOUNDS[field_name]
    if isinstance(value, int) and not isinstance(value, bool):  # the common case
        return value if low <= value <= high else None
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,12}", text):  # no 10**20, no '1e3', no '0x10'
        return None
    number = int(text)
    return number if low <= number <= high else None


def _describe(field_name: str) -> str:
    low, high, _default = BOUNDS[field_name]
    return f"an integer {low}..{high}"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}..."


def _checked(address: object, values: Mapping) -> tuple[dict, list[str]]:
    """Checked fields, and the names of the fields that failed (values: None where the default applies)."""
    checked: dict = {"address": check_address(address)}
    failed = [] if checked["address"] is not None else ["address"]
    for name, (_low, _high, default) in BOUNDS.items():
        raw = values.get(name)
        checked[name] = check_number(name, default if raw is None else raw)
        if checked[name] is None:
            failed.append(name)
    state = values.get("state")
    checked["state"] = "ready" if state is None else str(state).strip().lower()
    if checked["state"] not in STATES:
        failed.append("state")
    return checked, failed


def _messages(label: str, failed: list[str], address: object, values: Mapping, names: Mapping) -> list[str]:
    problems = []
    for name in failed:
        shown = names.get(name, name)
        if name == "address":
            problems.append(f"{label}: {shown} {_shown(address)} is not a usable IP address or host name")
        elif name == "state":
            problems.append(f"{label}: {shown} must be one of {', '.join(STATES)}, got {_shown(values.get(name))}")
        else:
            problems.append(f"{label}: {shown} must be {_describe(name)}, got {_shown(values.get(name))}")
    return problems


def problems_of(label: str, address: object, values: Mapping, names: Mapping | None = None) -> tuple[dict, list[str]]:
    """Checked fields and the problems found, each naming `label` and the field as `names` calls it.

    `values` holds port/weight/maxconn/state, None where the default applies.
    """
    checked, failed = _checked(address, values)
    return checked, _messages(label, failed, address, values, names or {}) if failed else []


def check_server(
    name: object,
    address: object,
    *,
    port: object = None,
    weight: object = None,
    maxconn: object = None,
    state: object = None,
    defaults: Mapping | None = None,
    source: str = "",
    meta: dict | None = None,
) -> MediaServer:
    """A checked MediaServer; raises ContractError naming the server and every bad field.

    Fields left None take `defaults` (a source's own port/weight/maxconn/state), then the contract's.
    """
    if defaults:
        given = {"port": port, "weight": weight, "maxconn": maxconn, "state": state}
        values = {k: (defaults.get(k) if v is None else v) for k, v in given.items()}
    else:
        values = {"port": port, "weight": weight, "maxconn": maxconn, "state": state}
    checked, failed = _checked(address, values)
    if failed:
        label = f"server {name if name not in (None, '') else address!r}"
        raise ContractError("; ".join(_messages(label, failed, address, values, {})))
    if name in (None, ""):
        name = checked["address"] if checked["port"] == DEFAULT_PORT else f"{checked['address']}-{checked['port']}"
    return MediaServer(name=server_name(name), source=source, meta=meta or {}, **checked)


def from_host_vars(host: str, host_vars: Mapping) -> tuple[MediaServer | None, list[str]]:
    """An inventory host as a MediaServer (address: rtmp_address, else ansible_host, else the name)."""
    address = host_vars.get("rtmp_address") or host_vars.get("ansible_host") or host
    values = {k: host_vars.get(var) for k, var in HOST_VARS.items() if k != "address"}
    checked, problems = problems_of(str(host), address, values, HOST_VARS)
    if problems:
        return None, problems
    return MediaServer(name=server_name(host), **checked), []


def duplicates(servers: Iterable[MediaServer], label_of=lambda s: s.name) -> list[str]:
    """Two servers at one address:port (double share, ambiguous runtime updates) or with one name."""
    problems = []
    endpoints: dict[tuple[str, int], str] = {}
    names: dict[str, str] = {}
    for server in servers:
        label = label_of(server)
        endpoint = (server.address, server.port)
        if endpoint in endpoints:
            problems.append(f"{label}: {server.address}:{server.port} is also the address of {endpoints[endpoint]}")
        endpoints.setdefault(endpoint, label)
        if server.name in names:
            problems.append(f"{label}: server name {server.name!r} clashes with {names[server.name]}")
        names.setdefault(server.name, label)
    return problems


def transparent_problems(servers: Iterable[Mapping]) -> list[str]:
    """Why transparent mode cannot carry the publishers' own addresses to these servers.

    It spoofs IPv4 publishers towards IPv4 media servers: the backend connects from
    `source 0.0.0.0` and the return paths are IPv4 routes. An IPv6 publisher's address cannot
    be spoofed towards an IPv4 server at all, so IPv6 goes through the PROXY protocol.
    """
    ipv6 = [str(s["name"]) for s in servers if ":" in str(s["address"])]
    if not ipv6:
        return []
    shown = ", ".join(ipv6[:5]) + (f" and {len(ipv6) - 5} more" if len(ipv6) > 5 else "")
    return [
        f"media servers with IPv6 addresses ({shown}) cannot be reached in transparent mode, which spoofs "
        "IPv4 publishers towards IPv4 media servers only; use haproxy_client_ip_mode: proxy_protocol, "
        "which carries IPv4 and IPv6 publishers' addresses"
    ]


def backend_plan(hosts: Iterable[str], hostvars: Mapping) -> dict:
    """Backend entries for inventory hosts (sorted by name) and every problem found, duplicates included."""
    servers, labels, problems = [], {}, []
    for host in sorted({str(h) for h in hosts}):
        server, host_problems = from_host_vars(host, hostvars.get(host, {}))
        problems += host_problems
        if server is not None:
            servers.append(server)
            labels[id(server)] = host
    problems += duplicates(servers, lambda s: labels[id(s)])
    return {"servers": [s.entry() for s in servers], "problems": problems}


def derived_maxconn(servers: Iterable[Mapping], per_server_fallback: int, floor: int) -> int:
    """Frontend maxconn from the fleet: twice its capacity, never below floor.

    Twice, so that servers added at runtime between reloads still fit; servers
    without a limit count as per_server_fallback streams.
    """
    capacity = sum(s.get("maxconn") or per_server_fallback for s in servers)
    return max(floor, 2 * capacity)

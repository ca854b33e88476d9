# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every discovery source returns, and how outside data is checked before it becomes a host.

Pure Python, no Ansible import: the inventory plugin and the reconcile job share it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_backend import (
    DEFAULT_PORT,
    DEFAULT_WEIGHT,
    MAX_WEIGHT,
    STATES,
    as_int,
    server_name,
)

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_DOTTED = re.compile(r"^[0-9.]+$")


class DiscoveryError(Exception):
    """A source failed: unreachable, timed out, refused, or returned data that is not a fleet."""

    def __init__(self, source: str, cause: str):
        super().__init__(f"media server source {source}: {cause}")
        self.source = source
        self.cause = cause


@dataclass
class MediaServer:
    """One media server as found by a source; name is stable, derived from the source's own id."""

    name: str
    address: str
    port: int = DEFAULT_PORT
    weight: int = DEFAULT_WEIGHT
    maxconn: int = 0
    state: str = "ready"
    source: str = ""
    meta: dict = field(default_factory=dict)

    def host_vars(self) -> dict:
        return {
            "rtmp_address": self.address,
            "rtmp_port": self.port,
            "rtmp_weight": self.weight,
            "rtmp_maxconn": self.maxconn,
            "rtmp_state": self.state,
            "rtmp_source": self.source,
            **self.meta,
        }

    def as_dict(self) -> dict:
        return {"name": self.name, **self.host_vars()}

    @classmethod
    def from_dict(cls, data: dict) -> MediaServer:
        known = {"name", "rtmp_address", "rtmp_port", "rtmp_weight", "rtmp_maxconn", "rtmp_state", "rtmp_source"}
        return cls(
            name=data["name"],
            address=data["rtmp_address"],
            port=data["rtmp_port"],
            weight=data["rtmp_weight"],
            maxconn=data["rtmp_maxconn"],
            state=data["rtmp_state"],
            source=data["rtmp_source"],
            meta={k: v for k, v in data.items() if k not in known},
        )


def valid_address(value: object) -> str | None:
    """The address if it is an IP address or a DNS name, else None ('999.1.1.1' is neither)."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if _DOTTED.match(text) or not _HOSTNAME.match(text):
        return None
    return text


def make_server(
    source: str,
    name: object,
    address: object,
    *,
    port: object = None,
    weight: object = None,
    maxconn: object = None,
    state: object = None,
    defaults: dict | None = None,
    meta: dict | None = None,
) -> MediaServer:
    """A checked MediaServer; anything invalid raises DiscoveryError naming the server and the field."""
    defaults = defaults or {}
    label = name if name not in (None, "") else address
    checked_address = valid_address(address)
    if checked_address is None:
        raise DiscoveryError(source, f"server {label!r}: address {address!r} is not an IP address or host name")

    def number(field_name: str, raw: object, fallback: object, low: int, high: int | None) -> int:
        value = as_int(fallback if raw is None else raw, low, high)
        if value is None:
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            shown = fallback if raw is None else raw
            raise DiscoveryError(source, f"server {label!r}: {field_name} must be an integer {bound}, got {shown!r}")
        return value

    checked_port = number("port", port, defaults.get("port", DEFAULT_PORT), 1, 65535)
    checked_state = str(state if state is not None else defaults.get("state", "ready")).strip().lower()
    if checked_state not in STATES:
        raise DiscoveryError(
            source, f"server {label!r}: state must be one of {', '.join(STATES)}, got {checked_state!r}"
        )
    base_name = (
        name
        if name not in (None, "")
        else (checked_address if checked_port == DEFAULT_PORT else f"{checked_address}-{checked_port}")
    )
    return MediaServer(
        name=server_name(base_name),
        address=checked_address,
        port=checked_port,
        weight=number("weight", weight, defaults.get("weight", DEFAULT_WEIGHT), 0, MAX_WEIGHT),
        maxconn=number("maxconn", maxconn, defaults.get("maxconn", 0), 0, None),
        state=checked_state,
        source=source,
        meta=meta or {},
    )


def servers_from_records(source: str, records: object, name_key: str, where: str, defaults: dict) -> list[MediaServer]:
    """Servers from a list of mappings with `address` and optional port/weight/maxconn/state (static, http_json)."""
    if not isinstance(records, list):
        raise DiscoveryError(source, f"{where} must be a list of servers, got {type(records).__name__}")
    found = []
    for index, item in enumerate(records):
        if not isinstance(item, dict) or "address" not in item:
            raise DiscoveryError(source, f"{where}, item {index}: must be a mapping with an 'address', got {item!r}")
        found.append(
            make_server(
                source,
                item.get(name_key),
                item["address"],
                port=item.get("port"),
                weight=item.get("weight"),
                maxconn=item.get("maxconn"),
                state=item.get("state"),
                defaults=defaults,
            )
        )
    return found


def merge(batches: list[list[MediaServer]]) -> tuple[list[MediaServer], list[str]]:
    """Servers of all sources; a server whose address:port an earlier one already has is dropped.

    Rule: sources are read in the order configured; the first to report an address:port
    keeps it. Returns the servers and one warning per dropped duplicate.
    """
    kept: dict[tuple[str, int], MediaServer] = {}
    names: dict[str, MediaServer] = {}
    warnings = []
    for batch in batches:
        for server in batch:
            endpoint = (server.address, server.port)
            if endpoint in kept:
                first = kept[endpoint]
                warnings.append(
                    f"{server.source}: {server.name} ({server.address}:{server.port}) is a duplicate of "
                    f"{first.name} from {first.source}; kept the first"
                )
                continue
            # Two sources may name different servers alike: make the later name unique.
            for candidate in (
                server.name,
                f"{server.name}-{server.port}",
                f"{server.name}-{server.address}-{server.port}",
            ):
                if server_name(candidate) not in names:
                    server.name = server_name(candidate)
                    break
            kept[endpoint] = server
            names[server.name] = server
    return list(kept.values()), warnings

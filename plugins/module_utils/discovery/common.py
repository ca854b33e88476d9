# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every discovery source returns, its one error type, and how batches are merged.

Each server a source finds is checked by the media-server contract (module_utils/media_server.py),
the same check the haproxy role and the reconcile job apply. Pure Python, no Ansible import:
the inventory plugin and the reconcile job share it.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.rtmpedge.balancer.plugins.module_utils.media_server import (
    ContractError,
    MediaServer,
    check_server,
    server_name,
)


class DiscoveryError(Exception):
    """A source failed: unreachable, timed out, refused, or returned data that is not a fleet."""

    def __init__(self, source: str, cause: str):
        # Causes quote outside data (a banner, a body): one line, bounded, whatever it held.
        cause = " ".join(str(cause).split())
        cause = cause if len(cause) <= 500 else cause[:500] + "..."
        super().__init__(f"media server source {source}: {cause}")
        self.source = source
        self.cause = cause


def make_server(source: str, name: object, address: object, **fields) -> MediaServer:
    """check_server() for a source: a breach is a DiscoveryError naming the source, server and field.

    `fields`: port, weight, maxconn, state, defaults (the source's own), meta.
    """
    try:
        return check_server(name, address, source=source, **fields)
    except ContractError as e:
        raise DiscoveryError(source, str(e)) from e


def servers_from_records(
    source: str, records: object, name_key: str, where: str, defaults: Mapping
) -> list[MediaServer]:
    """Servers from a list of mappings with `address` and optional port/weight/maxconn/state (static, http_json)."""
    if not isinstance(records, list):
        raise DiscoveryError(source, f"{where} must be a list of servers, got {type(records).__name__}")
    found = []
    for index, item in enumerate(records):
        if not isinstance(item, dict) or "address" not in item:
            shown = repr(item) if len(repr(item)) <= 120 else f"{repr(item)[:120]}..."
            raise DiscoveryError(source, f"{where}, item {index}: must be a mapping with an 'address', got {shown}")
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


def _unique_name(server: MediaServer, taken: Mapping) -> str:
    """A name no other server has: with its port, then its address, then a counter."""
    for candidate in (f"{server.name}-{server.port}", f"{server.name}-{server.address}-{server.port}"):
        if server_name(candidate) not in taken:
            return server_name(candidate)
    n = 2
    while server_name(f"{server.name}-{server.address}-{server.port}-{n}") in taken:
        n += 1
    return server_name(f"{server.name}-{server.address}-{server.port}-{n}")


def merge(batches: list[list[MediaServer]]) -> tuple[list[MediaServer], list[str]]:
    """Servers of all sources; a server whose address:port an earlier one already has is dropped.

    Rule: sources are read in the order configured; the first to report an address:port
    keeps it, and every name is unique. Returns the servers and one warning per dropped duplicate.
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
            # (server.name is already a server_name(); most names are unique as they are.)
            if server.name in names:
                server.name = _unique_name(server, names)
            kept[endpoint] = server
            names[server.name] = server
    return list(kept.values()), warnings

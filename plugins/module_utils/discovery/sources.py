# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The discovery sources by type, and the one entry point that runs a list of them."""

from __future__ import annotations

from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery import (
    aws,
    dns_srv,
    docker_source,
    http_json,
    static,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import (
    DiscoveryError,
    MediaServer,
    merge,
)

SOURCES = {
    "static": static.discover,
    "dns_srv": dns_srv.discover,
    "aws_ecs": aws.discover_ecs,
    "aws_ec2": aws.discover_ec2,
    "http_json": http_json.discover,
    "docker": docker_source.discover,
}


def source_label(index: int, options: dict) -> str:
    """How errors name a source: its own name, else its type and position."""
    return str(options.get("name") or f"{options.get('type', '?')}[{index}]")


def discover_all(sources: list[dict], allow_empty: bool, on_source_error: str) -> tuple[list[MediaServer], list[str]]:
    """Run every source; returns the merged servers and warnings.

    A failing source raises DiscoveryError, or with on_source_error=skip becomes a
    warning. A source with no servers is an error unless allow_empty.
    """
    if not isinstance(sources, list) or not sources:
        raise DiscoveryError("configuration", "'sources' must be a non-empty list")
    batches, warnings = [], []
    for index, options in enumerate(sources):
        if not isinstance(options, dict):
            raise DiscoveryError(f"sources[{index}]", f"must be a mapping, got {options!r}")
        label = source_label(index, options)
        kind = options.get("type")
        if kind not in SOURCES:
            raise DiscoveryError(label, f"unknown type {kind!r}; one of {', '.join(SOURCES)}")
        try:
            servers = SOURCES[kind](label, options)
            if not servers and not allow_empty:
                raise DiscoveryError(label, "found no media servers (set allow_empty: true if that is expected)")
        except DiscoveryError as e:
            if on_source_error != "skip":
                raise
            warnings.append(f"{e}; skipped (on_source_error: skip)")
            continue
        batches.append(servers)
    servers, duplicate_warnings = merge(batches)
    if not servers and not allow_empty:
        raise DiscoveryError("all sources", "found no media servers (set allow_empty: true if that is expected)")
    return servers, warnings + duplicate_warnings

# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one entry point that runs a list of discovery sources (the inventory plugin and the reconcile job).

Whatever a source does wrong - options that do not exist, an answer that is not
HTTP, JSON nested past the parser's depth, a trickle that never ends, ten million
servers - ends as a DiscoveryError naming the source and the cause, within the
source's deadline. A fleet is never silently empty or partial.
"""

from __future__ import annotations

import threading

from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import (
    DiscoveryError,
    MediaServer,
    merge,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.registry import (
    TYPES,
    check_options,
    unrendered,
)


def source_label(index: int, options: object) -> str:
    """How errors name a source: its own name, else its type and position."""
    if not isinstance(options, dict):
        return f"sources[{index}]"
    return str(options.get("name") or f"{options.get('type', '?')}[{index}]")[:100]


def _describe(error: BaseException) -> str:
    text = str(error) or "no detail"
    return f"{type(error).__name__}: {text[:300]}"


def run_source(label: str, options: dict) -> list[MediaServer]:
    """One checked source's servers, within its deadline; every failure is a DiscoveryError."""
    discover = TYPES[options["type"]].discover()
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["servers"] = discover(label, options)
        except DiscoveryError as e:
            outcome["error"] = e
        except RecursionError:
            outcome["error"] = DiscoveryError(label, "the answer is nested too deeply to be a list of servers")
        except Exception as e:
            outcome["error"] = DiscoveryError(label, _describe(e))

    # A daemon thread: a source stuck past its deadline cannot keep the run (or its lock).
    worker = threading.Thread(target=work, name=f"discovery {label}", daemon=True)
    worker.start()
    worker.join(options["deadline"])
    if worker.is_alive():
        raise DiscoveryError(label, f"no complete answer within its deadline of {options['deadline']:g}s")
    if "error" in outcome:
        raise outcome["error"]
    servers = outcome["servers"]
    if len(servers) > options["max_servers"]:
        raise DiscoveryError(label, f"found {len(servers)} servers, more than max_servers ({options['max_servers']})")
    return servers


def discover_all(sources: object, allow_empty: bool, on_source_error: str) -> tuple[list[MediaServer], list[str]]:
    """Run every source; returns the merged servers and warnings.

    A failing source raises DiscoveryError, or with on_source_error=skip becomes a
    warning. A source with no servers is an error unless allow_empty. Options are
    checked before any source runs: a typo fails the run, whatever on_source_error says.
    """
    if not isinstance(sources, list) or not sources:
        raise DiscoveryError("configuration", "'sources' must be a non-empty list")
    if on_source_error not in ("fail", "skip"):
        raise DiscoveryError("configuration", f"on_source_error must be fail or skip, got {on_source_error!r}")
    checked = []
    for index, options in enumerate(sources):
        label = source_label(index, options)
        checked.append((label, check_options(label, options)))
        unrendered(label, checked[-1][1])
    batches, warnings = [], []
    for label, options in checked:
        try:
            servers = run_source(label, options)
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

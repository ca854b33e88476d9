# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters turning the media_servers group into HAProxy backend data."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from ansible import constants as C
from ansible.errors import AnsibleFilterError
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_config import server_line
from ansible_collections.rtmpedge.balancer.plugins.module_utils.media_server import (
    HOST_VARS,
    backend_plan,
    derived_maxconn,
    transparent_problems,
)

# What the contract reads of a host (module_utils/media_server.py: from_host_vars).
_CONTRACT_VARS = (*HOST_VARS.values(), "ansible_host")


@contextlib.contextmanager
def _facts_not_injected():
    """Reading a host's variables cleans its facts for injection as top-level variables, even
    when it has none: ansible-core then globs every connection plugin, per host, most of the
    cost of reading ten thousand hosts. For a host without facts the injected part is empty
    either way, so reading such hosts with injection off gives the same variables."""
    injected = C.INJECT_FACTS_AS_VARS
    C.INJECT_FACTS_AS_VARS = False
    try:
        yield
    finally:
        C.INJECT_FACTS_AS_VARS = injected


def _has_facts(hostvars, host: str) -> bool:
    cache = getattr(getattr(hostvars, "_variable_manager", None), "_fact_cache", None)
    if cache is None:
        return True  # cannot tell: read it the ordinary way
    try:
        return bool(cache.get(host))
    except KeyError:
        return False


def _contract_view(hostvars, host: str, raw: object) -> Mapping:
    """The contract's variables of one host from its raw variables.

    `hostvars[host]` builds a templating engine per host and templates every value read;
    raw values need neither unless they hold template syntax, so only those (and values
    that are not plain scalars) are read through it. Same values, a fraction of the cost
    for a big fleet.
    """
    if not isinstance(raw, Mapping):
        return {}
    view = {}
    for key in _CONTRACT_VARS:
        if key not in raw:
            continue
        value = raw[key]
        plain = isinstance(value, str) and "{" not in value
        plain = plain or (isinstance(value, int | float) and not isinstance(value, bool))
        view[key] = value if plain else hostvars[host][key]
    return view


def _contract_views(hostvars, hosts: list[str]) -> dict[str, Mapping]:
    raw_get = getattr(hostvars, "raw_get", None)
    if raw_get is None:  # a plain mapping of host vars
        return {h: hostvars.get(h, {}) for h in hosts}
    without_facts = [h for h in hosts if not _has_facts(hostvars, h)]
    with _facts_not_injected():
        raw = {h: raw_get(h) for h in without_facts}
    raw.update({h: raw_get(h) for h in hosts if h not in raw})
    return {h: _contract_view(hostvars, h, raw[h]) for h in hosts}


def rtmp_backend_plan(hosts, hostvars):
    """{'servers': [...], 'problems': [...]} for the given hosts."""
    if hosts is None:
        hosts = []
    if isinstance(hosts, str):
        raise AnsibleFilterError(f"rtmp_backend_plan expects a list of hosts, got the string {hosts!r}")
    try:
        hosts = list(hosts)
        names = [str(h) for h in hosts]
        return backend_plan(names, _contract_views(hostvars, names))
    except (TypeError, AttributeError) as e:
        raise AnsibleFilterError(f"rtmp_backend_plan: cannot read the media servers' variables: {e}") from e


def rtmp_backend_config(hosts, hostvars, per_server_fallback=200, floor=1024, client_ip_mode="none"):
    """The backend as haproxy.cfg needs it, as plain values: its server lines in one string, the
    server count, the problems and the derived frontend maxconn.

    One small fact instead of the plan's list of entries, which every later task, result and
    callback would otherwise copy: ten thousand servers are ten thousand mappings.
    """
    plan = rtmp_backend_plan(hosts, hostvars)
    servers = plan["servers"]
    problems = plan["problems"] + (transparent_problems(servers) if client_ip_mode == "transparent" else [])
    return {
        "lines": "\n".join(server_line(s) for s in servers),
        "count": len(servers),
        "problems": problems,
        "derived_maxconn": derived_maxconn(servers, int(per_server_fallback), int(floor)),
    }


def rtmp_derived_maxconn(servers, per_server_fallback=200, floor=1024):
    """Frontend maxconn derived from the fleet's capacity."""
    return derived_maxconn(servers, int(per_server_fallback), int(floor))


def rtmp_server_line(server):
    """A server entry of rtmp_backend_plan as its haproxy.cfg line (the reconcile job writes the same)."""
    try:
        return server_line(server)
    except (KeyError, TypeError) as e:
        raise AnsibleFilterError(f"rtmp_server_line: not a server entry of rtmp_backend_plan: {server!r}") from e


class FilterModule:
    def filters(self):
        return {
            "rtmp_backend_plan": rtmp_backend_plan,
            "rtmp_backend_config": rtmp_backend_config,
            "rtmp_derived_maxconn": rtmp_derived_maxconn,
            "rtmp_server_line": rtmp_server_line,
        }

# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source `dns_srv`: SRV records (AWS Cloud Map, Consul DNS, plain DNS) -> target address:port.

SRV weights are relative (0-65535); HAProxy weights go up to 256. They are scaled
to 1..256 when any exceeds 256, and a weight of 0 becomes 1 (SRV's "rarely", not
HAProxy's "drain").
"""

from __future__ import annotations

from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import (
    DiscoveryError,
    MediaServer,
    make_server,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.media_server import DEFAULT_PORT, MAX_WEIGHT

try:
    import dns.exception
    import dns.rdatatype
    import dns.resolver

    HAS_DNSPYTHON = True
except ImportError:
    HAS_DNSPYTHON = False


def _resolver(options: dict):
    resolver = dns.resolver.Resolver(configure=not options.get("nameserver"))
    if options.get("nameserver"):
        resolver.nameservers = [options["nameserver"]]
        resolver.port = options["nameserver_port"]
    resolver.lifetime = options["timeout"]
    resolver.timeout = resolver.lifetime
    return resolver


def _query(label: str, resolver, name: str, rdtype: str):
    try:
        return resolver.resolve(name, rdtype)
    except dns.resolver.NXDOMAIN as e:
        raise DiscoveryError(label, f"{name} {rdtype}: NXDOMAIN (no such name)") from e
    except dns.resolver.NoAnswer as e:
        raise DiscoveryError(label, f"{name} {rdtype}: no {rdtype} records") from e
    except dns.exception.Timeout as e:
        raise DiscoveryError(label, f"{name} {rdtype}: timed out after {resolver.lifetime}s") from e
    except dns.exception.DNSException as e:
        raise DiscoveryError(label, f"{name} {rdtype}: {e}") from e


def scale_weights(weights: list[int]) -> list[int]:
    top = max(weights, default=0)
    if top <= MAX_WEIGHT:
        return [max(1, w) for w in weights]
    return [max(1, round(w * MAX_WEIGHT / top)) for w in weights]


def discover(label: str, options: dict) -> list[MediaServer]:
    if not HAS_DNSPYTHON:
        raise DiscoveryError(label, "the dns_srv source needs the Python package dnspython")
    name = options["record"]
    resolver = _resolver(options)
    records = sorted(_query(label, resolver, name, "SRV"), key=lambda r: (str(r.target), r.port))
    weights = scale_weights([r.weight for r in records])
    found = []
    for record, weight in zip(records, weights, strict=True):
        target = str(record.target).rstrip(".")
        addresses = sorted(str(a) for a in _query(label, resolver, target, options["address_type"]))
        found.append(
            make_server(
                label,
                target if record.port == (options.get("port") or DEFAULT_PORT) else f"{target}-{record.port}",
                addresses[0],
                port=record.port,
                weight=weight,
                defaults=options,
                meta={"rtmp_srv_target": target},
            )
        )
    return found

# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: the Route 53 changes that give each balancer one weighted record per address family."""

from __future__ import annotations

import ipaddress

MAX_WEIGHT = 255  # Route 53's largest record weight
# A balancer's AAAA record has its own SetIdentifier: a DELETE by identifier can take every
# record sharing it along (moto does, whatever the type), and a CREATE can clash with it.
IPV6_SUFFIX = "/ipv6"


def _fqdn(name: str) -> str:
    return str(name).strip().rstrip(".").lower() + "."


def _address(value, version: int) -> str | None:
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None
    return str(address) if address.version == version else None


def _weight(value) -> int | None:
    text = str(value).strip()
    return int(text) if text.isdigit() and int(text) <= MAX_WEIGHT else None


def _plan(balancers, hostvars, default_weight, drained) -> tuple[list[dict], list[str]]:
    records, problems = [], []
    for name in balancers:
        host = hostvars[name]
        given = host.get("balancer_dns_ipv4", host.get("ansible_host", ""))
        ipv4 = _address(given, 4)
        ipv6_given = host.get("balancer_dns_ipv6", "")
        ipv6 = _address(ipv6_given, 6) if ipv6_given else None
        weight = _weight(host.get("balancer_dns_weight", default_weight))
        if ipv4 is None:
            problems.append(f"balancer {name}: balancer_dns_ipv4 (or ansible_host) is {given!r}, not an IPv4 address")
        if ipv6_given and ipv6 is None:
            problems.append(f"balancer {name}: balancer_dns_ipv6 is {ipv6_given!r}, not an IPv6 address")
        if weight is None:
            problems.append(
                f"balancer {name}: balancer_dns_weight is "
                f"{host.get('balancer_dns_weight', default_weight)!r}, not a whole number from 0 to {MAX_WEIGHT}"
            )
        if ipv4 is None or weight is None or (ipv6_given and ipv6 is None):
            continue
        if name in drained:
            weight = 0
        records.append({"name": name, "identifier": name, "type": "A", "value": ipv4, "weight": weight})
        if ipv6:
            records.append(
                {"name": name, "identifier": name + IPV6_SUFFIX, "type": "AAAA", "value": ipv6, "weight": weight}
            )
    return records, problems


def _restorable(record: dict) -> dict:
    """A zone record as the route53 module's options, to put back what a delete took along."""
    out = {
        "record": record["name"],
        "type": record["type"],
        "identifier": record["set_identifier"],
        "ttl": record.get("ttl"),
        "value": [r["value"] for r in record.get("resource_records", [])],
        "weight": record.get("weight"),
        "region": record.get("region"),
        "failover": record.get("failover"),
        "health_check": record.get("health_check_id"),
        "alias": None,
        "alias_hosted_zone_id": None,
        "alias_evaluate_target_health": None,
    }
    alias = record.get("alias_target")
    if alias:
        out.update(
            alias=True,
            alias_hosted_zone_id=alias["hosted_zone_id"],
            alias_evaluate_target_health=alias.get("evaluate_target_health", False),
            value=[alias["dns_name"]],
            ttl=None,
        )
    return out


def balancer_dns_changes(balancers, hostvars, zone_records, record, default_weight=100, drained=()):  # noqa: PLR0917
    """What to keep, remove and put back so that `record` has one weighted A (and AAAA) per balancer.

    A DELETE of a record with a SetIdentifier can take every record sharing that identifier
    along (moto does; the records of other names and types must survive it), so the records
    that share an identifier with a removed one come back as `restore`. Balancers named in
    `drained` get weight 0 whatever their host vars say.
    """
    fqdn = _fqdn(record)
    wanted, problems = _plan(list(balancers or []), hostvars, default_weight, set(drained or ()))
    total = sum(r["weight"] for r in wanted if r["type"] == "A")  # one A record per balancer
    if not problems and total == 0:
        problems.append(
            f"the weights of {', '.join(balancers)} add up to 0, so {fqdn} would send publishers nowhere "
            "(Route 53 then answers with every record alike); keep at least one balancer above weight 0"
        )
    keys = {(r["identifier"], r["type"]) for r in wanted}
    names = {r["name"] for r in wanted}
    ours = [
        r
        for r in zone_records or []
        if _fqdn(r.get("name", "")) == fqdn and r.get("type") in ("A", "AAAA") and r.get("set_identifier")
    ]
    remove = [r for r in ours if (r["set_identifier"], r["type"]) not in keys]
    removed = {(_fqdn(r["name"]), r["type"], r["set_identifier"]) for r in remove}
    identifiers = {r["set_identifier"] for r in remove}
    restore = [
        _restorable(r)
        for r in zone_records or []
        if r.get("set_identifier") in identifiers
        and (_fqdn(r["name"]), r["type"], r["set_identifier"]) not in removed
        and not (_fqdn(r["name"]) == fqdn and (r["set_identifier"], r["type"]) in keys)  # upserted anyway
    ]
    departed_checks = sorted(
        {
            r["health_check_id"]
            for r in remove
            if r["set_identifier"].removesuffix(IPV6_SUFFIX) not in names and r.get("health_check_id")
        }
    )
    return {
        "fqdn": fqdn,
        "records": wanted,
        "total_weight": total,
        "problems": problems,
        "remove": remove,
        "restore": restore,
        "departed_checks": departed_checks,
    }


class FilterModule:
    def filters(self):
        return {"balancer_dns_changes": balancer_dns_changes}

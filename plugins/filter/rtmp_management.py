# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters: each balancer's management bind as others reach it (never a public address): where
Prometheus scrapes it, and where the other balancers' scale-in guards read its sessions."""

from __future__ import annotations

import ipaddress

_EVERY_ADDRESS = ("*", "0.0.0.0", "::", "[::]", "")  # noqa: S104 - bind values to recognise, not to bind


def _target(host: str, host_vars) -> tuple[str, str | None]:
    """(address:port, problem) of one balancer's management bind."""
    bind = host_vars.get("haproxy_management_bind") or {"address": "127.0.0.1", "port": 8404}
    address = str(host_vars.get("monitoring_scrape_address") or "")
    if not address:
        address = str(bind.get("address", ""))
        if address in _EVERY_ADDRESS:
            facts = host_vars.get("ansible_facts") or {}
            address = str((facts.get("default_ipv4") or {}).get("address") or host_vars.get("ansible_host") or "")
    try:
        parsed = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return "", f"{host}: no management address to scrape (set monitoring_scrape_address, or gather its facts)"
    if parsed.is_loopback:
        return "", (
            f"{host}: its management bind is {address}, which Prometheus elsewhere cannot reach; bind it to a "
            "management address (haproxy_management_bind) or set monitoring_scrape_address"
        )
    if parsed.is_global:
        return "", f"{host}: {address} is a public address; scrape the management network only"
    where = f"[{parsed}]" if parsed.version == 6 else str(parsed)
    return f"{where}:{int(bind.get('port', 8404))}", None


def rtmp_scrape_targets(hosts, hostvars):
    """{targets: [{name, address}], problems: [...]}: one scrape target per balancer."""
    targets, problems = [], []
    for host in hosts or []:
        address, problem = _target(host, hostvars[host])
        if problem:
            problems.append(problem)
        else:
            targets.append({"name": host, "address": address})
    return {"targets": targets, "problems": problems}


def rtmp_guard_peers(hosts, hostvars, user="", password=""):
    """{peers: [{name, url, user, password}], problems: [...]}: every balancer's /rtmpedge/sessions.

    Credentials: `user`/`password` when given, else each balancer's management ones (a crypt hash
    cannot be sent: then they must be given).
    """
    found = rtmp_scrape_targets(hosts, hostvars)
    peers, problems = [], list(found["problems"])
    for target in found["targets"]:
        host_vars = hostvars[target["name"]]
        login = user or str(host_vars.get("haproxy_management_user") or "")
        secret = password or str(host_vars.get("haproxy_management_password") or "")
        if secret.startswith("$") and not password:
            problems.append(
                f"{target['name']}: its management password is a hash; give the plain one to the guard "
                "(reconcile_scale_guard_password)"
            )
            continue
        url = f"http://{target['address']}/rtmpedge/sessions"
        peers.append({"name": target["name"], "url": url, "user": login, "password": secret})
    return {"peers": peers, "problems": problems}


class FilterModule:
    def filters(self):
        return {"rtmp_scrape_targets": rtmp_scrape_targets, "rtmp_guard_peers": rtmp_guard_peers}

# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: the balancer's listeners that cannot all be bound, by port and address family.

IPv4 and IPv6 publishers on one port need one listener per family (`*` and `::` with
`v6only`): a port is taken once per family, not once.
"""

from __future__ import annotations

from collections.abc import Mapping

_ANY = {4: ("*", "0.0.0.0", ""), 6: ("::",)}  # noqa: S104 - bind values to recognise, not to bind


def _families(address: str, options: str) -> set[int]:
    if ":" not in address:  # *, an IPv4 address or a host name
        return {4}
    if address == "::" and "v6only" not in options.split():
        return {4, 6}  # Linux's default (bindv6only 0): IPv4 publishers arrive as ::ffff:a.b.c.d
    return {6}


def rtmp_listener_clashes(listeners):
    """One message per listener whose port is out of range or already taken for its family.

    listeners: {purpose (RTMP, health...): [{address, port, options}]}.
    """
    problems, taken = [], []
    for purpose, binds in (listeners or {}).items():
        for bind in binds or []:
            if not isinstance(bind, Mapping):
                problems.append(f"{purpose} listener {bind!r} is not a mapping with address and port")
                continue
            address = str(bind.get("address", "*")).strip().strip("[]")
            try:
                port = int(bind.get("port"))
            except (TypeError, ValueError):
                port = 0
            shown = f"{purpose} {address or '*'}:{bind.get('port')}"
            if not 1 <= port <= 65535:
                problems.append(f"{shown}: the port must be 1-65535")
                continue
            families = _families(address, str(bind.get("options") or ""))
            for other, other_address, other_port, other_families in taken:
                shared = families & other_families
                if other_port != port or not shared:
                    continue
                if address == other_address or any(a in _ANY[f] for f in shared for a in (address, other_address)):
                    family = " and ".join(f"IPv{f}" for f in sorted(shared))
                    problems.append(f"{shown} takes the port of {other} for {family}")
                    break
            taken.append((shown, address, port, families))
    return problems


class FilterModule:
    def filters(self):
        return {"rtmp_listener_clashes": rtmp_listener_clashes}

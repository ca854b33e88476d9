# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: entries of a publisher allow/deny list that are not an IP address or network."""

from __future__ import annotations

import ipaddress


def rtmp_invalid_networks(entries):
    """The entries that are neither an address nor a CIDR block (host bits set count as invalid)."""
    invalid = []
    for entry in entries or []:
        try:
            ipaddress.ip_network(str(entry).strip(), strict=True)
        except ValueError:
            invalid.append(entry)
    return invalid


class FilterModule:
    def filters(self):
        return {"rtmp_invalid_networks": rtmp_invalid_networks}

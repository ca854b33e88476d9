# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source `static`: media servers listed in the configuration."""

from __future__ import annotations

from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import (
    MediaServer,
    servers_from_records,
)


def discover(label: str, options: dict) -> list[MediaServer]:
    return servers_from_records(label, options.get("servers"), "name", "'servers'", options)

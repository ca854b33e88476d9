# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a list of discovery sources needs installed, from the one registry of source types."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.registry import TYPES, debian_packages


def rtmp_source_packages(sources):
    """Debian packages the reconcile job needs on a balancer for these sources (a media_servers `sources` list)."""
    if not isinstance(sources, list):
        raise AnsibleFilterError(f"rtmp_source_packages expects the list of sources, got {type(sources).__name__}")
    types = [s.get("type") if isinstance(s, dict) else None for s in sources]
    unknown = sorted({str(t) for t in types if t not in TYPES})
    if unknown:
        raise AnsibleFilterError(f"unknown discovery source type(s) {', '.join(unknown)}; one of {', '.join(TYPES)}")
    return debian_packages(types)


class FilterModule:
    def filters(self):
        return {"rtmp_source_packages": rtmp_source_packages}

# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a list of discovery sources needs installed, from the one registry of source types."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import DiscoveryError
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.registry import check_options, debian_packages
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.sources import source_label


def rtmp_source_packages(sources):
    """Debian packages the reconcile job needs on a balancer for these sources (a media_servers `sources` list).

    Each source's options are checked as the job will check them, so a mistake fails here, when the
    job is installed, rather than in its first run.
    """
    if not isinstance(sources, list):
        raise AnsibleFilterError(f"rtmp_source_packages expects the list of sources, got {type(sources).__name__}")
    for index, source in enumerate(sources):
        try:
            check_options(source_label(index, source), source)
        except DiscoveryError as e:
            raise AnsibleFilterError(str(e)) from e
    return debian_packages([s["type"] for s in sources])


class FilterModule:
    def filters(self):
        return {"rtmp_source_packages": rtmp_source_packages}

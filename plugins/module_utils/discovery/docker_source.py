# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source `docker`: running containers carrying a label, addressed on a given network (docker SDK)."""

from __future__ import annotations

from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import (
    DiscoveryError,
    MediaServer,
    make_server,
)

try:
    import docker
    import docker.errors

    HAS_DOCKER = True
except ImportError:
    HAS_DOCKER = False


def discover(label: str, options: dict) -> list[MediaServer]:
    if not HAS_DOCKER:
        raise DiscoveryError(label, "the docker source needs the Python package docker")
    selector, network = options["label"], options["network"]
    try:
        client = docker.DockerClient(base_url=options.get("docker_host"), timeout=options["timeout"])
        # The SDK inspects each listed container; one removed in between is gone, not an error.
        containers = client.containers.list(filters={"label": selector, "status": "running"}, ignore_removed=True)
    except docker.errors.DockerException as e:
        raise DiscoveryError(label, f"Docker engine: {e}") from e
    port_label = options.get("port_label")
    found = []
    for container in sorted(containers, key=lambda c: c.name):
        networks = container.attrs.get("NetworkSettings", {}).get("Networks", {})
        address = (networks.get(network) or {}).get("IPAddress")
        if not address:
            raise DiscoveryError(label, f"container {container.name} is not on network {network!r}")
        labels = container.labels or {}
        found.append(
            make_server(
                label,
                container.name,
                address,
                port=labels.get(port_label) if port_label else None,
                weight=labels.get("rtmpedge.weight"),
                maxconn=labels.get("rtmpedge.maxconn"),
                defaults=options,
                meta={"rtmp_container_id": container.id[:12]},
            )
        )
    return found

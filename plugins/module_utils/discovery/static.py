# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source `static`: media servers listed in the configuration, or in a JSON file beside it.

A large fleet belongs in `servers_file`: Ansible reads, tags and copies everything in
an inventory configuration, while a plain JSON file is read once, as it is.
"""

from __future__ import annotations

import json

from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import (
    DiscoveryError,
    MediaServer,
    servers_from_records,
)


def _from_file(label: str, path: str) -> object:
    try:
        with open(path, "rb") as handle:
            data = json.load(handle)
    except OSError as e:
        raise DiscoveryError(label, f"cannot read servers_file {path}: {e.strerror or e}") from e
    except RecursionError as e:
        raise DiscoveryError(label, f"servers_file {path} is nested too deeply to be a list of servers") from e
    except ValueError as e:
        raise DiscoveryError(label, f"servers_file {path} is not JSON: {str(e)[:200]}") from e
    return data["servers"] if isinstance(data, dict) and "servers" in data else data


def discover(label: str, options: dict) -> list[MediaServer]:
    if "servers" in options and "servers_file" in options:
        raise DiscoveryError(label, "give 'servers' or 'servers_file', not both")
    if "servers" not in options and "servers_file" not in options:
        raise DiscoveryError(label, "needs 'servers' (a list) or 'servers_file' (a JSON file with the list)")
    if "servers_file" in options:
        return servers_from_records(label, _from_file(label, options["servers_file"]), "name", "servers_file", options)
    return servers_from_records(label, options["servers"], "name", "'servers'", options)

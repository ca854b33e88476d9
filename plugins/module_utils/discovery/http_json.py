# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source `http_json`: GET a URL that answers with a JSON list of media servers.

Schema: a list (or {"servers": [...]}) of objects with `address` (required), and
optional `port`, `weight`, `maxconn`, `state` and `id` (the stable host name).
"""

from __future__ import annotations

import json
import socket
import ssl
from urllib.error import HTTPError, URLError
from urllib.request import HTTPSHandler, Request, build_opener

from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import (
    DiscoveryError,
    MediaServer,
    servers_from_records,
)


def _tls_context(options: dict) -> ssl.SSLContext:
    # Plain urllib rather than Ansible's open_url: the reconcile job runs this
    # code on balancers that have no Ansible installed.
    context = ssl.create_default_context(cafile=options.get("ca_path") or None)
    if not options.get("validate_certs", True):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _fetch(label: str, options: dict) -> object:
    headers = dict(options.get("headers") or {})
    if options.get("bearer_token"):
        headers["Authorization"] = f"Bearer {options['bearer_token']}"
    headers.setdefault("Accept", "application/json")
    url = options.get("url")
    if not url:
        raise DiscoveryError(label, "'url' is required")
    if not str(url).startswith(("http://", "https://")):
        raise DiscoveryError(label, f"'url' must be an http:// or https:// URL, got {url!r}")
    headers.setdefault("User-Agent", "rtmpedge-media-servers")
    try:
        opener = build_opener(HTTPSHandler(context=_tls_context(options)))  # proxies from the environment too
        with opener.open(Request(url, headers=headers), timeout=float(options.get("timeout", 10))) as response:  # noqa: S310 - scheme checked above
            body = response.read()
    except HTTPError as e:
        raise DiscoveryError(label, f"GET {url} answered HTTP {e.code} {e.reason}") from e
    except TimeoutError as e:
        raise DiscoveryError(label, f"GET {url} timed out after {options.get('timeout', 10)}s") from e
    except URLError as e:
        reason = "timed out" if isinstance(e.reason, (TimeoutError, socket.timeout)) else e.reason
        raise DiscoveryError(label, f"GET {url} failed: {reason}") from e
    except OSError as e:
        raise DiscoveryError(label, f"GET {url} failed: {e}") from e
    try:
        return json.loads(body)
    except ValueError as e:
        raise DiscoveryError(label, f"GET {url} did not return JSON: {e}") from e


def discover(label: str, options: dict) -> list[MediaServer]:
    data = _fetch(label, options)
    if isinstance(data, dict) and "servers" in data:
        data = data["servers"]
    return servers_from_records(label, data, "id", "the JSON answer", options)

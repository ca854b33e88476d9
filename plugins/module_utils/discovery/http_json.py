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
from http.client import HTTPException
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
    if not options["validate_certs"]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _read_capped(label: str, url: str, response, limit: int) -> bytes:
    """The whole body, at most `limit` bytes; read1 returns what arrived, so a trickle cannot block a read."""
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise DiscoveryError(label, f"GET {url} announced {declared} bytes, more than max_bytes ({limit})")
    chunks, size = [], 0
    while True:
        chunk = response.read1(65536)
        if not chunk:
            if getattr(response, "length", None):  # what Content-Length announced and never came
                raise DiscoveryError(label, f"GET {url}: the answer ended {response.length} bytes short of its length")
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise DiscoveryError(label, f"GET {url} answered more than max_bytes ({limit})")
        chunks.append(chunk)


def _fetch(label: str, options: dict) -> object:
    headers = {str(k): str(v) for k, v in (options.get("headers") or {}).items()}
    if options.get("bearer_token"):
        headers["Authorization"] = f"Bearer {options['bearer_token']}"
    headers.setdefault("Accept", "application/json")
    url = options["url"]
    if not url.startswith(("http://", "https://")):
        raise DiscoveryError(label, f"'url' must be an http:// or https:// URL, got {url[:100]!r}")
    headers.setdefault("User-Agent", "rtmpedge-media-servers")
    timeout = options["timeout"]
    try:
        opener = build_opener(HTTPSHandler(context=_tls_context(options)))  # proxies from the environment too
        with opener.open(Request(url, headers=headers), timeout=timeout) as response:  # noqa: S310 - scheme checked above
            body = _read_capped(label, url, response, options["max_bytes"])
    except HTTPError as e:
        raise DiscoveryError(label, f"GET {url} answered HTTP {e.code} {e.reason}") from e
    except TimeoutError as e:
        raise DiscoveryError(label, f"GET {url} timed out after {timeout:g}s") from e
    except URLError as e:
        reason = "timed out" if isinstance(e.reason, (TimeoutError, socket.timeout)) else e.reason
        raise DiscoveryError(label, f"GET {url} failed: {reason}") from e
    except (OSError, HTTPException) as e:
        # Not HTTP at all (an SSH banner), a body shorter than announced, a reset.
        raise DiscoveryError(label, f"GET {url} failed: {type(e).__name__}: {str(e)[:200] or 'no detail'}") from e
    try:
        return json.loads(body)
    except RecursionError as e:
        raise DiscoveryError(label, f"GET {url} answered JSON nested too deeply to be a list of servers") from e
    except ValueError as e:
        raise DiscoveryError(label, f"GET {url} did not return JSON: {str(e)[:200]}") from e


def discover(label: str, options: dict) -> list[MediaServer]:
    data = _fetch(label, options)
    if isinstance(data, dict) and "servers" in data:
        data = data["servers"]
    return servers_from_records(label, data, "id", "the JSON answer", options)

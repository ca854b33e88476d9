# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The media servers' lines in haproxy.cfg: written, read back, replaced, and told apart from the rest.

The haproxy role's template writes server lines with server_line() (through a filter),
and the reconcile code rewrites them with the same function, so both produce the same
file. Pure Python, no Ansible import.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

# Keywords that open a section; any of them ends the backend being read.
_SECTIONS = (
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "peers",
    "resolvers",
    "userlist",
    "program",
    "http-errors",
    "ring",
    "cache",
    "mailers",
)
_SECTION = re.compile(rf"^({'|'.join(map(re.escape, _SECTIONS))})(\s|$)")


class ConfigError(Exception):
    """haproxy.cfg does not have the shape the role writes."""


def server_line(server: dict) -> str:
    """One media server as the template and the reconcile job write it (no indentation).

    A server to drain gets weight 0 (the configuration has no drain keyword); one in
    maintenance gets `disabled`.
    """
    weight = 0 if server["state"] == "drain" else server["weight"]
    line = f"server {server['name']} {server['address']}:{server['port']} weight {weight}"
    if server.get("maxconn"):
        line += f" maxconn {server['maxconn']}"
    if server["state"] == "maint":
        line += " disabled"
    return line


def file_view(server: dict) -> dict:
    """What read_backend() reads back from server_line(server), without writing and parsing the line."""
    return {
        "name": server["name"],
        "address": server["address"],
        "port": server["port"],
        "weight": 0 if server["state"] == "drain" else server["weight"],
        "maxconn": server.get("maxconn") or 0,
        "state": "maint" if server["state"] == "maint" else "ready",
    }


def _backend_span(lines: list[str], backend: str) -> tuple[int, int]:
    """Index of the backend's header line and of the line after its last one."""
    start = next((i for i, line in enumerate(lines) if line.split()[:2] == ["backend", backend]), None)
    if start is None:
        raise ConfigError(f"haproxy.cfg has no 'backend {backend}' section")
    end = next((i for i in range(start + 1, len(lines)) if _SECTION.match(lines[i])), len(lines))
    return start, end


def _is_server(line: str) -> bool:
    return line.lstrip()[:7] in ("server ", "server\t")


def parse_server(line: str) -> dict:
    """A `server` line back into name, address, port, weight, maxconn and state."""
    words = line.split()
    if len(words) < 3 or ":" not in words[2]:
        raise ConfigError(f"cannot read server line {line.strip()!r}")
    address, _colon, port = words[2].rpartition(":")
    options = dict(itertools.pairwise(words[3:]))
    return {
        "name": words[1],
        "address": address.strip("[]"),
        "port": int(port),
        "weight": int(options.get("weight", 1)),
        "maxconn": int(options.get("maxconn", 0)),
        "state": "maint" if "disabled" in words[3:] else "ready",
    }


def read_backend(text: str, backend: str, parsed: dict | None = None) -> dict:
    """The backend's servers (by name, in file order) and its default-server options.

    `parsed` (line -> server) carries lines already read from another version of the file:
    two versions of a big backend share all but a few lines, each parsed once. The
    entries are shared between the results: read them, never change them.
    """
    lines = text.splitlines()
    start, end = _backend_span(lines, backend)
    servers: dict[str, dict] = {}
    default_options = ""
    parsed = {} if parsed is None else parsed
    for line in lines[start + 1 : end]:
        if _is_server(line):
            server = parsed.get(line)
            if server is None:
                server = parsed[line] = parse_server(line)
            servers[server["name"]] = server
        elif line.split()[:1] == ["default-server"]:
            default_options = line.split(None, 1)[1].strip() if len(line.split()) > 1 else ""
    return {"servers": servers, "default_server": default_options}


def replace_servers(text: str, backend: str, servers: Iterable[dict]) -> str:
    """The config with the backend's server lines replaced by lines for these servers.

    They go where the first server line was, else after the backend's last
    non-empty line.
    """
    lines = text.splitlines()
    start, end = _backend_span(lines, backend)
    body = lines[start + 1 : end]
    indent = "    "
    first = next((i for i, line in enumerate(body) if _is_server(line)), None)
    if first is not None:
        indent = body[first][: len(body[first]) - len(body[first].lstrip())]
    kept = [line for line in body if not _is_server(line)]
    at = first if first is not None else len(kept)
    if first is None:
        while at > 0 and not kept[at - 1].strip():
            at -= 1
    new = [indent + server_line(s) for s in servers]
    body = kept[:at] + new + kept[at:]
    result = lines[: start + 1] + body + lines[end:]
    return "\n".join(result) + ("\n" if text.endswith("\n") else "")


def spoofs_client_ip(text: str, backend: str) -> bool:
    """Whether the backend connects from the publisher's own address (`source ... usesrc`: transparent mode)."""
    if "usesrc" not in text:  # the reconcile job asks on every full run: no second split of a big file
        return False
    lines = text.splitlines()
    start, end = _backend_span(lines, backend)
    return any(line.split()[:1] == ["source"] and "usesrc" in line.split() for line in lines[start + 1 : end])


def structure(text: str, backend: str, keep: frozenset | set = frozenset()) -> str:
    """The config without the backend's server lines (but those of the servers named in `keep`):
    what only a reload can change."""
    lines = text.splitlines()
    start, end = _backend_span(lines, backend)
    body = [line for line in lines[start + 1 : end] if not _is_server(line) or _server_name(line) in keep]
    return "\n".join(lines[: start + 1] + body + lines[end:])


def _server_name(line: str) -> str:
    words = line.split(None, 2)
    return words[1] if len(words) > 1 else ""

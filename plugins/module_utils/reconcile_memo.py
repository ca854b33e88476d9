# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the reconcile job last confirmed, so that a run whose inputs did not change costs
one `show servers state` (docs/large-fleets.md).

A fleet read from local files only (static sources) is fully determined by bytes the job
can hash: the collection's own code, the job's settings, the discovery file and each
`servers_file`. When those bytes, haproxy.cfg and its last good copy are what the last
confirmed run saw, discovering again would give the same servers and the same file, so
only HAProxy's running servers are compared. Anything else (a source that asks the
network, any byte changed, a running server that differs in any way) takes the job's full
path, which decides exactly as before. The memo lives on tmpfs (/run): a reboot clears it.
Pure Python, standard library only, and imported before anything heavier.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os

from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import (
    RuntimeAPIError,
    admin_state,
    servers_state_rows,
)

_VERSION = 2
_HERE = os.path.dirname(os.path.abspath(__file__))


def memo_path(lock_path: str) -> str:
    """Beside the apply lock (/run/rtmpedge-reconcile.lock -> /run/rtmpedge-reconcile.memo.json)."""
    return os.path.splitext(lock_path)[0] + ".memo.json"


def _code_digest() -> str:
    """The module_utils the job runs (a collection upgrade changes it)."""
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(_HERE)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "rb") as handle:
                    digest.update(name.encode() + b"\0" + handle.read() + b"\0")
    return digest.hexdigest()


def _file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def inputs_digest(settings_repr: str, config_bytes: bytes, config: object) -> str | None:
    """The digest of everything the desired servers come from, or None when a source must ask
    the network (or the configuration is not one the full path would accept as it is)."""
    if not isinstance(config, dict) or not isinstance(config.get("sources"), list):
        return None
    digest = hashlib.sha256(f"{_VERSION}\0{_code_digest()}\0{settings_repr}\0".encode())
    digest.update(config_bytes)
    for source in config["sources"]:
        if not isinstance(source, dict) or source.get("type") != "static":
            return None
        if "servers_file" in source:
            path = source["servers_file"]
            if not isinstance(path, str):
                return None
            try:
                with open(path, "rb") as handle:
                    digest.update(b"\0" + handle.read())
            except OSError:
                return None
    return digest.hexdigest()


class Memo:
    """The last confirmed run: its inputs' digest, the file HAProxy runs and the servers it must run."""

    def __init__(self, path: str):
        self.path = path

    def load(self) -> dict | None:
        try:
            with open(self.path, "rb") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("version") == _VERSION else None

    def still_applies(self, key: str, config_path: str, last_good_path: str) -> dict | None:
        """The memo when it was written for these inputs and both files are still what it saw."""
        data = self.load()
        if not data or data.get("key") != key:
            return None
        config = data.get("config_sha256")
        if not config or _file_digest(config_path) != config or _file_digest(last_good_path) != config:
            return None
        return data

    def running_as_confirmed(self, data: dict, show_servers_state: str, backend: str) -> bool:
        """Whether HAProxy runs exactly the confirmed servers (an operator's drain or maintenance of a
        server the file has ready counts as running it, as in backend_sync.already_running)."""
        try:
            rows = list(servers_state_rows(show_servers_state, backend))
        except (RuntimeAPIError, ValueError, IndexError, KeyError):
            return False
        if _listing((name, address, port, weight) for name, address, _fqdn, port, weight, _bits in rows) != data.get(
            "servers"
        ):
            return False
        maint = data.get("maint") or []
        if maint:
            bits = {row[0]: row[5] for row in rows}
            return all(admin_state(bits[name]) == "maint" for name in maint)
        return True

    def write(self, key: str, config_text: str, servers: list[dict], warnings: list[str]) -> None:
        """Record a confirmed run: `servers` are file views (backend_sync's), `config_text` the file."""
        data = {
            "version": _VERSION,
            "key": key,
            "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
            "servers": _listing((s["name"], s["address"], s["port"], s["weight"]) for s in servers),
            "maint": [s["name"] for s in servers if s["state"] == "maint"],
            "warnings": warnings,
        }
        temporary = f"{self.path}.{os.getpid()}"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle, separators=(",", ":"))
            os.replace(temporary, self.path)
        except OSError:
            # Only a shortcut: without it the next run takes the full path.
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _listing(servers) -> str:
    """(name, address, port, weight) rows as one sorted text: one string to store, load and compare
    (HAProxy lists servers added at runtime after the others, the file sorts them by name)."""
    return "\n".join(sorted(f"{name} {address} {port} {weight}" for name, address, port, weight in servers))

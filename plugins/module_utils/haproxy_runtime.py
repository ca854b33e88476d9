# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for HAProxy's runtime API and master CLI (UNIX sockets), and parsers of their answers.

One implementation for the modules and the reconcile job. Pure Python, no Ansible import.
"""

from __future__ import annotations

import socket
import time

DEFAULT_TIMEOUT = 10.0


class RuntimeAPIError(Exception):
    """The socket could not be reached, or HAProxy refused the command."""


def send_command(path: str, command: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Send one command in non-interactive mode and return HAProxy's whole answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        # The master CLI answers only once our side is closed for writing.
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError as e:
        raise RuntimeAPIError(f"HAProxy socket {path}: {command!r} failed: {e}") from e
    finally:
        sock.close()
    return b"".join(chunks).decode(errors="replace")


def parse_show_proc(text: str) -> dict:
    """Parse the master CLI's `show proc`.

    Returns {'master': {'pid', 'reloads', 'failed'}, 'workers': [{'pid', 'reloads', 'uptime', 'version'}]}.
    'failed' (failed reloads) is None where the version does not report it.
    """
    master: dict | None = None
    workers: list[dict] = []
    section = "master"
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if stripped.startswith("# workers"):
                section = "workers"
            elif stripped.startswith("# programs"):
                section = "programs"
            continue
        fields = stripped.split()
        if len(fields) < 3 or not fields[0].isdigit():
            continue
        if fields[1] == "master":
            failed = None
            if "[failed:" in stripped:
                failed = int(stripped.split("[failed:", 1)[1].split("]", 1)[0])
            master = {"pid": int(fields[0]), "reloads": int(fields[2]), "failed": failed}
        elif section == "workers" and fields[1] == "worker":
            workers.append(
                {
                    "pid": int(fields[0]),
                    "reloads": int(fields[2]),
                    "uptime": fields[3] if len(fields) > 3 else "",
                    "version": fields[4] if len(fields) > 4 else "",
                }
            )
    if master is None:
        raise RuntimeAPIError(f"unexpected answer to 'show proc': {text[:200]!r}")
    return {"master": master, "workers": workers}


def show_proc(master_socket: str, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """The master's `show proc`, parsed."""
    return parse_show_proc(send_command(master_socket, "show proc", timeout))


def reload_outcome(before: dict, after: dict) -> str | None:
    """'failed', 'reloaded' (new worker up) or None (not done yet), comparing two `show proc`."""
    if (after["master"]["failed"] or 0) > (before["master"]["failed"] or 0):
        return "failed"
    reloaded = (
        after["master"]["reloads"] > before["master"]["reloads"] or after["master"]["pid"] != before["master"]["pid"]
    )
    old_pids = {w["pid"] for w in before["workers"]}
    if reloaded and any(w["pid"] not in old_pids for w in after["workers"]):
        return "reloaded"
    return None


def wait_for_reload(master_socket: str, before: dict, seconds: float, interval: float = 0.2) -> tuple[str, dict | None]:
    """Poll the master after a reload signal until it reports the outcome.

    Returns ('reloaded' | 'failed' | 'timeout', last `show proc` or None). While the
    master re-executes itself its CLI drops connections: those polls are retried.
    """
    deadline = time.monotonic() + seconds
    after = None
    while True:
        try:
            after = show_proc(master_socket)
        except RuntimeAPIError:
            after = None
        outcome = reload_outcome(before, after) if after else None
        if outcome:
            return outcome, after
        if time.monotonic() > deadline:
            return "timeout", after
        time.sleep(interval)

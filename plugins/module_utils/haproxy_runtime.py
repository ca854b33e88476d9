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


# srv_admin_state bits (HAProxy's SRV_ADMF_*): forced/inherited/config/resolution maintenance,
# forced/inherited drain. A server with only the config bit left was set ready at runtime.
ADMIN_FMAINT = 0x01
ADMIN_IMAINT = 0x02
ADMIN_RMAINT = 0x20
ADMIN_HMAINT = 0x40
ADMIN_FDRAIN = 0x08
ADMIN_IDRAIN = 0x10
_MAINT_BITS = ADMIN_FMAINT | ADMIN_IMAINT | ADMIN_RMAINT | ADMIN_HMAINT
_DRAIN_BITS = ADMIN_FDRAIN | ADMIN_IDRAIN


def admin_state(bits: int) -> str:
    """'maint', 'drain' or 'ready' for a srv_admin_state value."""
    if bits & _MAINT_BITS:
        return "maint"
    if bits & _DRAIN_BITS:
        return "drain"
    return "ready"


def servers_state_rows(text: str, backend: str):
    """The rows of `show servers state` (format 1) for one backend, as
    (name, address, fqdn, port, weight, admin bits) with port and weight as HAProxy wrote them.

    Columns by position, found once from the header, and each row split only as far as the
    last of them: a big backend has tens of thousands of rows of about twenty columns.
    """
    lines = text.splitlines()
    if not lines or lines[0].strip() != "1":
        raise RuntimeAPIError(f"unexpected answer to 'show servers state': {text[:200]!r}")
    columns, last = None, 0
    for line in lines[1:]:
        if line.startswith("#"):
            at = {name: i for i, name in enumerate(line.lstrip("# ").split())}
            columns = [at[c] for c in ("be_name", "srv_name", "srv_addr", "srv_port", "srv_uweight", "srv_admin_state")]
            be, name, addr, port, weight, admin = columns
            fqdn_at = at.get("srv_fqdn", -1)
            last = max(*columns, fqdn_at)
            continue
        fields = line.split(None, last + 1) if columns else ()
        if len(fields) <= last or fields[be] != backend:
            continue
        # A server given by name: its address is '-' until resolved, its name in srv_fqdn.
        fqdn = fields[fqdn_at] if fqdn_at >= 0 else "-"
        address = fields[addr] if fields[addr] != "-" else fqdn
        yield fields[name], address, "" if fqdn == "-" else fqdn, fields[port], fields[weight], int(fields[admin])


def parse_servers_state(text: str, backend: str) -> dict[str, dict]:
    """Parse `show servers state` (format 1): {server name: {address, fqdn, port, state, weight, admin}}."""
    return {
        name: {
            "address": address,
            "fqdn": fqdn,
            "port": int(port),
            "weight": int(weight),
            "state": admin_state(bits),
            "admin": bits,
        }
        for name, address, fqdn, port, weight, bits in servers_state_rows(text, backend)
    }


_STAT_COLUMNS = ("pxname", "svname", "scur", "slim", "status")


def parse_stat(text: str, backend: str) -> dict[str, dict]:
    """Parse `show stat` CSV: {server name: {sessions (scur), maxconn (slim, 0 = none), status}}."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# pxname,"):
        raise RuntimeAPIError(f"unexpected answer to 'show stat': {text[:200]!r}")
    header = lines[0][2:].split(",")
    missing = [name for name in _STAT_COLUMNS if name not in header]
    if missing:
        raise RuntimeAPIError(f"'show stat' has no column {', '.join(missing)}: {lines[0][:200]!r}")
    px, sv, scur, slim, status = (header.index(name) for name in _STAT_COLUMNS)
    last = max(px, sv, scur, slim, status)
    servers = {}
    for line in lines[1:]:
        # Only as far as the last column read: a row has about a hundred.
        row = line.split(",", last + 1)
        if len(row) <= last or row[px] != backend or row[sv] in ("FRONTEND", "BACKEND"):
            continue
        servers[row[sv]] = {
            "sessions": int(row[scur] or 0),
            "maxconn": int(row[slim] or 0),
            "status": row[status],
        }
    return servers


def servers_state(admin_socket: str, backend: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, dict]:
    """The current worker's view of a backend's servers in one command: the state file columns only."""
    return parse_servers_state(send_command(admin_socket, cmd_show_servers_state(backend), timeout), backend)


def backend_state(admin_socket: str, backend: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, dict]:
    """The current worker's view of a backend's servers: state file columns plus sessions and maxconn."""
    servers = servers_state(admin_socket, backend, timeout)
    stats = parse_stat(send_command(admin_socket, cmd_show_stat(backend), timeout), backend)
    for name, server in servers.items():
        server.update(stats.get(name, {"sessions": 0, "maxconn": 0, "status": ""}))
    return servers


def _show_proc_settled(master_socket: str, timeout: float, seconds: float = 5.0) -> dict:
    """`show proc`, retried for a few seconds: the master drops its CLI while it re-executes on a reload."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return show_proc(master_socket, timeout)
        except RuntimeAPIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def sessions_in_every_worker(
    master_socket: str, backend: str, timeout: float = DEFAULT_TIMEOUT
) -> tuple[dict[str, dict[int, int]], bool]:
    """Sessions per server in every worker, old ones included: ({server: {worker pid: sessions}},
    complete). `complete` is False when a worker that still runs did not answer.

    After a reload the streams that started before it stay on the old worker, which
    the admin socket (current worker only) no longer shows.
    """
    counts: dict[str, dict[int, int]] = {}
    missed = []
    for worker in _show_proc_settled(master_socket, timeout)["workers"]:
        try:
            answer = send_command(master_socket, f"@!{worker['pid']} {cmd_show_stat(backend)}", timeout)
            stats = parse_stat(answer, backend)
        except RuntimeAPIError:
            missed.append(worker["pid"])
            continue
        for name, row in stats.items():
            counts.setdefault(name, {})[worker["pid"]] = row["sessions"]
    if missed:  # a worker that exited between the two commands took its sessions with it
        running = {w["pid"] for w in _show_proc_settled(master_socket, timeout)["workers"]}
        return counts, not running.intersection(missed)
    return counts, True


def sessions_by_worker(master_socket: str, backend: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, dict[int, int]]:
    """Sessions per server in every worker, old ones included: {server: {worker pid: sessions}}."""
    return sessions_in_every_worker(master_socket, backend, timeout)[0]


# --- The vocabulary: every runtime command the collection sends. Changes come as (command,
# expected answer); an empty expectation means HAProxy answers nothing when it agrees.


def cmd_show_servers_state(backend: str = "") -> str:
    """The servers' state (format 1), of one backend or of all (what load-server-state-from-file reads)."""
    return f"show servers state {backend}".strip()


def cmd_show_stat(backend: str) -> str:
    """The backend's stats CSV, servers only (type 4), with their sessions (scur) and limits (slim)."""
    return f"show stat {backend} 4 -1"


def cmd_add_server(ref: str, address: str, port: int, options: str, *, weight: int | None, maxconn: int) -> tuple:
    add = f"add server {ref} {address}:{port} {options}"
    if weight is not None:
        add += f" weight {weight}"
    if maxconn:
        add += f" maxconn {maxconn}"
    return " ".join(add.split()), "New server registered"


def cmd_enable_health(ref: str) -> tuple:
    return f"enable health {ref}", ""


def cmd_set_state(ref: str, state: str) -> tuple:
    """ready takes new streams, drain keeps the live ones only, maint takes none and stops checks."""
    return f"set server {ref} state {state}", ""


def cmd_set_weight(ref: str, weight: int) -> tuple:
    return f"set weight {ref} {weight}", ""


def cmd_set_maxconn(ref: str, maxconn: int) -> tuple:
    return f"set maxconn server {ref} {maxconn}", ""


def cmd_set_addr(ref: str, address: str, port: int) -> tuple:
    return f"set server {ref} addr {address} port {port}", "changed"


def cmd_del_server(ref: str) -> tuple:
    return f"del server {ref}", "Server deleted"


def add_server_commands(
    ref: str,
    address: str,
    port: int,
    options: str,
    *,
    weight: int | None = None,
    maxconn: int = 0,
    state: str = "ready",
) -> list[tuple[str, str]]:
    """The commands that add backend/server at runtime in `state`.

    A dynamic server inherits nothing from default-server (options are spelled out)
    and starts in maintenance with its health checks off.
    """
    commands = [cmd_add_server(ref, address, port, options, weight=weight, maxconn=maxconn)]
    if "check" in options.split():
        commands.append(cmd_enable_health(ref))
    if state != "maint":
        commands.append(cmd_set_state(ref, state))
    return commands


def remove_server_commands(ref: str, state: str) -> list[tuple[str, str]]:
    """The commands that delete a server without sessions (it must be in maintenance first)."""
    return ([] if state == "maint" else [cmd_set_state(ref, "maint")]) + [cmd_del_server(ref)]


def run(admin_socket: str, command: str, expect: str = "", timeout: float = DEFAULT_TIMEOUT) -> str:
    """Send an admin command; raise unless the answer is empty or contains `expect`."""
    answer = send_command(admin_socket, command, timeout).strip()
    if (expect and expect not in answer) or (not expect and answer):
        raise RuntimeAPIError(f"HAProxy refused {command!r}: {answer or 'no answer'}")
    return answer


def _file_entry_lines(admin_socket: str, kind: str, path: str, timeout: float) -> list[str] | None:
    """The entry lines ("<reference> <entry>") of the ACL or map (`kind`) the running worker loaded
    from file `path`; None if it loads none from there."""
    listing = send_command(admin_socket, f"show {kind}", timeout)
    if f"({path})" not in listing:
        return None
    answer = send_command(admin_socket, f"show {kind} {path}", timeout)
    # The reference is a pointer like 0x55d0c3b8a510.
    return [line.split(None, 1)[1].strip() for line in answer.splitlines() if line.startswith("0x") and " " in line]


def _replace_file_entries(admin_socket: str, kind: str, path: str, entries: list[str], timeout: float) -> None:
    """Swap an ACL's or map's entries for `entries` at once (prepare, add to the new version, commit)."""
    answer = run(admin_socket, f"prepare {kind} {path}", expect="New version created:", timeout=timeout)
    version = answer.rsplit(":", 1)[1].strip()
    for entry in entries:
        run(admin_socket, f"add {kind} @{version} {path} {entry}", timeout=timeout)
    run(admin_socket, f"commit {kind} @{version} {path}", timeout=timeout)


def acl_entries(admin_socket: str, path: str, timeout: float = DEFAULT_TIMEOUT) -> list[str] | None:
    """Patterns of the ACL loaded from file `path` by the running worker; None if it loads none."""
    return _file_entry_lines(admin_socket, "acl", path, timeout)


def replace_acl(admin_socket: str, path: str, entries: list[str], timeout: float = DEFAULT_TIMEOUT) -> None:
    _replace_file_entries(admin_socket, "acl", path, entries, timeout)


def map_entries(admin_socket: str, path: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, str] | None:
    """{key: value} of the map loaded from file `path` by the running worker; None if it loads none."""
    lines = _file_entry_lines(admin_socket, "map", path, timeout)
    if lines is None:
        return None
    pairs = (line.partition(" ") for line in lines)
    return {key: value.strip() for key, _sep, value in pairs}


def replace_map(admin_socket: str, path: str, entries: dict[str, str], timeout: float = DEFAULT_TIMEOUT) -> None:
    _replace_file_entries(admin_socket, "map", path, [f"{k} {v}" for k, v in sorted(entries.items())], timeout)


def ssl_cert_loaded(admin_socket: str, path: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether the running worker serves a certificate loaded from file `path`."""
    listing = send_command(admin_socket, "show ssl cert", timeout)
    return path in (line.strip() for line in listing.splitlines())


def ssl_cert_info(admin_socket: str, path: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, str]:
    """`show ssl cert <path>` as {'serial', 'not_after', 'subject', 'issuer', 'fingerprint'}; {} if not loaded."""
    names = {
        "Serial": "serial",
        "notAfter": "not_after",
        "Subject": "subject",
        "Issuer": "issuer",
        "SHA1 FingerPrint": "fingerprint",
    }
    info = {}
    for line in send_command(admin_socket, f"show ssl cert {path}", timeout).splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in names:
            info[names[key]] = value.strip()
    return info


def replace_ssl_cert(admin_socket: str, path: str, pem: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Swap the certificate HAProxy loaded from `path` for `pem` (chain and key), without a reload.

    `set ssl cert` opens a transaction (one at a time, process-wide) and `commit ssl cert`
    makes new handshakes use it; a refused payload or commit aborts the transaction, so the
    next attempt does not find it open. The payload ends at the first empty line.
    """
    payload = "\n".join(line for line in pem.splitlines() if line.strip())
    try:
        run(admin_socket, f"set ssl cert {path} <<\n{payload}\n", expect="Transaction", timeout=timeout)
        run(admin_socket, f"commit ssl cert {path}", expect="Success!", timeout=timeout)
    except RuntimeAPIError:
        send_command(admin_socket, f"abort ssl cert {path}", timeout)
        raise

# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply a new haproxy.cfg to the running HAProxy with as few reloads as possible.

Membership changes (servers added, removed, re-weighted, moved, put in maintenance)
go through the runtime API; only a change elsewhere in the file needs a reload,
which every live stream would otherwise pin to an old worker for hours. Used by
the haproxy_apply module (the haproxy role's handler) and the reconcile job.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_config import (
    ConfigError,
    file_view,
    read_backend,
    structure,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import (
    RuntimeAPIError,
    add_server_commands,
    backend_state,
    cmd_set_addr,
    cmd_set_maxconn,
    cmd_set_state,
    cmd_set_weight,
    remove_server_commands,
    run,
    servers_state,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_service import (
    ReloadError,
    reload,
    validate,
    write_atomically,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_settings import Settings


class SyncError(Exception):
    """Nothing was changed, for the reason given."""


@dataclass
class Change:
    kind: str  # add | address | weight | maxconn | state | drain | remove
    server: str
    commands: list[tuple[str, str]] = field(default_factory=list)  # (command, expected answer)
    detail: str = ""


def check_guards(desired: dict, previous: dict, settings: Settings, allow_shrink: bool = False) -> None:
    """Refuse an empty backend or one that lost too many servers at once."""
    if not desired and not settings.allow_empty:
        raise SyncError("the new configuration has no media servers (allow an empty backend to accept that)")
    removed = [name for name in previous if name not in desired]
    if previous and not allow_shrink and len(removed) / len(previous) > settings.max_shrink:
        raise SyncError(
            f"the backend would shrink from {len(previous)} to {len(desired)} servers, removing "
            f"{len(removed)} ({', '.join(sorted(removed)[:10])}); more than {settings.max_shrink:.0%} at once "
            "looks like broken discovery. Allow the shrink explicitly for an intended scale-in."
        )


def _updates(ref: str, name: str, want: dict, have: dict, was: dict | None) -> list[Change]:
    """Changes for a server both running and wanted."""
    changes = []
    if want["port"] != have["port"] or want["address"] not in (have["address"], have.get("fqdn")):
        move = f"{have['address']}:{have['port']} -> {want['address']}:{want['port']}"
        changes.append(Change("address", name, [cmd_set_addr(ref, want["address"], want["port"])], move))
    for kind, command in (("weight", cmd_set_weight), ("maxconn", cmd_set_maxconn)):
        if kind in have and have[kind] != want[kind]:  # no maxconn in a view without stats
            changes.append(Change(kind, name, [command(ref, want[kind])], f"{have[kind]} -> {want[kind]}"))
    operator_set = was is not None and was["state"] == "ready" and have["state"] != "ready"
    if have["state"] != want["state"] and not operator_set:
        detail = f"{have['state']} -> {want['state']}"
        changes.append(Change("state", name, [cmd_set_state(ref, want["state"])], detail))
    return changes


def _departures(ref: str, name: str, have: dict) -> list[Change]:
    """A running server no longer wanted: drain it, delete it once it has no session."""
    changes = []
    if have["state"] == "ready":
        changes.append(Change("drain", name, [cmd_set_state(ref, "drain")], f"{have['sessions']} sessions"))
    if have["sessions"] == 0:
        changes.append(Change("remove", name, remove_server_commands(ref, have["state"])))
    return changes


def plan_changes(backend: str, desired: dict, previous: dict, running: dict, default_options: str) -> list[Change]:
    """Runtime commands that turn `running` into `desired`.

    `previous` is the configuration HAProxy last applied: a drain or maintenance set
    at runtime on a server that stayed in the file came from an operator (or the
    drain playbook) and is left alone; one the file asked for is undone when the
    file stops asking.
    """
    changes = []
    for name, want in desired.items():
        ref = f"{backend}/{name}"
        if name in running:
            changes += _updates(ref, name, want, running[name], previous.get(name))
        else:
            commands = add_server_commands(
                ref,
                want["address"],
                want["port"],
                default_options,
                weight=want["weight"],
                maxconn=want["maxconn"],
                state=want["state"],
            )
            changes.append(Change("add", name, commands, f"{want['address']}:{want['port']}"))
    for name, have in running.items():
        if name not in desired:
            changes += _departures(f"{backend}/{name}", name, have)
    return changes


def apply_changes(admin_socket: str, changes: list[Change]) -> list[Change]:
    """Send the changes' commands in order; returns the changes applied. Raises RuntimeAPIError.

    A server that gained a session between the read and `del server` stays draining.
    """
    applied = []
    for change in changes:
        try:
            for command, expect in change.commands:
                run(admin_socket, command, expect)
        except RuntimeAPIError as e:
            if change.kind == "remove" and "connection" in str(e).lower():
                continue
            raise
        applied.append(change)
    return applied


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _servers(text: str, backend: str, what: str, parsed: dict | None = None) -> dict:
    try:
        return read_backend(text, backend, parsed)
    except (ConfigError, ValueError) as e:
        raise SyncError(f"{what}: {e}") from e


def summary(changes: list[Change]) -> dict:
    """Server names by kind of change."""
    result: dict[str, list[str]] = {}
    for change in changes:
        result.setdefault(change.kind, []).append(change.server)
    return result


def _runtime_plan(settings: Settings, new: dict, old: dict) -> tuple[list[Change], dict]:
    """The runtime changes, and the servers that left but still carry sessions."""
    try:
        running = backend_state(settings.admin_socket, settings.backend)
    except RuntimeAPIError as e:
        raise SyncError(f"cannot read the running servers: {e}") from e
    changes = plan_changes(settings.backend, new["servers"], old["servers"], running, new["default_server"])
    removed = {c.server for c in changes if c.kind == "remove"}
    lingering = {
        name: have["sessions"] for name, have in running.items() if name not in new["servers"] and name not in removed
    }
    return changes, lingering


def _reload_or_restore(settings: Settings, baseline: str | None) -> dict:
    """A verified reload; when it fails, the file goes back to what HAProxy still runs."""
    try:
        return reload(
            settings.service,
            master_socket=settings.master_socket,
            admin_socket=settings.admin_socket,
            state_file=settings.server_state_file,
            timeout=settings.reload_timeout,
            command=settings.reload_command or None,
        )
    except ReloadError:
        if baseline is not None:
            write_atomically(settings.config_path, baseline, 0o640, settings.config_group)
        raise


def already_running(settings: Settings, candidate: str, servers: list[dict]) -> bool:
    """True when nothing is left to do: the file is `candidate`, HAProxy last applied it, and the
    running servers are exactly `servers` (the entries the file's server lines were written from).

    The reconcile job's no-change run, at the cost of one `show servers state`: the file is not
    parsed and no stats are read. Anything else (a departure, a difference, an unreadable
    socket) is left to apply_config. A maxconn set by hand at runtime is not seen here: it is
    put back at the next run that changes something.
    """
    if not servers or _read(settings.last_good_path) != candidate or _read(settings.config_path) != candidate:
        return False
    try:
        running = servers_state(settings.admin_socket, settings.backend)
    except RuntimeAPIError:
        return False
    if len(running) != len(servers):
        return False
    for server in servers:
        want = file_view(server)
        have = running.get(want["name"])
        if have is None:
            return False
        same = (have["address"], have["port"], have["weight"]) == (want["address"], want["port"], want["weight"])
        # An operator's drain or maintenance (running not ready, the file ready) is no change either.
        if not (same and (have["state"] == want["state"] or want["state"] == "ready")) and _updates(
            "", want["name"], want, have, want
        ):
            return False
    return True


def _baseline_servers(baseline: str | None, candidate: str, new: dict, backend: str, parsed: dict) -> dict:
    """The servers of what runs; the candidate's own when the file did not change, and the lines
    it shares with the candidate read once (`parsed`)."""
    if baseline == candidate:
        return new
    return _servers(baseline, backend, "the running configuration", parsed) if baseline else {"servers": {}}


def _structural(baseline: str | None, candidate: str, backend: str) -> bool:
    """Whether only a reload can apply the candidate (no baseline, or more than server lines differ)."""
    if baseline is None:
        return True
    return baseline != candidate and structure(candidate, backend) != structure(baseline, backend)


def apply_config(
    candidate: str,
    settings: Settings,
    allow_shrink: bool = False,
    check_mode: bool = False,
    trust_current: bool = False,
    *,
    force_reload: bool = False,
) -> dict:
    """Make HAProxy run `candidate` (the full haproxy.cfg text): at runtime when only servers
    changed, else by a verified reload. The file is replaced only once the candidate is
    valid, and the last good configuration stays in `last_good_path`. Without one, the
    file on disk counts as running only with `trust_current` (the reconcile job, which
    writes nothing else); otherwise HAProxy is reloaded to be sure. `force_reload` reloads
    even an unchanged file (after a package upgrade: the master re-executes the new binary).

    Returns {'changed', 'reloaded', 'changes' (kind -> servers), 'lingering' (server ->
    sessions), 'warnings', 'reason'}. Raises SyncError or ReloadError; then the running
    HAProxy and the file on disk are as they were.
    """
    current = _read(settings.config_path)
    last_good = _read(settings.last_good_path)
    baseline = last_good if last_good is not None else (current if trust_current else None)
    parsed: dict = {}
    new = _servers(candidate, settings.backend, "the new configuration", parsed)
    old = _baseline_servers(baseline, candidate, new, settings.backend, parsed)
    try:
        check_guards(new["servers"], old["servers"], settings, allow_shrink)
    except SyncError:
        # The caller may have written the file already (the role's template): put back what runs.
        if baseline is not None and current == candidate and not check_mode:
            write_atomically(settings.config_path, baseline, 0o640, settings.config_group)
        raise

    result = {"changed": False, "reloaded": False, "changes": {}, "lingering": {}, "warnings": [], "reason": ""}
    structural = force_reload or _structural(baseline, candidate, settings.backend)
    changes: list[Change] = []
    if not structural:
        changes, result["lingering"] = _runtime_plan(settings, new, old)
    file_changes = candidate != current
    result["changed"] = bool(changes) or file_changes or structural
    result["changes"] = summary(changes)
    if check_mode or not result["changed"]:
        result["reloaded"] = structural
        if not check_mode and last_good != candidate:
            write_atomically(settings.last_good_path, candidate, 0o640, settings.config_group)  # what runs
        return result

    staged = settings.config_path + ".rtmpedge-new"
    write_atomically(staged, candidate, 0o640, settings.config_group)
    try:
        if structural:
            validate(staged, settings.haproxy)
        else:
            _validate_server_lines(settings, candidate, new["servers"], old["servers"])
        if not structural:
            structural = not _apply_at_runtime(settings, changes, candidate, result)
        os.replace(staged, settings.config_path)
    finally:
        if os.path.exists(staged):
            os.unlink(staged)

    if structural:
        result["reason"] = result["reason"] or (
            "reload requested"
            if force_reload
            else "no last good configuration"
            if baseline is None
            else "structural change"
        )
        outcome = _reload_or_restore(settings, baseline)
        result["reloaded"] = True
        result["warnings"] += outcome.pop("warnings")
        result.update(outcome)
    write_atomically(settings.last_good_path, candidate, 0o640, settings.config_group)
    if result["reloaded"]:
        _check_running(settings, new["servers"])
    return result


def _validate_server_lines(settings: Settings, candidate: str, new: dict, old: dict) -> None:
    """`haproxy -c` of only the server lines that are new or changed, in the unchanged structure.

    The rest of the file is what HAProxy already runs; checking all of it again would cost
    what parsing the whole backend costs HAProxy, which grows with the square of its size.
    """
    fresh = {name for name, server in new.items() if old.get(name) != server}
    if not fresh:
        return  # servers removed only: nothing new to check
    probe = settings.config_path + ".rtmpedge-check"
    write_atomically(probe, structure(candidate, settings.backend, keep=fresh) + "\n", 0o640, settings.config_group)
    try:
        validate(probe, settings.haproxy)
    finally:
        os.unlink(probe)


def _apply_at_runtime(settings: Settings, changes: list[Change], candidate: str, result: dict) -> bool:
    """Send the changes; False when HAProxy refused one and a reload of the valid file must apply it."""
    try:
        applied = apply_changes(settings.admin_socket, changes)
    except RuntimeAPIError as e:
        # Once per configuration: the same failure again must not reload on every run.
        _remember_runtime_failure(settings, candidate, e)
        result["warnings"].append(f"runtime update failed, reloading instead: {e}")
        result["reason"] = f"runtime update failed: {e}"
        return False
    result["changes"] = summary(applied)
    _forget_runtime_failure(settings)
    return True


def _failure_marker(settings: Settings) -> str:
    return settings.last_good_path + ".runtime-failed"


def _remember_runtime_failure(settings: Settings, candidate: str, error: Exception) -> None:
    """Refuse a second reload for the same configuration's runtime failure (SyncError)."""
    import hashlib  # noqa: PLC0415 - only after a failure; the no-change run starts faster without it

    digest = hashlib.sha256(candidate.encode()).hexdigest()
    if _read(_failure_marker(settings)) == digest:
        raise SyncError(
            f"the runtime update failed again for the same configuration ({error}); HAProxy was reloaded for it "
            "once already and is not reloaded on every run: fix the cause, or apply it with the haproxy role"
        )
    write_atomically(_failure_marker(settings), digest, 0o640, settings.config_group)


def _forget_runtime_failure(settings: Settings) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_failure_marker(settings))


def _check_running(settings: Settings, wanted: dict) -> None:
    """After a reload, the new worker runs every server of the file; one it left out is an error."""
    try:
        running = backend_state(settings.admin_socket, settings.backend)
    except RuntimeAPIError as e:
        raise SyncError(f"HAProxy was reloaded, but its servers cannot be read: {e}") from e
    missing = sorted(set(wanted) - set(running))
    if missing:
        raise SyncError(f"HAProxy was reloaded but does not run {', '.join(missing[:10])} from the file")

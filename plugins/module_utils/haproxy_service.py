# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A verified, seamless reload of the HAProxy service: one implementation for the
haproxy_reload and haproxy_apply modules and the reconcile job. Pure Python.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import (
    RuntimeAPIError,
    cmd_show_servers_state,
    send_command,
    show_proc,
    wait_for_reload,
)


class ReloadError(Exception):
    """The reload was refused or HAProxy could not load the configuration."""

    def __init__(self, message: str, alerts: list[str] | None = None):
        super().__init__(message)
        self.alerts = alerts or []


def write_atomically(path: str, text: str, mode: int = 0o644, group: str | None = None) -> None:
    """Replace a file in one rename, so a reader never sees half of it."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        if group and os.geteuid() == 0:
            shutil.chown(tmp, group=group)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_server_state(admin_socket: str, path: str) -> str | None:
    """Write `show servers state` for load-server-state-from-file; returns a warning or None."""
    try:
        state = send_command(admin_socket, cmd_show_servers_state())
    except RuntimeAPIError as e:
        return f"server state not saved, drain/maint states set at runtime may be lost: {e}"
    if not state.startswith("1\n"):
        return f"server state not saved, unexpected answer: {state[:120]!r}"
    write_atomically(path, state)  # read by a master that may run as the haproxy user
    return None


def validate(config_path: str, haproxy: str = "haproxy") -> None:
    """`haproxy -c`; raises ReloadError with HAProxy's messages when the file is invalid."""
    try:
        result = subprocess.run(
            [haproxy, "-c", "-f", config_path], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ReloadError(f"cannot run {haproxy} -c: {e}") from e
    if result.returncode != 0:
        alerts = [line.strip() for line in (result.stdout + result.stderr).splitlines() if "ALERT" in line]
        raise ReloadError(f"{config_path} is not a valid HAProxy configuration: " + "; ".join(alerts), alerts)


def journal_alerts(service: str, since: float) -> list[str]:
    """HAProxy's ALERT lines (and the master's 'Loading failure') logged since a timestamp."""
    journalctl = shutil.which("journalctl")
    if not journalctl:
        return []
    result = subprocess.run(
        [journalctl, "-u", service, "--since", f"@{int(since) - 1}", "-o", "cat", "--no-pager"],
        capture_output=True,
        text=True,
        check=False,
    )
    return [line.strip() for line in result.stdout.splitlines() if "[ALERT]" in line or "Loading failure" in line]


def reload(
    service: str,
    *,
    master_socket: str,
    admin_socket: str,
    state_file: str,
    timeout: float,
    command: list[str] | None = None,
) -> dict:
    """Save the server state, `systemctl reload` (or `command`, for a master not run by
    systemd), and wait until the master runs a new worker.

    Returns {'master_pid', 'worker_pid', 'old_workers', 'warnings'}; raises ReloadError with
    HAProxy's own messages when the reload was refused or did not load.
    """
    try:
        before = show_proc(master_socket)
    except RuntimeAPIError as e:
        raise ReloadError(f"cannot read HAProxy's master CLI: {e}") from e
    old_pids = {w["pid"] for w in before["workers"]}
    warnings = []
    if state_file:
        warning = save_server_state(admin_socket, state_file)
        if warning:
            warnings.append(warning)

    started = time.time()
    command = command or ["systemctl", "reload", service]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        alerts = journal_alerts(service, started)
        raise ReloadError(
            "HAProxy reload refused: " + ("; ".join(alerts) or (result.stderr or result.stdout).strip()), alerts
        )

    outcome, after = wait_for_reload(master_socket, before, timeout)
    if outcome == "timeout":
        raise ReloadError(
            f"the HAProxy master did not report a reload with a new worker within {timeout}s",
            journal_alerts(service, started),
        )
    if outcome == "failed":
        alerts = journal_alerts(service, started)
        raise ReloadError(
            "HAProxy could not load the new configuration; the previous worker keeps serving: "
            + ("; ".join(alerts) or "see journalctl -u " + service),
            alerts,
        )
    new_workers = [w for w in after["workers"] if w["pid"] not in old_pids]
    return {
        "master_pid": after["master"]["pid"],
        "worker_pid": min(new_workers, key=lambda w: w["reloads"])["pid"],
        "old_workers": sorted(w["pid"] for w in after["workers"] if w["pid"] in old_pids),
        "warnings": warnings,
    }

# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reconcile job run by cron or a timer on each balancer (role rtmpedge.balancer.reconcile).

discover (the inventory plugin's own configuration file and sources) -> desired
server lines -> backend_sync.apply_config (runtime API, reload only when needed,
last good config kept) -> one log line. Needs Python 3 (and PyYAML for a
hand-written YAML discovery file; the role writes JSON), plus the client library
of the sources in use (boto3, dnspython, docker); no Ansible.
"""

from __future__ import annotations

import json
import os
import sys
import time
from types import SimpleNamespace

# Only what a run with nothing to do needs (reconcile_memo); discovery and the apply path
# are imported when a run has to discover.
from ansible_collections.rtmpedge.balancer.plugins.module_utils.apply_lock import LockBusy, locked
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import (
    RuntimeAPIError,
    cmd_show_servers_state,
    send_command,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_settings import FACT_PATH, Settings, read_fact
from ansible_collections.rtmpedge.balancer.plugins.module_utils.reconcile_memo import Memo, inputs_digest, memo_path

DEFAULT_CONFIG = "/etc/rtmpedge/reconcile/job.json"


class JobError(Exception):
    """The job's own configuration is unusable."""


def load_job(path: str) -> tuple[Settings, str, dict | None]:
    """The settings, the discovery file and the scale-in guard's settings (None: no guard):
    HAProxy's locations from the haproxy role's local fact, the job's own choices (lock wait,
    shrink limit, empty backend) from its JSON configuration."""
    try:
        with open(path) as handle:
            data = json.load(handle)
        fact = data.get("haproxy_fact", FACT_PATH)
        discovery_config = data["discovery_config"]
        job_settings = data.get("settings", {})
        guard = data.get("scale_guard") or None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise JobError(f"cannot use the job configuration {path}: {e}") from e
    try:
        settings = read_fact(fact)
    except (OSError, ValueError, TypeError) as e:
        raise JobError(f"cannot read HAProxy's locations from {fact} (run the haproxy role first): {e}") from e
    for key, value in job_settings.items():
        if not hasattr(settings, key):
            raise JobError(f"cannot use the job configuration {path}: unknown setting {key!r}")
        setattr(settings, key, value)
    return settings, discovery_config, guard


def _discovery_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as e:
        raise JobError(f"cannot read the discovery configuration {path}: {e}") from e


def _parse_discovery_config(path: str, raw: bytes) -> object:
    """JSON when the role wrote it (fast), else YAML (a hand-written one)."""
    try:
        return json.loads(raw)
    except ValueError:
        pass
    import yaml  # noqa: PLC0415 - only a hand-written YAML file needs PyYAML

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise JobError(f"cannot read the discovery configuration {path}: {e}") from e


def read_discovery_config(path: str) -> object:
    """The plugin configuration file, as a mapping."""
    return _parse_discovery_config(path, _discovery_bytes(path))


def _discovered(path: str, config: object) -> tuple[list, list[str]]:
    """The media servers discovery finds (MediaServer), sorted by name, and its warnings."""
    from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.sources import (  # noqa: PLC0415
        discover_all,
    )

    if not isinstance(config, dict):
        raise JobError(f"{path} must be a mapping like an inventory plugin configuration")
    servers, warnings = discover_all(
        config.get("sources"), bool(config.get("allow_empty", False)), config.get("on_source_error", "fail")
    )
    # merge() already gave every server its own address:port and name.
    # Sorted by name, as the role's template writes them: the same fleet gives the same file.
    return sorted(servers, key=lambda s: s.name), warnings


def _servers_from(path: str, config: object) -> tuple[list[dict], list[str]]:
    servers, warnings = _discovered(path, config)
    return [s.entry() for s in servers], warnings


def desired_servers(discovery_config: str) -> tuple[list[dict], list[str]]:
    """Discover with the inventory plugin's configuration file; returns servers and warnings."""
    return _servers_from(discovery_config, read_discovery_config(discovery_config))


def log_line(result: dict, seconds: float) -> str:
    """The one line a run leaves in the journal."""
    changes = result["changes"]
    parts = [f"{kind}={','.join(changes[kind])}" for kind in sorted(changes)]
    if result["lingering"]:
        parts.append("draining=" + ",".join(f"{n}({s} sessions)" for n, s in sorted(result["lingering"].items())))
    parts.append(f"reload={'yes (' + result['reason'] + ')' if result['reloaded'] else 'no'}")
    if result.get("worker_pid"):
        parts.append(f"worker={result['worker_pid']}")
    guard = result.get("guard")
    if guard and "error" not in guard:
        held = f",releases held ({','.join(sorted(guard['unreadable']))} unreadable)" if guard["unreadable"] else ""
        parts.append(f"guard=protected:{len(guard['protected'])},released:{len(guard['released'])}{held}")
    parts.append(f"duration={seconds:.2f}s")
    return ("changed " if result["changed"] else "no change ") + " ".join(parts)


NO_CHANGE = {"changed": False, "reloaded": False, "changes": {}, "lingering": {}, "warnings": [], "reason": ""}


def _unchanged_since_memo(memo: Memo, key: str | None, settings: Settings) -> dict | None:
    """The memo of the last confirmed run when its inputs, both files and HAProxy's running servers
    are all as it recorded them; None sends the run down the full path."""
    if key is None:
        return None
    confirmed = memo.still_applies(key, settings.config_path, settings.last_good_path)
    if confirmed is None:
        return None
    try:
        answer = send_command(settings.admin_socket, cmd_show_servers_state(settings.backend))
    except RuntimeAPIError:
        return None
    return confirmed if memo.running_as_confirmed(confirmed, answer, settings.backend) else None


def run(
    settings: Settings, discovery_config: str, allow_shrink: bool, dry_run: bool, guard: dict | None = None
) -> tuple[dict, list[str]]:
    memo = Memo(memo_path(settings.lock_path))
    with locked(settings.lock_path, settings.lock_wait):
        raw = _discovery_bytes(discovery_config)
        config = _parse_discovery_config(discovery_config, raw)
        key = inputs_digest(repr(settings), raw, config)
        confirmed = _unchanged_since_memo(memo, key, settings)
        if confirmed is not None:  # the usual run of a fleet listed in local files
            return dict(NO_CHANGE), list(confirmed.get("warnings", []))
        remember = None if key is None or dry_run else lambda *confirmed: memo.write(key, *confirmed)
        return _full_run(
            settings, discovery_config, config, remember, allow_shrink=allow_shrink, dry_run=dry_run, guard=guard
        )


def _full_run(settings, discovery_config, config, remember, *, allow_shrink, dry_run, guard) -> tuple[dict, list[str]]:
    """Discover, guard the cloud's busy servers, render the candidate, and apply it, or confirm that it
    already runs (and `remember` that)."""
    from ansible_collections.rtmpedge.balancer.plugins.module_utils.backend_sync import (  # noqa: PLC0415
        already_running,
        apply_config,
    )
    from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_config import (  # noqa: PLC0415
        ConfigError,
        file_view,
        replace_servers,
        spoofs_client_ip,
    )
    from ansible_collections.rtmpedge.balancer.plugins.module_utils.media_server import (  # noqa: PLC0415
        transparent_problems,
    )

    found, warnings = _discovered(discovery_config, config)
    # Before the apply, which may fail: protection must go on being renewed whatever happens here.
    guarded = _scale_guard(guard, config, found) if guard and not dry_run else None
    servers = [s.entry() for s in found]
    try:
        with open(settings.config_path) as handle:
            current = handle.read()
        candidate = replace_servers(current, settings.backend, servers)
        unreachable = transparent_problems(servers) if spoofs_client_ip(current, settings.backend) else []
    except (OSError, ConfigError) as e:
        raise JobError(f"cannot read {settings.config_path}: {e}") from e
    if unreachable:
        raise JobError(unreachable[0])
    if already_running(settings, candidate, servers):  # nothing to do (the memo said nothing yet)
        if remember is not None:
            remember(candidate, [file_view(s) for s in servers], warnings)
        return {**NO_CHANGE, "guard": guarded}, warnings
    result = apply_config(candidate, settings, allow_shrink=allow_shrink, check_mode=dry_run, trust_current=True)
    return {**result, "guard": guarded}, warnings


def _scale_guard(guard: dict, config: dict, found: list) -> dict:
    """The scale-in guard's summary; a failure is in it too (the apply still runs, the job fails)."""
    from ansible_collections.rtmpedge.balancer.plugins.module_utils.scale_guard import (  # noqa: PLC0415
        GuardError,
        guard_from_job,
    )

    try:
        return guard_from_job(guard, config, found)
    except GuardError as e:
        return {"error": str(e)}


def _one_line(error: Exception) -> str:
    """A failure as the one journal line a run leaves, whatever text it quotes."""
    return " ".join(str(error).split())


def _failure_line(error: Exception, seconds: float) -> str | None:
    """The journal line for a failure the job expects, None for a bug (its traceback is kept)."""
    from ansible_collections.rtmpedge.balancer.plugins.module_utils.backend_sync import SyncError  # noqa: PLC0415
    from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import (  # noqa: PLC0415
        DiscoveryError,
    )
    from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_service import (  # noqa: PLC0415
        ReloadError,
    )

    if isinstance(error, JobError | LockBusy | DiscoveryError | SyncError):
        return f"failed, nothing changed: {_one_line(error)} (after {seconds:.2f}s)"
    if isinstance(error, ReloadError):
        return f"failed, HAProxy keeps its previous configuration: {_one_line(error)}"
    return None


_FLAGS = {"--allow-shrink": "allow_shrink", "--dry-run": "dry_run"}


def _arguments(argv: list[str]) -> SimpleNamespace:
    """The command line. argparse, which alone costs a run with nothing to do a fifth of its
    time, is built only for what the plain forms below do not cover: --help, a mistake."""
    found = {"config": os.environ.get("RTMPEDGE_RECONCILE_CONFIG", DEFAULT_CONFIG), "allow_shrink": False}
    found["dry_run"] = False
    words = list(argv)
    while words:
        word = words.pop(0)
        if word in _FLAGS:
            found[_FLAGS[word]] = True
        elif word == "--config" and words:
            found["config"] = words.pop(0)
        elif word.startswith("--config="):
            found["config"] = word.removeprefix("--config=")
        else:
            return _parser(found["config"]).parse_args(argv)
    return SimpleNamespace(**found)


def _parser(default_config: str):
    import argparse  # noqa: PLC0415 - see _arguments

    parser = argparse.ArgumentParser(
        prog="rtmpedge-reconcile",
        description="Make HAProxy's media servers match discovery, at runtime where possible.",
    )
    parser.add_argument("--config", default=default_config)
    parser.add_argument("--allow-shrink", action="store_true", help="accept removing more servers than max_shrink")
    parser.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    try:
        settings, discovery_config, guard = load_job(args.config)
        result, warnings = run(settings, discovery_config, args.allow_shrink, args.dry_run, guard)
    except Exception as e:  # the classes below live in modules a run with nothing to do never imports
        message = _failure_line(e, time.monotonic() - started)
        if message is None:
            raise
        sys.stderr.write(message + "\n")
        return 1
    for warning in warnings + result["warnings"]:
        sys.stderr.write(f"warning: {warning}\n")
    sys.stdout.write(("dry run: " if args.dry_run else "") + log_line(result, time.monotonic() - started) + "\n")
    guard = result.get("guard") or {}
    if "error" in guard:
        sys.stderr.write(f"scale guard failed: {_one_line(guard['error'])}\n")
        return 1
    for line in [*guard.get("failures", []), *guard.get("unreadable", {}).values()]:
        sys.stderr.write(f"scale guard: {_one_line(line)}\n")
    return 0

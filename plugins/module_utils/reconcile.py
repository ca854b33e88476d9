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

import argparse
import json
import os
import sys
import time

from ansible_collections.rtmpedge.balancer.plugins.module_utils.backend_sync import (
    SyncError,
    already_running,
    apply_config,
    locked,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import DiscoveryError
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.sources import discover_all
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_config import ConfigError, replace_servers
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_service import ReloadError
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_settings import FACT_PATH, Settings, read_fact

DEFAULT_CONFIG = "/etc/rtmpedge/reconcile/job.json"


class JobError(Exception):
    """The job's own configuration is unusable."""


def load_job(path: str) -> tuple[Settings, str]:
    """The settings and the discovery file: HAProxy's locations from the haproxy role's local fact,
    the job's own choices (lock wait, shrink limit, empty backend) from its JSON configuration."""
    try:
        with open(path) as handle:
            data = json.load(handle)
        fact = data.get("haproxy_fact", FACT_PATH)
        discovery_config = data["discovery_config"]
        job_settings = data.get("settings", {})
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
    return settings, discovery_config


def read_discovery_config(path: str) -> object:
    """The plugin configuration file: JSON when the role wrote it (fast), else YAML (a hand-written one)."""
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError as e:
        raise JobError(f"cannot read the discovery configuration {path}: {e}") from e
    try:
        return json.loads(text)
    except ValueError:
        pass
    import yaml  # noqa: PLC0415 - only a hand-written YAML file needs PyYAML

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise JobError(f"cannot read the discovery configuration {path}: {e}") from e


def desired_servers(discovery_config: str) -> tuple[list[dict], list[str]]:
    """Discover with the inventory plugin's configuration file; returns servers and warnings."""
    config = read_discovery_config(discovery_config)
    if not isinstance(config, dict):
        raise JobError(f"{discovery_config} must be a mapping like an inventory plugin configuration")
    servers, warnings = discover_all(
        config.get("sources"), bool(config.get("allow_empty", False)), config.get("on_source_error", "fail")
    )
    # merge() already gave every server its own address:port and name.
    # Sorted by name, as the role's template writes them: the same fleet gives the same file.
    return [s.entry() for s in sorted(servers, key=lambda s: s.name)], warnings


def log_line(result: dict, seconds: float) -> str:
    """The one line a run leaves in the journal."""
    changes = result["changes"]
    parts = [f"{kind}={','.join(changes[kind])}" for kind in sorted(changes)]
    if result["lingering"]:
        parts.append("draining=" + ",".join(f"{n}({s} sessions)" for n, s in sorted(result["lingering"].items())))
    parts.append(f"reload={'yes (' + result['reason'] + ')' if result['reloaded'] else 'no'}")
    if result.get("worker_pid"):
        parts.append(f"worker={result['worker_pid']}")
    parts.append(f"duration={seconds:.2f}s")
    return ("changed " if result["changed"] else "no change ") + " ".join(parts)


def run(settings: Settings, discovery_config: str, allow_shrink: bool, dry_run: bool) -> tuple[dict, list[str]]:
    with locked(settings.lock_path, settings.lock_wait):
        servers, warnings = desired_servers(discovery_config)
        try:
            with open(settings.config_path) as handle:
                current = handle.read()
            candidate = replace_servers(current, settings.backend, servers)
        except (OSError, ConfigError) as e:
            raise JobError(f"cannot read {settings.config_path}: {e}") from e
        if already_running(settings, candidate, servers):  # the usual run, kept cheap
            result = {"changed": False, "reloaded": False, "changes": {}, "lingering": {}, "warnings": [], "reason": ""}
        else:
            result = apply_config(
                candidate, settings, allow_shrink=allow_shrink, check_mode=dry_run, trust_current=True
            )
    return result, warnings


def _one_line(error: Exception) -> str:
    """A failure as the one journal line a run leaves, whatever text it quotes."""
    return " ".join(str(error).split())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rtmpedge-reconcile",
        description="Make HAProxy's media servers match discovery, at runtime where possible.",
    )
    parser.add_argument("--config", default=os.environ.get("RTMPEDGE_RECONCILE_CONFIG", DEFAULT_CONFIG))
    parser.add_argument("--allow-shrink", action="store_true", help="accept removing more servers than max_shrink")
    parser.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        settings, discovery_config = load_job(args.config)
        result, warnings = run(settings, discovery_config, args.allow_shrink, args.dry_run)
    except (JobError, DiscoveryError, SyncError) as e:
        sys.stderr.write(f"failed, nothing changed: {_one_line(e)} (after {time.monotonic() - started:.2f}s)\n")
        return 1
    except ReloadError as e:
        sys.stderr.write(f"failed, HAProxy keeps its previous configuration: {_one_line(e)}\n")
        return 1
    for warning in warnings + result["warnings"]:
        sys.stderr.write(f"warning: {warning}\n")
    sys.stdout.write(("dry run: " if args.dry_run else "") + log_line(result, time.monotonic() - started) + "\n")
    return 0

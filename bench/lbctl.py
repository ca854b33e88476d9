"""Runs inside a lab balancer for `make bench`: one fleet change applied in one of three ways.

  lbctl.py fleet '<json list of servers>'   the bench's discovery (a static source) for the job
  lbctl.py apply reconcile|reload|restart|seed     make HAProxy serve that fleet:
      reconcile  the collection's job (runtime API, a verified reload only when needed)
      reload     render, then the role's verified reload (the path of structural changes)
      restart    render, then `systemctl restart haproxy` (what most Galaxy roles do)
      seed       render, then `haproxy -D -sf <old pid>`: a reload without socket transfer
  lbctl.py reload reconcile|restart|seed    a full reload/restart without a fleet change
  lbctl.py seed-start | seed-stop           hand the ports from systemd's HAProxy to a daemon and back
  lbctl.py variant protocol-check-off|max-reloads-off|restore
                                            the rendered file without some lines, and back

The collection's module_utils are where the reconcile role installed them; rendering the
server lines uses them too, so all three ways write the same haproxy.cfg.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, "/usr/local/lib/rtmpedge")

from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_config import replace_servers
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_service import reload
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_settings import Settings
from ansible_collections.rtmpedge.balancer.plugins.module_utils.reconcile import desired_servers

HERE = "/etc/rtmpedge/bench"
DISCOVERY = f"{HERE}/discovery.yml"
JOB = f"{HERE}/job.json"
CONFIG = "/etc/haproxy/haproxy.cfg"
SEED_PID = "/run/haproxy-seed.pid"
SETTINGS = Settings()


def set_fleet(servers: list[dict]) -> None:
    os.makedirs(HERE, exist_ok=True)
    with open(DISCOVERY, "w") as handle:  # JSON is YAML
        json.dump(
            {"plugin": "rtmpedge.balancer.media_servers", "sources": [{"type": "static", "servers": servers}]}, handle
        )
    with open(JOB, "w") as handle:
        json.dump({"discovery_config": DISCOVERY, "settings": {"max_shrink": 1.0, "lock_wait": 60}}, handle)


def render() -> None:
    servers, _warnings = desired_servers(DISCOVERY)
    with open(CONFIG) as handle:
        candidate = replace_servers(handle.read(), SETTINGS.backend, servers)
    with open(CONFIG + ".bench", "w") as handle:
        handle.write(candidate)
    os.replace(CONFIG + ".bench", CONFIG)


def run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout.strip()


def seed_reload() -> None:
    with open(SEED_PID) as handle:
        old = handle.read().split()
    run("/usr/sbin/haproxy", "-D", "-f", CONFIG, "-p", SEED_PID, "-sf", *old)


def verified_reload() -> None:
    reload(
        SETTINGS.service,
        master_socket=SETTINGS.master_socket,
        admin_socket=SETTINGS.admin_socket,
        state_file=SETTINGS.server_state_file,
        timeout=SETTINGS.reload_timeout,
    )


def apply(way: str, reload_only: bool) -> str:
    if way == "reconcile":
        if reload_only:
            verified_reload()
            return "verified reload"
        return run("/usr/local/sbin/rtmpedge-reconcile", "--config", JOB)
    if not reload_only:
        render()
    if way == "reload":  # the reload path: the role's verified reload of the rendered file
        verified_reload()
    elif way == "restart":
        # Changes come faster than systemd's start limit (5 in 10 s) allows restarts.
        run("systemctl", "reset-failed", "haproxy")
        run("systemctl", "restart", "haproxy")
    else:
        seed_reload()
    return way


def seed_start() -> None:
    run("systemctl", "stop", "haproxy")
    os.makedirs("/run/haproxy", exist_ok=True)  # systemd removed its RuntimeDirectory (admin socket)
    run("/usr/sbin/haproxy", "-D", "-f", CONFIG, "-p", SEED_PID)


def seed_stop() -> None:
    for pid in run("pgrep", "-x", "haproxy").split():
        os.kill(int(pid), signal.SIGTERM)
    deadline = time.monotonic() + 10
    while subprocess.run(["pgrep", "-x", "haproxy"], capture_output=True, check=False).returncode == 0:
        if time.monotonic() > deadline:
            sys.exit("seed HAProxy processes do not stop")
        time.sleep(0.1)
    os.unlink(SEED_PID)
    run("systemctl", "reset-failed", "haproxy")
    run("systemctl", "start", "haproxy")


# Bench-only variants of the rendered file: the lines each one leaves out.
VARIANTS = {
    "protocol-check-off": ("tcp-request inspect-delay", "tcp-request content"),  # the RTMP protocol check
    "max-reloads-off": ("mworker-max-reloads",),  # the bound on how many reloads a worker survives
}


def variant(name: str) -> None:
    """The rendered file without some of its lines (or, for `restore`, back as rendered); a verified
    reload either way. The file as rendered is kept aside until the restore."""
    saved = CONFIG + ".as-rendered"
    if name == "restore":
        if os.path.exists(saved):
            os.replace(saved, CONFIG)
    elif name in VARIANTS:
        with open(CONFIG) as handle:
            text = handle.read()
        if not os.path.exists(saved):
            with open(saved, "w") as handle:
                handle.write(text)
        kept = [line for line in text.splitlines(keepends=True) if not line.strip().startswith(VARIANTS[name])]
        with open(CONFIG + ".bench", "w") as handle:
            handle.writelines(kept)
        os.replace(CONFIG + ".bench", CONFIG)
    else:
        sys.exit(f"variant takes restore or one of {', '.join(VARIANTS)}, not {name}")
    verified_reload()


def main() -> int:
    command, rest = sys.argv[1], sys.argv[2:]
    started = time.time()
    if command == "fleet":
        set_fleet(json.loads(rest[0]))
        out = "ok"
    elif command in {"apply", "reload"}:
        out = apply(rest[0], reload_only=command == "reload")
    elif command == "seed-start":
        seed_start()
        out = "ok"
    elif command == "seed-stop":
        seed_stop()
        out = "ok"
    elif command == "variant":
        variant(rest[0])
        out = rest[0]
    else:
        sys.exit(f"unknown command {command}")
    sys.stdout.write(json.dumps({"started": started, "seconds": time.time() - started, "output": out}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

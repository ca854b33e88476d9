"""make bench: every figure of docs/benchmarks.md, measured on the lab in one run.

  BENCH_QUICK=1        fewer and shorter runs (about 5 min with the lab up; writes build/bench/)
  BENCH_PARTS=P,...    lab (parts 1-5, 7, 8, on the lab), growth (part 6, on this host, no lab) and/or
                       cloud (part 9, on the cloud lab: make lab CLOUD=aws); default all three. One lab
                       part alone: continuity, churn, convergence, forwarding, capacity, storm, site.
                       A run of some parts keeps the others' last figures.
  BENCH_SCALE_SIZES=N,...  fleet sizes of part 6 (default 100,1000,10000,50000; quick 100,1000)
  BENCH_PUBLISHERS=N   live ffmpeg publishers in part 1 (default 20; quick 5)
  BENCH_CHANGES=M      fleet changes per way in part 1 (default 50; quick 10)
  BENCH_BITRATE=BPS    per-stream bitrate of part 4 (default 6000000, a 1080p60 encoder)
  BENCH_CHURN_RUNS=K   reconcile runs (ten runtime operations and a reload each) of part 8
                       (default 100; quick 10)

A full run writes bench/results.json and docs/benchmarks.md with its plots in docs/img/
(committed); a quick run writes the same under build/bench/ and never touches those.
Every step is announced when it starts, and a step still running says so every 15 s.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the harness package

import cloud_scale
import report
from continuity import churn, continuity, convergence
from control_plane import ANSIBLE, site_yml
from forwarding import capacity, forwarding, rtmp_publish_proxy_protocol
from labctl import LB1, LB2, LBCTL, ROOT, dexec, haproxy_version, install_lbctl, lab, media_ip, sh
from scale import growth, sizes_from_env
from storm import storm

MEDIA = [lab.media_name(i) for i in range(1, 5)]


HEARTBEAT_EVERY = 15.0
_step = {"what": "starting", "since": time.monotonic()}


def say(message: str) -> None:
    """Announce a step; the heartbeat repeats it while it runs."""
    _step.update(what=message, since=time.monotonic())
    print(f"bench: {message}", flush=True)


def heartbeat() -> None:
    """A line every 15 s while a step runs, so a long step is never silent."""
    while True:
        time.sleep(HEARTBEAT_EVERY)
        took = time.monotonic() - _step["since"]
        if took >= HEARTBEAT_EVERY:
            print(f"bench:   ... {took:.0f} s into: {_step['what']}", flush=True)


def outputs(quick: bool) -> tuple[Path, Path, str]:
    """(results.json, the report's directory, the report's link to results.json)."""
    if quick:
        out = ROOT / "build" / "bench"
        return out / "results.json", out, "results.json"
    return ROOT / "bench" / "results.json", ROOT / "docs", "../bench/results.json"


def lab_cli(*args: str) -> float:
    started = time.monotonic()
    sh(str(ROOT / ".venv/bin/python"), "scripts/lab.py", *args)
    return time.monotonic() - started


def lab_running() -> bool:
    names = {c.name for c in lab.docker.from_env().containers.list(filters={"label": f"{lab.LAB_LABEL}=1"})}
    return {LB1, LB2, lab.CLIENT, *MEDIA[:3]} <= names


def converge(quick: bool, env: dict) -> dict:
    """Part 5b: site.yml on the lab (with the bench's limits); a fresh lab first in a full run."""
    out: dict = {}
    if not quick:
        say("fresh lab: make lab-down, then make lab (containers, site.yml, test streams)")
        lab_cli("down")
        out["fresh_lab_up_s"] = lab_cli("up")
    elif not lab_running():
        say("make lab (the lab is not up)")
        out["fresh_lab_up_s"] = lab_cli("up")
    runs = []
    for n in range(1 if quick else 2):
        say(f"site.yml on the lab, run {n + 1} (about 1-2 min)")
        runs.append(site_yml([], env))
    if runs[0]["changed"]:
        out["converge"] = runs.pop(0)  # a quick run on a lab without the bench's limits yet
    out["rerun"] = runs
    say(f"site.yml: {[round(r['seconds']) for r in runs]} s, changed {[r['changed'] for r in runs]}")
    return out


def measure(quick: bool, env: dict, results: dict, parts: list[str]) -> None:
    publishers = int(os.environ.get("BENCH_PUBLISHERS", "5" if quick else "20"))
    changes = int(os.environ.get("BENCH_CHANGES", "10" if quick else "50"))
    bitrate = int(os.environ.get("BENCH_BITRATE", "6000000"))
    churn_runs = int(os.environ.get("BENCH_CHURN_RUNS", "10" if quick else "100"))
    addresses = {name: media_ip(name) for name in MEDIA}

    if "continuity" in parts:
        say(f"part 1: {publishers} live publishers, {changes} fleet changes for each way")
        results["continuity"] = continuity(addresses, publishers, changes, pause=0.3 if quick else 0.5)
        checkpoint(results)
    if "churn" in parts:
        say(f"part 8: churn, {churn_runs} reconcile runs of ten runtime operations and a reload each")
        results["churn"] = churn(addresses, publishers, churn_runs, pause=0.1)
        checkpoint(results)
    if "convergence" in parts:
        say("part 2: convergence")
        results["convergence"] = convergence(addresses, runs=2 if quick else 5)
        checkpoint(results)
    if "forwarding" in parts:
        say("part 3: forwarding cost")
        paths = {"direct": None, "transparent": LB1}
        if not quick:
            say("lb2 to proxy_protocol mode for part 3 (site.yml --limit rtmpedge-lb2)")
            site_yml(["--limit", LB2, "-e", "haproxy_client_ip_mode=proxy_protocol"], env)
            dexec(LB2, "systemctl stop cron")
            paths["proxy_protocol"] = LB2
        results["forwarding"] = forwarding(paths, MEDIA[2], quick)
        if not quick:
            results["forwarding"]["rtmp_publish"]["proxy_protocol"] = rtmp_publish_proxy_protocol(LB2, MEDIA[2], quick)
        checkpoint(results)
    if "capacity" in parts:
        say("part 4: capacity")
        steps = [20, 40] if quick else [50, 100, 200, 300, 400, 600, 800, 1000]
        results["capacity"] = capacity(LB1, MEDIA[2], steps, bitrate, quick)
        checkpoint(results)
    if "storm" in parts:
        say("part 7: reconnect storm")
        results["storm"] = storm(LB1, MEDIA[2], quick)


def checkpoint(results: dict) -> None:
    """The parts measured so far, in case a later one fails (not used by the report)."""
    partial = ROOT / "build" / "bench" / "results.partial.json"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_text(json.dumps(results, indent=2) + "\n")


def restore(env: dict, lb2_flipped: bool) -> None:
    say("restoring the lab: cron back on, media4 drained and removed, balancers follow discovery again")
    for lb in lab.BALANCERS:
        # After a failure: seed daemons handed back to systemd, a failed unit started again.
        dexec(lb, f"test ! -e /run/haproxy-seed.pid || python3 {LBCTL} seed-stop", check=False)
        dexec(lb, "systemctl reset-failed haproxy; systemctl is-active --quiet haproxy || systemctl start haproxy")
        dexec(lb, "systemctl start cron", check=False)
    lab_cli("scale", "3")
    if lb2_flipped:
        site_yml(["--limit", LB2], env)


LAB_PARTS = ("site", "continuity", "churn", "convergence", "forwarding", "capacity", "storm")
PARTS = (*LAB_PARTS, "growth", "cloud")


def parts_from_env() -> list[str]:
    """The parts to run, in PARTS order; `lab` stands for every lab part."""
    asked = {p.strip() for p in os.environ.get("BENCH_PARTS", "lab,growth,cloud").split(",") if p.strip()}
    if "lab" in asked:
        asked = (asked - {"lab"}) | set(LAB_PARTS)
    unknown = sorted(asked - set(PARTS))
    if unknown or not asked:
        raise SystemExit(f"bench: BENCH_PARTS takes lab, {', '.join(PARTS)}; got {', '.join(unknown) or 'nothing'}")
    return [p for p in PARTS if p in asked]


def lab_parts(quick: bool, env: dict, results: dict, parts: list[str]) -> None:
    """The lab's parts (the lab is brought up when it is not)."""
    started = time.monotonic()
    sh("scripts/ensure-docker.sh")
    if "site" in parts:
        results["control_plane"] = {"site": converge(quick, env)}
    else:
        converge(True, env)  # the bench's limits on the lab, figures not kept
    results["haproxy_versions"] = {lb: haproxy_version(lb) for lb in lab.BALANCERS}
    say("media4 for the changes (make lab-scale N=4), cron paused on the balancers")
    lab_cli("scale", "4")
    for lb in lab.BALANCERS:
        dexec(lb, "systemctl stop cron")
    install_lbctl()
    try:
        measure(quick, env, results, parts)
    finally:
        restore(env, lb2_flipped="forwarding" in parts and not quick)
    results["lab_seconds"] = time.monotonic() - started


def cloud_part(quick: bool, env: dict) -> dict:
    """Part 9 on the cloud lab (make lab CLOUD=aws), which replaces the docker lab for it."""
    client = lab.docker.from_env()
    if not lab.cloud_lab(client):
        say("part 9: the cloud lab (make lab-down, then make lab CLOUD=aws)")
        lab_cli("down")
        sh("env", "CLOUD=aws", str(ROOT / ".venv/bin/python"), "scripts/lab.py", "up")
    started = time.monotonic()
    figures = cloud_scale.measure(
        2 if quick else 5, say, lambda extra: site_yml(extra, env, inventory="inventories/lab-aws")
    )
    figures["seconds"] = time.monotonic() - started
    return figures


def main() -> int:
    quick = os.environ.get("BENCH_QUICK") == "1"
    parts = parts_from_env()
    threading.Thread(target=heartbeat, daemon=True).start()
    results_path, report_dir, results_link = outputs(quick)
    # Every playbook run of the lab, scripts/lab.py's included, gets the bench's limits.
    os.environ["RTMPEDGE_LAB_VARS"] = str(ROOT / "bench" / "lab-vars.yml")
    env = {**os.environ, **ANSIBLE}
    started = time.monotonic()
    # The parts not run this time keep their last figures.
    results: dict = json.loads(results_path.read_text()) if results_path.exists() and parts != list(PARTS) else {}
    results.get("control_plane", {}).pop("scale", None)  # part 5's old 10k figures, now part 6
    results.update(
        quick=quick,
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        machine={"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()},
    )
    if set(parts) & set(LAB_PARTS):
        lab_parts(quick, env, results, parts)
    if "growth" in parts:
        sizes, runs = sizes_from_env(quick), 2 if quick else 3
        say(f"part 6: control plane growth at {', '.join(map(str, sizes))} servers, on this host")
        growth_started, date = time.monotonic(), datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        results["growth"] = growth(sizes, runs, env, say)
        results["growth"].update(seconds=time.monotonic() - growth_started, date=date)
    if "cloud" in parts:
        results["cloud"] = cloud_part(quick, env)
    results["seconds"] = time.monotonic() - started
    results["parts_run"] = parts
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    report.write(results, report_dir, results_link)
    shown = [p.relative_to(ROOT) for p in (results_path, report_dir / "benchmarks.md")]
    say(f"done in {results['seconds']:.0f}s: {shown[0]}, {shown[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Bench part 6: the control plane from 100 to 50,000 media servers, on this host (no lab needed).

Each figure is the CPU seconds (user + system) of a whole process tree: the command and
every process it waited for (Ansible's workers, `haproxy -c`). Each comparison is a paired
run: the variants run in turn, the order flipped every round, and a ratio is the median
of the per-round ratios, so a drift in the machine's speed moves both sides of a pair.

  inventory   ansible-inventory --list: the plugin (static source, servers_file) vs the
              builtin yaml inventory with the two contract variables per host
  render      the haproxy role's preflight + template + validate vs the floor: the same
              play templating a static file of the same size with the same validation
  job         the reconcile job against a real HAProxy with N servers: no change (settled by
              its memo) vs the minimal check (bench/minimal_check.py), no change on the full path
              (no memo, as for sources that ask the network), one server added / removed
  runtime     `add server` latency on the admin socket, one command per connection vs
              a batch of commands on one connection
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from continuity import summary
from harness.loopback import JobBalancer
from labctl import ROOT

ANSIBLE_INVENTORY = str(ROOT / ".venv/bin/ansible-inventory")
ANSIBLE_PLAYBOOK = str(ROOT / ".venv/bin/ansible-playbook")
COLLECTIONS = ROOT / ".collections"
sys.path.insert(0, str(COLLECTIONS))  # the collection's module_utils, as the job imports them
HAPROXY = "/usr/sbin/haproxy"
SYSTEM_PYTHON = "/usr/bin/python3"  # what the reconcile role's wrapper runs
PLUGIN = "rtmpedge.balancer.media_servers"


def cpu_run(argv: list[str], env: dict | None = None, expect: Callable[[str], bool] | None = None) -> float:
    """CPU seconds of argv's process tree; raises when it fails or its output is not what `expect` wants."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = result.stdout + result.stderr
    if result.returncode != 0 or (expect and not expect(output)):
        raise RuntimeError(f"{' '.join(argv[:4])}... exit {result.returncode}: {output[-3000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def paired(variants: dict[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    """Each variant `runs` times, in turn, the order flipped every round."""
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for n in range(runs):
        for name in names if n % 2 == 0 else names[::-1]:
            times[name].append(variants[name]())
    return times


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """The median of the per-round ratios a/b."""
    return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))


def fleet(count: int, extra: int = 0) -> list[dict]:
    """`count` servers (+ `extra` more), addresses on loopback (nothing is ever sent to them)."""
    return [
        {"name": f"media{i:05d}", "address": f"127.{1 + i // 65536}.{i // 256 % 256}.{i % 256}", "port": 1935}
        for i in range(count + extra)
    ]


class Fleet:
    """One fleet size's files: the plugin's configuration with a servers_file, a plain YAML inventory."""

    def __init__(self, count: int, where: Path):
        self.count = count
        self.where = where
        self.servers_file = where / "fleet.json"
        self.servers_file.write_text(json.dumps(fleet(count)))
        self.plugin = where / "bench.media_servers.yml"
        source = {"type": "static", "servers_file": str(self.servers_file)}
        self.plugin.write_text(json.dumps({"plugin": PLUGIN, "sources": [source]}))
        self.yaml = where / "hosts.yml"
        hosts = {s["name"]: {"rtmp_address": s["address"], "rtmp_port": s["port"]} for s in fleet(count)}
        self.yaml.write_text(json.dumps({"all": {"children": {"media_servers": {"hosts": hosts}}}}))


def _listed(path: Path, count: int) -> Callable[[str], bool]:
    def check(_output: str) -> bool:
        found = len(json.loads(path.read_text())["media_servers"]["hosts"])
        if found != count:
            raise RuntimeError(f"{path.name} lists {found} media servers, not {count}")
        return True

    return check


def inventory(f: Fleet, runs: int, env: dict) -> dict:
    """ansible-inventory --list of the same fleet: the plugin vs the builtin yaml inventory."""

    def listing(source: Path) -> Callable[[], float]:
        out = f.where / f"{source.stem}.list.json"
        argv = [ANSIBLE_INVENTORY, "-i", str(source), "--list", "--output", str(out)]
        return lambda: cpu_run(argv, env, _listed(out, f.count))

    times = paired({"plugin": listing(f.plugin), "yaml": listing(f.yaml)}, runs)
    return {k: summary(v) for k, v in times.items()} | {"ratio": ratio(times, "plugin", "yaml")}


def render(f: Fleet, runs: int, env: dict) -> dict:
    """The role's preflight, template and validation vs the same play templating a static file."""
    output, floor_output = f.where / "haproxy.cfg", f.where / "floor.cfg"
    lists = []
    # The config reads the publisher lists and the drained flag where the role would write them.
    for var, name in (("publishers_allow", "allow"), ("publishers_deny", "deny"), ("drained", "drained")):
        path = f.where / f"{name}.acl"
        path.touch()
        lists += ["-e", f"_haproxy_{var}_file={path}"]

    def server_lines(path: Path) -> int:  # the fleet's (other backends have servers of their own)
        return sum(1 for line in path.read_text().splitlines() if line.strip().startswith("server media"))

    def role() -> float:
        argv = [ANSIBLE_PLAYBOOK, "-i", str(f.plugin), "bench/render.yml", "-e", f"bench_output={output}"]
        seconds = cpu_run([*argv, "-e", "haproxy_client_ip_mode=none", *lists], env)
        if server_lines(output) != f.count:
            raise RuntimeError(f"the rendered config has {server_lines(output)} server lines, not {f.count}")
        return seconds

    role()  # the floor's source: the role's own output
    source = f.where / "floor-source.cfg"
    shutil.copy(output, source)

    def floor() -> float:
        argv = [ANSIBLE_PLAYBOOK, "-i", str(f.plugin), "bench/render_floor.yml"]
        seconds = cpu_run([*argv, "-e", f"bench_source={source}", "-e", f"bench_output={floor_output}"], env)
        if floor_output.read_bytes() != source.read_bytes():
            raise RuntimeError("the floor playbook did not write its source unchanged")
        return seconds

    times = paired({"role": role, "floor": floor}, runs)
    check = [cpu_run([HAPROXY, "-c", "-q", "-f", str(output)]) for _n in range(runs)]
    return {k: summary(v) for k, v in times.items()} | {
        "ratio": ratio(times, "role", "floor"),
        "haproxy_check": summary(check),
        "config_bytes": output.stat().st_size,
    }


def job(f: Fleet, runs: int, latency_ops: int) -> dict:
    """The reconcile job against a real HAProxy running the fleet; then `add server` latency."""
    where = Path(tempfile.mkdtemp(prefix="job-", dir=f.where))
    servers = [{**s, "weight": 10, "maxconn": 0, "state": "ready"} for s in fleet(f.count)]
    # No health checks: the addresses are placeholders and nothing may be sent to them.
    lb = JobBalancer(where, HAPROXY, servers, default_server="")
    try:
        lb.discovery.write_text(f.plugin.read_text())
        plus_one = where / "fleet-plus-one.json"
        plus_one.write_text(json.dumps(fleet(f.count, extra=1)))
        argv = lb.job_argv(COLLECTIONS, SYSTEM_PYTHON)
        env = {"PATH": "/usr/bin:/bin"}
        cpu_run(argv, env, lambda out: out.startswith(("no change", "changed")))  # the first run keeps the last good

        def with_fleet(path: Path, says: str) -> Callable[[], float]:
            source = {"type": "static", "servers_file": str(path)}

            def run() -> float:
                lb.discovery.write_text(json.dumps({"plugin": PLUGIN, "sources": [source]}))
                return cpu_run(argv, env, lambda out: out.startswith(says) and "reload=no" in out)

            return run

        minimal = [SYSTEM_PYTHON, str(ROOT / "bench/minimal_check.py"), str(f.servers_file), lb.admin]
        nochange = with_fleet(f.servers_file, "no change")
        memo = where / "reconcile.memo.json"  # beside the job's lock (module_utils/reconcile_memo.py)

        def nochange_full() -> float:
            """No change on the full path: what every run pays whose source asks the network."""
            memo.unlink(missing_ok=True)
            return nochange()

        nochange()  # leaves the memo the timed no-change runs use
        times = paired({"no_change": nochange, "minimal": lambda: cpu_run(minimal, env)}, runs)
        times["no_change_full"] = [nochange_full() for _n in range(runs)]
        added, removed = [], []
        for _n in range(runs):
            added.append(with_fleet(plus_one, "changed add=")())
            removed.append(with_fleet(f.servers_file, "changed drain=")())
        times["one_added"], times["one_removed"] = added, removed
        result = {k: summary(v) for k, v in times.items()} | {
            "ratio_no_change_to_minimal": ratio(times, "no_change", "minimal"),
            "ratio_added_to_no_change": statistics.median(added) / statistics.median(times["no_change"]),
            "ratio_added_to_no_change_full": statistics.median(added) / statistics.median(times["no_change_full"]),
            "ratio_removed_to_no_change": statistics.median(removed) / statistics.median(times["no_change"]),
        }
        result["add_server"] = add_server_latency(lb.admin, latency_ops)
        return result
    finally:
        lb.close()


def add_server_latency(admin_socket: str, ops: int) -> dict:
    """`add server` one per connection (as the job sends them), then `ops` in one batch; each removed again."""
    from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import (  # noqa: PLC0415
        run,
        send_command,
    )

    names = [f"rtmpedge_bench_{i}" for i in range(ops)]
    single = []
    for i, name in enumerate(names):
        started = time.perf_counter()
        run(admin_socket, f"add server rtmp_media/{name} 127.0.0.2:{2000 + i} weight 10", "New server registered")
        single.append((time.perf_counter() - started) * 1000)
    for name in names:
        run(admin_socket, f"del server rtmp_media/{name}", "Server deleted")
    batch = "; ".join(f"add server rtmp_media/{n} 127.0.0.2:{2000 + i} weight 10" for i, n in enumerate(names))
    started = time.perf_counter()
    answer = send_command(admin_socket, batch, timeout=60)
    batch_ms = (time.perf_counter() - started) * 1000
    if answer.count("New server registered") != ops:
        raise RuntimeError(f"the batch of {ops} adds was answered: {answer[:300]}")
    send_command(admin_socket, "; ".join(f"del server rtmp_media/{n}" for n in names), timeout=60)
    ordered = sorted(single)
    return {
        "ops": ops,
        "single_p50_ms": statistics.median(single),
        "single_p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "batch_per_add_ms": batch_ms / ops,
    }


def growth(sizes: list[int], runs: int, env: dict, say: Callable[[str], None]) -> dict:
    """Every figure at every size; the fleet files are removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="rtmpedge-bench-scale-"))
    results: dict = {"sizes": sizes, "runs": runs, "by_size": {}}
    try:
        for count in sizes:
            where = base / str(count)
            where.mkdir()
            f = Fleet(count, where)
            row = results["by_size"][str(count)] = {}
            say(f"growth at {count} servers: ansible-inventory, plugin vs yaml ({runs} pairs)")
            row["inventory"] = inventory(f, runs, env)
            say(f"growth at {count} servers: role render + validate vs the floor ({runs} pairs)")
            row["render"] = render(f, runs, env)
            say(f"growth at {count} servers: the reconcile job vs the minimal check, one server added/removed")
            row["job"] = job(f, runs, latency_ops=200 if count <= 10000 else 100)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return results


def sizes_from_env(quick: bool) -> list[int]:
    default = "100,1000" if quick else "100,1000,10000,50000"
    return [int(n) for n in os.environ.get("BENCH_SCALE_SIZES", default).split(",") if n.strip()]

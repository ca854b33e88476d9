"""Bench parts 1 and 2: live streams under fleet changes, and how fast a new server gets streams."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import statistics
import threading
import time

from harness.wait import wait_until
from labctl import (
    CLIENT,
    LB1,
    apply_servers,
    backend_stats,
    dexec,
    haproxy_processes,
    haproxy_usage,
    lab,
    lbctl,
    public,
    set_fleet,
    sh,
)
from rtmp_load import handshake, probe_once

# reconcile: the collection's job (runtime API; a reload only for the full-reload changes);
# reload: the same file, but a verified reload for every change (roles that reload on change).
WAYS = ("reconcile", "reload", "restart", "seed")
# One cycle of fleet changes; the same sequence for every way.
CYCLE = ("weight", "add", "weight", "remove", "reload")
PROBERS = 4
PUBLISHER = """#!/bin/sh
# One bench publisher: keep a stream up, log each end of ffmpeg (a broken stream).
i=$1; url=$2
while [ ! -e /tmp/bench/stop ]; do
  ffmpeg -nostdin -loglevel error -re -stream_loop -1 -i /tmp/bench/clip.flv -c copy -f flv "$url/bench-$i" \\
    2>>/tmp/bench/ffmpeg-$i.err
  echo "$(date +%s.%N) $i $?" >> /tmp/bench/ends.log
  sleep 0.3
done
"""


def summary(values: list[float]) -> dict:
    if not values:
        return {"runs": 0, "median": None, "min": None, "max": None}
    return {"runs": len(values), "median": statistics.median(values), "min": min(values), "max": max(values)}


class Fleet:
    """The bench's view of discovery: media1..3 plus media4 coming and going, weights changing."""

    def __init__(self, addresses: dict[str, str]):
        self.addresses = addresses
        self.members = sorted(n for n in addresses if not n.endswith("media4"))
        self.weights = dict.fromkeys(addresses, 10)
        self.spare = next(n for n in addresses if n.endswith("media4"))

    def servers(self) -> list[dict]:
        return [
            {"name": n, "address": self.addresses[n], "port": 1935, "weight": self.weights[n]} for n in self.members
        ]

    def step(self, kind: str, index: int) -> None:
        if kind == "weight":
            name = self.members[index % 2]
            self.weights[name] = 20 if self.weights[name] == 10 else 10
        elif kind == "add" and self.spare not in self.members:
            self.members = sorted([*self.members, self.spare])
        elif kind == "remove" and self.spare in self.members:
            self.members.remove(self.spare)


class Prober(threading.Thread):
    """New RTMP sessions (handshakes) through the balancer every `every` seconds; counts failures."""

    def __init__(self, target: tuple[str, int], every: float = 0.05):
        super().__init__(daemon=True)
        self.target, self.every = target, every
        self.attempts, self.failures, self.errors = 0, 0, {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.attempts += 1
            try:
                probe_once(self.target, timeout=3)
            except OSError as e:  # ConnectionError included
                self.failures += 1
                key = type(e).__name__
                self.errors[key] = self.errors.get(key, 0) + 1
            time.sleep(self.every)

    def stop(self) -> dict:
        self.stopping.set()
        self.join()
        return {"attempts": self.attempts, "failures": self.failures, "errors": self.errors}


def merge_probes(counts: list[dict]) -> dict:
    errors: dict[str, int] = {}
    for count in counts:
        for key, n in count["errors"].items():
            errors[key] = errors.get(key, 0) + n
    return {
        "attempts": sum(c["attempts"] for c in counts),
        "failures": sum(c["failures"] for c in counts),
        "errors": errors,
    }


def prepare_publishers() -> None:
    dexec(CLIENT, "pkill -x ffmpeg; rm -rf /tmp/bench; mkdir -p /tmp/bench", check=False)
    dexec(CLIENT, "mkdir -p /tmp/bench && cat > /tmp/bench/pub.sh && chmod 755 /tmp/bench/pub.sh", input_text=PUBLISHER)
    dexec(
        CLIENT,
        "ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine "
        "-t 10 -c:v libx264 -preset ultrafast -g 50 -b:v 300k -c:a aac -b:a 64k -f flv /tmp/bench/clip.flv",
    )


def start_publishers(indexes: range, url: str) -> None:
    if indexes.start == 0:
        dexec(CLIENT, "rm -f /tmp/bench/stop /tmp/bench/ends.log /tmp/bench/ffmpeg-*.err")
    for i in indexes:
        sh("docker", "exec", "-d", CLIENT, "sh", "/tmp/bench/pub.sh", str(i), url)  # /tmp is noexec


def live_bench_streams() -> int:
    return sum(1 for name in lab.streams(lab.docker.from_env()) if name.startswith("bench-"))


def stop_publishers() -> list[str]:
    """Stops them; returns the ends logged before the stop (each one a broken stream)."""
    ends = dexec(CLIENT, "cat /tmp/bench/ends.log 2>/dev/null", check=False).splitlines()
    dexec(CLIENT, "touch /tmp/bench/stop; pkill -x ffmpeg; sleep 0.5; pkill -f /tmp/bench/pub.sh", check=False)
    return ends


class Load:
    """Live publishers through lb1, and probers opening new sessions all along: what changes break."""

    def __init__(self, publishers: int, first: int):
        self.publishers, self.started = publishers, first
        self.url = f"rtmp://{public(LB1)}:1935/live"
        start_publishers(range(first), self.url)
        wait_until(lambda: live_bench_streams() >= first, 60, f"{first} live bench streams")
        # Several probers without pauses: hundreds of new sessions a second, so a reload that
        # drops queued connections shows up.
        self.probers = [Prober((public(LB1), 1935), every=0.002) for _n in range(PROBERS)]
        for prober in self.probers:
            prober.start()

    def arrive(self) -> None:
        """One more publisher (staggered arrivals: each reload then leaves a worker holding someone)."""
        if self.started < self.publishers:
            start_publishers(range(self.started, self.started + 1), self.url)
            self.started += 1

    def end(self) -> dict:
        time.sleep(2)  # a publisher cut by the last change logs its end
        probes = merge_probes([prober.stop() for prober in self.probers])
        usage = haproxy_usage(LB1)
        processes = len(haproxy_processes(LB1))
        ends = stop_publishers()
        return {
            "publishers": self.publishers,
            "broken_streams": len(ends),
            "publishers_never_cut": self.publishers - len({line.split()[1] for line in ends}),
            "new_sessions": probes,
            "haproxy_processes_at_end": processes,
            "haproxy_rss_bytes_at_end": usage["rss_bytes"],
        }


def continuity(fleet_addresses: dict[str, str], publishers: int, changes: int, pause: float) -> dict:
    """Part 1: N live publishers through lb1 while M fleet changes are applied, for each way.
    A quarter of the publishers are live from the start, the others arrive one by one between
    the changes, as they do on a real platform."""
    prepare_publishers()
    results = {}
    first = max(1, publishers // 4)
    late = publishers - first
    arrivals = {int(n * changes / late) for n in range(late)} if late else set()
    for way in WAYS:
        fleet = Fleet(fleet_addresses)
        dexec(LB1, "systemctl is-active --quiet haproxy || systemctl start haproxy")  # after an aborted run
        apply_servers(LB1, fleet.servers())
        if way == "seed":
            lbctl(LB1, "seed-start")
        load = Load(publishers, first)
        durations, kinds = [], {}
        for index in range(changes):
            if index in arrivals:
                load.arrive()
            kind = CYCLE[index % len(CYCLE)]
            fleet.step(kind, index)
            set_fleet(LB1, fleet.servers())
            started = time.monotonic()
            lbctl(LB1, "reload" if kind == "reload" else "apply", way)
            durations.append(time.monotonic() - started)
            kinds[kind] = kinds.get(kind, 0) + 1
            time.sleep(pause)
        while load.started < publishers:
            load.arrive()
        results[way] = load.end()
        if way == "seed":
            lbctl(LB1, "seed-stop")
        results[way].update(
            changes=changes, change_kinds=kinds, apply_seconds=summary(durations), publishers_at_start=first
        )
        print(
            f"bench: continuity {way}: {results[way]['broken_streams']} broken streams, "
            f"{results[way]['new_sessions']['failures']} of {results[way]['new_sessions']['attempts']} "
            f"new sessions refused, {results[way]['haproxy_processes_at_end']} HAProxy processes",
            flush=True,
        )
    apply_servers(LB1, Fleet(fleet_addresses).servers())
    return results


# The runtime operations the job's log line lists (backend_sync's change kinds).
RUNTIME_OP = re.compile(r"\b(?:add|remove|drain|state|weight|maxconn|address)=(\S+)")


class ChurnFleet:
    """media1..3, plus ten more servers that each change at every run: added, reweighted,
    removed (drained when it carries a stream), in turn; ten runtime operations a run.
    Discovery keeps one server per address and port, so each extra server is a second address
    of a media server (the top of the lab's media subnet, which docker never hands out; the
    media servers' return path for transparent mode matches port 1935, so not another port)."""

    EXTRA = 10

    def __init__(self, fleet_addresses: dict[str, str]):
        self.base = Fleet(fleet_addresses).servers()
        network = lab.docker.from_env().networks.get(lab.MEDIA)
        subnet = ipaddress.ip_network(network.attrs["IPAM"]["Config"][0]["Subnet"])
        self.extra = [str(subnet.broadcast_address - 1 - k) for k in range(self.EXTRA)]

    def servers(self, run: int) -> list[dict]:
        servers = list(self.base)
        for k, address in enumerate(self.extra):
            phase = (run + k) % 3  # 0: absent, 1: weight 10, 2: weight 20
            if phase:
                servers.append({"name": f"churn-{k}", "address": address, "port": 1935, "weight": 10 * phase})
        return servers

    @contextlib.contextmanager
    def addresses(self):
        """The extra addresses on media1..3 for the time of the part."""
        owners = [(self.base[k % len(self.base)]["name"], address) for k, address in enumerate(self.extra)]
        for name, address in owners:
            dexec(name, f"ip addr replace {address}/32 dev eth0")
        self._forget_neighbours()  # an earlier run may have left these addresses on another container
        try:
            yield
        finally:
            for name, address in owners:
                dexec(name, f"ip addr del {address}/32 dev eth0", check=False)
            self._forget_neighbours()

    def _forget_neighbours(self) -> None:
        for lb in lab.BALANCERS:
            dexec(lb, "; ".join(f"ip neigh flush to {address}" for address in self.extra), check=False)


# The churn part runs with the role's defaults, then with the bound on how many reloads a worker
# survives lifted: 100 reloads in two minutes pass the default bound (50) on purpose.
CHURN_BOUNDS = {"default": None, "lifted": "max-reloads-off"}


def churn(fleet_addresses: dict[str, str], publishers: int, runs: int, pause: float) -> dict:
    """Part 8: `runs` reconcile runs of ten runtime operations, each followed by a verified
    reload, under live publishers and probers; once per entry of CHURN_BOUNDS."""
    prepare_publishers()
    results = {}
    for bound, variant in CHURN_BOUNDS.items():
        if variant:
            lbctl(LB1, "variant", variant)
        try:
            results[bound] = _churn_once(ChurnFleet(fleet_addresses), publishers, runs, pause)
        finally:
            if variant:
                lbctl(LB1, "variant", "restore")
            apply_servers(LB1, Fleet(fleet_addresses).servers())
        row = results[bound]
        print(
            f"bench: churn ({bound} reload bound) {row['runtime_operations']} runtime operations, {row['reloads']} "
            f"reloads: {row['broken_streams']} broken streams, {row['new_sessions']['failures']} of "
            f"{row['new_sessions']['attempts']} new sessions refused",
            flush=True,
        )
    return results


def _churn_once(fleet: ChurnFleet, publishers: int, runs: int, pause: float) -> dict:
    with fleet.addresses():
        apply_servers(LB1, fleet.servers(0))
        names = [server["name"] for server in fleet.servers(0)]
        wait_until(lambda: _all_up(names), 30, f"{', '.join(names)} UP on lb1")
        load = Load(publishers, publishers)
        operations, reloads, durations = 0, 0, []
        for run in range(1, runs + 1):
            set_fleet(LB1, fleet.servers(run))
            started = time.monotonic()
            line = lbctl(LB1, "apply", "reconcile")["output"]
            operations += sum(len(listed.split(",")) for listed in RUNTIME_OP.findall(line))
            lbctl(LB1, "reload", "reconcile")
            reloads += 1
            durations.append(time.monotonic() - started)
            time.sleep(pause)
        result = load.end()
        apply_servers(LB1, fleet.base)
        apply_servers(LB1, fleet.base)  # the extra servers that drained are deleted once idle
    result.update(runs=runs, runtime_operations=operations, reloads=reloads, run_seconds=summary(durations))
    return result


def _all_up(names: list[str]) -> bool:
    stats = backend_stats(LB1)
    return all(stats.get(name, {}).get("status") == "UP" for name in names)


def hold(target: tuple[str, int], count: int) -> list[socket.socket]:
    """Long-lived sessions, so leastconn sends the next one to the empty new server."""
    held = []
    for _n in range(count):
        sock = socket.create_connection(target, timeout=5)
        handshake(sock)
        held.append(sock)
    return held


def first_landing(target: tuple[str, int], server: str, seconds: float = 30) -> float:
    """Wall-clock time of the first new session that landed on `server`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        at = time.time()
        try:
            probe_once(target, timeout=2)
        except OSError:
            continue
        row = backend_stats(LB1).get(server)
        if row and int(row["stot"] or 0) > 0:
            return at
        time.sleep(0.005)
    raise RuntimeError(f"no session landed on {server} within {seconds:.0f}s")


def convergence(fleet_addresses: dict[str, str], runs: int, cron_interval: float = 60.0) -> dict:
    """Part 2: media4 appears in discovery -> the first new session lands on it."""
    target = (public(LB1), 1935)
    latencies = {"runtime": [], "reload": []}
    for _n in range(runs):
        for path, way in (("runtime", "reconcile"), ("reload", "reload")):
            fleet = Fleet(fleet_addresses)
            apply_servers(LB1, fleet.servers())
            apply_servers(LB1, fleet.servers())  # the drained spare is deleted once idle
            wait_until(lambda f=fleet: f.spare not in backend_stats(LB1), 30, "the spare server to leave")
            held = hold(target, 6)
            try:
                fleet.step("add", 0)
                set_fleet(LB1, fleet.servers())
                started = lbctl(LB1, "apply", way)["started"]
                latencies[path].append(first_landing(target, fleet.spare) - started)
            finally:
                for sock in held:
                    sock.close()
    apply_servers(LB1, Fleet(fleet_addresses).servers())
    reload_runs = latencies["reload"]
    # A one-minute cron job that renders and reloads: the wait for the next run is uniform
    # over the interval, then the reload path as measured.
    cron = {
        "runs": len(reload_runs),
        "median": cron_interval / 2 + statistics.median(reload_runs),
        "min": min(reload_runs),
        "max": cron_interval + max(reload_runs),
        "computed": True,
    }
    result = {"runtime": summary(latencies["runtime"]), "reload": summary(latencies["reload"]), "cron_reload": cron}
    result["samples"] = latencies
    print(
        f"bench: convergence median runtime {result['runtime']['median']:.3f}s, "
        f"reload {result['reload']['median']:.3f}s",
        flush=True,
    )
    return result

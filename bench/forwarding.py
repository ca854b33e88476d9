"""Bench parts 3 and 4: what a balancer costs per stream, and how many streams it carries.

A synthetic sink (rtmp_load.py) takes media3's place on port 1935: it answers the RTMP
handshake (so health checks pass), reads a PROXY header when one comes, and counts bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from continuity import summary
from harness.wait import wait_until
from labctl import (
    CLIENT,
    ROOT,
    apply_servers,
    backend_stats,
    dexec,
    haproxy_usage,
    in_mountns,
    in_netns,
    media_ip,
    public,
    sh,
)

LOAD = str(ROOT / "bench" / "rtmp_load.py")
PY = sys.executable
LOOPS = 10  # the 60 s clip sent 10 times in one publish: long enough that ffmpeg's start-up does not count


def load(*args: str, timeout: float = 300) -> dict:
    out = subprocess.run([PY, LOAD, *args], capture_output=True, text=True, check=True, timeout=timeout).stdout
    return json.loads(out.strip().splitlines()[-1])


class SinkOn:
    """The synthetic sink on a media server's port 1935 instead of its nginx: `workers` processes
    sharing the port (one Python process would be the limit before HAProxy)."""

    def __init__(self, media: str, workers: int = 2):
        self.media = media
        directory = Path(tempfile.mkdtemp(prefix="rtmpedge-bench-"))
        self.stats = [directory / f"sink-{n}.json" for n in range(workers)]
        self.processes: list[subprocess.Popen] = []

    def __enter__(self):
        dexec(self.media, "systemctl stop nginx")
        for stats in self.stats:
            command = in_netns(self.media, [PY, LOAD, "sink", "--port", "1935", "--stats", str(stats)])
            self.processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        wait_until(lambda: all(s.exists() for s in self.stats), 10, "the sink to start")
        return self

    def snapshot(self) -> dict:
        """Every worker's counts, connection ids made unique by the worker's number."""
        parts = [json.loads(stats.read_text()) for stats in self.stats]
        received = {f"{n}:{k}": v for n, part in enumerate(parts) for k, v in part["received"].items()}
        return {"time": max(p["time"] for p in parts), "received": received}

    def __exit__(self, *exc):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(10)
        dexec(self.media, "systemctl start nginx")


def only_server(lb: str, media: str) -> None:
    """The balancer's fleet is this one media server (the others drain and leave)."""
    apply_servers(lb, [{"name": media, "address": media_ip(media), "port": 1935, "weight": 10}])


def bulk_runs(target: str, seconds: float, runs: int, lb: str | None) -> dict:
    rates, cpu_per_gbit = [], []
    for _n in range(runs):
        before = haproxy_usage(lb) if lb else None
        result = load("bulk", "--target", target, "--seconds", str(seconds))
        rates.append(result["gbit_s"])
        if lb:
            cpu = haproxy_usage(lb)["cpu_s"] - before["cpu_s"]
            cpu_per_gbit.append(cpu / (result["bytes"] * 8 / 1e9))
    out = {"gbit_s": summary(rates)}
    if lb:
        out["haproxy_cpu_s_per_gbit"] = summary(cpu_per_gbit)
    return out


def rtmp_publish_seconds(url: str, runs: int) -> dict:
    """A real RTMP publish (the client's ffmpeg, no -re): seconds to push the whole clip."""
    times = []
    for _n in range(runs):
        started = time.monotonic()
        sh(
            *in_mountns(
                CLIENT,
                [
                    "ffmpeg",
                    "-nostdin",
                    "-loglevel",
                    "error",
                    "-stream_loop",
                    str(LOOPS - 1),
                    "-i",
                    "/tmp/bench/long.flv",
                    "-c",
                    "copy",
                    "-f",
                    "flv",
                    url,
                ],
            )
        )
        times.append(time.monotonic() - started)
    return summary(times)


def prepare_long_clip() -> int:
    dexec(
        CLIENT,
        "test -s /tmp/bench/long.flv || ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc=size=640x360:rate=25 "
        "-f lavfi -i sine -t 60 -c:v libx264 -preset ultrafast -b:v 2M -c:a aac -f flv /tmp/bench/long.flv",
    )
    return int(dexec(CLIENT, "stat -c %s /tmp/bench/long.flv").strip())


def forwarding(paths: dict[str, str | None], media: str, quick: bool) -> dict:
    """paths: {'direct': None, 'transparent': 'rtmpedge-lb1', ...}; the balancer of each path."""
    runs, seconds = (2, 2.0) if quick else (3, 5.0)
    for lb in filter(None, paths.values()):
        only_server(lb, media)
    targets = {name: f"{public(lb) if lb else media_ip(media)}:1935" for name, lb in paths.items()}
    results: dict = {"bulk": {}, "handshake_ms": {}, "rtmp_publish": {}}
    with SinkOn(media):
        for name, lb in paths.items():
            wait_until(lambda t=targets[name]: _answers(t), 30, f"{name} path to the sink")
            results["bulk"][name] = bulk_runs(targets[name], seconds, runs, lb)
            results["handshake_ms"][name] = load(
                "probe", "--target", targets[name], "--count", "100" if quick else "300"
            )
    size = prepare_long_clip()
    for name in paths:
        if name == "proxy_protocol":
            continue  # needs nginx with `listen 1935 proxy_protocol`: see media_proxy_protocol()
        url = f"rtmp://{targets[name]}/live/bench-publish"
        results["rtmp_publish"][name] = rtmp_publish_seconds(url, 1 if quick else 3)
    results["rtmp_publish_bytes"] = size * LOOPS
    return results


def rtmp_publish_proxy_protocol(lb: str, media: str, quick: bool) -> dict:
    """The real RTMP publish through a proxy_protocol balancer: nginx told to read the header."""
    conf = "/etc/nginx/nginx.conf"
    dexec(
        media,
        f"cp {conf} {conf}.bench && sed -i 's/listen 1935;/listen 1935 proxy_protocol;/' {conf} "
        "&& systemctl reload nginx",
    )
    try:
        # Its health checks carry the PROXY header too: the server is UP again after `rise` checks.
        wait_until(lambda: backend_stats(lb).get(media, {}).get("status") == "UP", 30, f"{media} UP on {lb}")
        return rtmp_publish_seconds(f"rtmp://{public(lb)}:1935/live/bench-publish", 1 if quick else 3)
    finally:
        dexec(media, f"mv {conf}.bench {conf} && systemctl reload nginx")


def _answers(target: str) -> bool:
    return load("probe", "--target", target, "--count", "3")["failures"] == 0


def capacity(lb: str, media: str, steps: list[int], bitrate: int, quick: bool) -> dict:
    """Part 4: steps of N concurrent streams at `bitrate`, through lb and straight to the sink in
    turn, until a step through the balancer is lossy."""
    only_server(lb, media)
    window = 4.0 if quick else 6.0
    ramp = 3.0
    target = f"{public(lb)}:1935"
    rows = []
    with SinkOn(media) as sink:
        wait_until(lambda: _answers(target), 30, "the sink behind the balancer")
        for count in steps:
            row = _step(sink, target, lb, count=count, bitrate=bitrate, ramp=ramp, window=window)
            time.sleep(2)
            row["direct_same_load"] = _step(
                sink, f"{media_ip(media)}:1935", None, count=count, bitrate=bitrate, ramp=ramp, window=window
            )
            rows.append(row)
            direct_gbit = row["direct_same_load"]["delivered_mbit_s"] / 1000
            print(
                f"bench: capacity {count} streams: {row['lossy']} lossy, {row['failures']} failed, "
                f"{row['delivered_mbit_s'] / 1000:.2f} Gbit/s (direct {direct_gbit:.2f}), "
                f"HAProxy {row['haproxy_cpu_percent']:.0f}% CPU, {row['haproxy_cpu_s_per_gbit']:.3f} CPU-s per Gbit",
                flush=True,
            )
            if not row["ok"]:
                break
            time.sleep(2)
    carried = [r["streams"] for r in rows if r["ok"]]
    return {
        "bitrate": bitrate,
        "generator_processes": GENERATORS,
        "sink_processes": len(sink.stats),
        "steps": rows,
        "max_lossless_streams": max(carried) if carried else 0,
    }


GENERATORS = 2  # stream generator processes per step


def _generate(target: str, count: int, bitrate: int, ramp: float, seconds: float) -> list[subprocess.Popen]:
    shares = [count // GENERATORS + (1 if n < count % GENERATORS else 0) for n in range(GENERATORS)]
    argv = [PY, LOAD, "streams", "--target", target, "--bitrate", str(bitrate), "--ramp", str(ramp)]
    return [
        subprocess.Popen([*argv, "--count", str(share), "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
        for share in shares
        if share
    ]


def _step(sink: SinkOn, target: str, lb: str | None, *, count: int, bitrate: int, ramp: float, window: float) -> dict:
    idle = haproxy_usage(lb) if lb else None
    generators = _generate(target, count, bitrate, ramp, window + 3)
    time.sleep(ramp + 1.5)
    first, usage_first = sink.snapshot(), haproxy_usage(lb) if lb else None
    time.sleep(window)
    last, usage_last = sink.snapshot(), haproxy_usage(lb) if lb else None
    made = []
    for generator in generators:
        out, _err = generator.communicate(timeout=ramp + window + 60)
        made.append(json.loads(out.strip().splitlines()[-1]))
    connected, failures = sum(m["connected"] for m in made), sum(m["failures"] for m in made)
    span = last["time"] - first["time"]
    expected = bitrate / 8 * span
    delivered = [last["received"][k] - v for k, v in first["received"].items() if k in last["received"]]
    fresh = sorted(delivered, reverse=True)[:count]  # this step's streams; older ids stopped growing
    lossy = sum(1 for d in fresh if d < 0.9 * expected) + max(0, count - len(fresh))
    row = {
        "streams": count,
        "connected": connected,
        "failures": failures,
        "first_failure": next((m["first_failure"] for m in made if m["first_failure"]), None),
        "lossy": lossy,
        "delivered_mbit_s": sum(fresh) * 8 / span / 1e6,
        "ok": connected == count and failures == 0 and lossy == 0,
    }
    if lb:
        cpu_s = usage_last["cpu_s"] - usage_first["cpu_s"]
        row["haproxy_cpu_percent"] = 100 * cpu_s / span
        row["haproxy_cpu_s_per_gbit"] = cpu_s / max(1e-9, sum(fresh) * 8 / 1e9)
        row["haproxy_rss_bytes"] = usage_last["rss_bytes"]
        row["haproxy_kib_per_stream"] = (usage_last["rss_bytes"] - idle["rss_bytes"]) / 1024 / count
    else:
        row["haproxy_cpu_percent"] = row["haproxy_cpu_s_per_gbit"] = row["haproxy_kib_per_stream"] = 0.0
    return row

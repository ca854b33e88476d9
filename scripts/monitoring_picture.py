"""docs/img/monitoring-streams.png: the lab's Prometheus graph of streams per media server while the
fleet scales out to four servers and one of them drains (docs/monitoring.md).

    make lab && .venv/bin/python scripts/monitoring_picture.py     (about 3 min; needs matplotlib:
                                                                    requirements-bench.txt)

Publishers stream through lb1; the figure is plotted from Prometheus' query_range API with the
shipped dashboard's "Streams per media server" query, and the lab is left as it was (3 servers).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import lab

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img" / "monitoring-streams.png"
LB = "rtmpedge-lb1"
QUERY = f'sum by (server) (haproxy_server_current_sessions{{proxy="rtmp_media",instance="{LB}"}})'


def publish(client, keys: list[str]) -> None:
    host = lab.address(client, LB, lab.PUBLIC)
    lab.install_publisher(client)
    code, _out, err = lab.publisher(client, "start", *(f"{k}=rtmp://{host}:1935/live/{k}" for k in keys))
    if code:
        sys.exit(f"monitoring picture: publishers did not start: {err}")


def until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"monitoring picture: timed out waiting for {what}")
        time.sleep(1)


def on_servers(client, keys: list[str]) -> dict[str, str]:
    live = lab.streams(client)
    return {k: live[k][0] for k in keys if k in live}


def main() -> int:
    client = lab.docker.from_env()
    started = time.time()
    events = []
    first = [f"pic-{n}" for n in range(6)]
    publish(client, first)
    until(lambda: len(on_servers(client, first)) == 6, 90, "six streams on the media servers")
    time.sleep(20)
    events.append((time.time(), "scale to 4"))
    subprocess.run([sys.executable, str(ROOT / "scripts/lab.py"), "scale", "4"], check=True, stdout=subprocess.DEVNULL)
    second = [f"pic-{n}" for n in range(6, 10)]
    publish(client, second)
    until(lambda: len(on_servers(client, second)) == 4, 90, "four more streams")
    time.sleep(20)
    events.append((time.time(), "drain media4"))
    draining = threading.Thread(
        target=subprocess.run,
        args=([sys.executable, str(ROOT / "scripts/lab.py"), "scale", "3"],),
        kwargs={"check": True, "stdout": subprocess.DEVNULL},
    )
    draining.start()
    time.sleep(25)  # media4 takes no new stream and keeps its own: the drain waits for them
    on_media4 = [k for k, server in on_servers(client, first + second).items() if server == lab.media_name(4)]
    events.append((time.time(), "its publishers stop"))
    lab.publisher(client, "stop", *on_media4)
    draining.join(timeout=600)
    events.append((time.time(), "media4 removed"))
    time.sleep(15)
    lab.publisher(client, "stop", *first, *second)
    ended = time.time() + 10
    time.sleep(10)

    result = lab.prometheus_api(client, "query_range", query=QUERY, start=started, end=ended, step=1)["result"]
    import matplotlib  # noqa: PLC0415 - only this script needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(figsize=(9, 4.2), dpi=110)
    # Stacked: the top edge is the balancer's streams, each band one media server's share.
    series = sorted(result, key=lambda r: r["metric"].get("server", ""))
    times = sorted({float(t) for r in series for t, _v in r["values"]})
    bands = [{float(t): float(v) for t, v in r["values"]} for r in series]
    axes.stackplot(
        [t - started for t in times],
        [[band.get(t, 0.0) for t in times] for band in bands],
        labels=[r["metric"].get("server", "?") for r in series],
        step="post",
        alpha=0.85,
    )
    for when, label in events:
        axes.axvline(when - started, color="grey", linestyle=":", linewidth=1)
        axes.text(when - started + 1, axes.get_ylim()[1] * 0.97, label, fontsize=8, rotation=90, va="top")
    axes.set_xlabel("seconds")
    axes.set_ylabel("streams")
    day = datetime.fromtimestamp(started).strftime("%Y-%m-%d")
    axes.set_title(f"Streams per media server through {LB} (lab Prometheus, {day})", fontsize=10)
    axes.legend(loc="upper left", fontsize=8, framealpha=0.9)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(OUT)
    print(f"monitoring picture: {OUT.relative_to(ROOT)} ({len(result)} series, events {[e[1] for e in events]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a balancer knows that HAProxy's own Prometheus exporter cannot say (docs/monitoring.md).

HAProxy's exporter answers from the current worker. The master knows the rest: how many
workers run, how long old ones have held their streams, how many reloads failed, and
whether the newest worker is older than the last reload (every reload since it started
failed, so HAProxy runs an older configuration than the one on disk). The health
endpoint's own verdict is read too, the one DNS and load balancers act on.

Served on loopback by the service `rtmpedge-metrics` (haproxy role), scraped through
HAProxy's management bind at /rtmpedge/metrics. It also serves /rtmpedge/sessions, each
media server's sessions in every worker, which the other balancers' scale-in guards read
(docs/scaling.md). Pure Python, standard library only.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import (
    RuntimeAPIError,
    sessions_by_worker,
    sessions_in_every_worker,
    show_proc,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_settings import FACT_PATH, Settings, read_fact

TIMEOUT = 3.0
_UPTIME = re.compile(r"^(?:(\d+)d)?(\d+)h(\d+)m(\d+)s$")
_SLOTS = re.compile(r"(-?\d+) free stream slots")
_HELP = {
    "rtmpedge_haproxy_master_up": "1 when the master CLI answers.",
    "rtmpedge_haproxy_workers": "HAProxy worker processes, the current one and old ones finishing their streams.",
    "rtmpedge_haproxy_old_workers": "Workers left by reloads, kept alive by the streams they carry.",
    "rtmpedge_haproxy_old_worker_sessions": "Sessions to media servers still carried by old workers.",
    "rtmpedge_haproxy_oldest_old_worker_seconds": "Age of the oldest old worker (0 when none).",
    "rtmpedge_haproxy_reloads_total": "Reloads the master performed since it started.",
    "rtmpedge_haproxy_failed_reloads_total": "Reloads whose configuration the master could not load.",
    "rtmpedge_haproxy_config_stale": "1 when every reload since the current worker started failed.",
    "rtmpedge_health_up": "1 when the health endpoint answers 200 (what DNS and load balancers see).",
    "rtmpedge_health_drained": "1 while the balancer is drained on purpose (the endpoint answers 503 for that).",
    "rtmpedge_health_free_slots": "Free stream slots the health endpoint counted (absent when not counted).",
}


def uptime_seconds(text: str) -> int:
    """`show proc`'s uptime (0d00h01m05s) in seconds; 0 when it cannot be read."""
    match = _UPTIME.match(text)
    if not match:
        return 0
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def master_metrics(master_socket: str, backend: str) -> dict[str, float]:
    try:
        proc = show_proc(master_socket, TIMEOUT)
    except RuntimeAPIError:
        return {"rtmpedge_haproxy_master_up": 0}
    workers = proc["workers"]
    # The current worker survived the fewest reloads (0 after a good one); the rest are old.
    current = min(workers, key=lambda w: (w["reloads"], uptime_seconds(w["uptime"])), default=None)
    old = [w for w in workers if w is not current]
    old_pids = {w["pid"] for w in old}
    try:
        by_worker = sessions_by_worker(master_socket, backend, TIMEOUT) if old else {}
    except RuntimeAPIError:
        by_worker = {}
    values = {
        "rtmpedge_haproxy_master_up": 1,
        "rtmpedge_haproxy_workers": len(workers),
        "rtmpedge_haproxy_old_workers": len(old),
        f'rtmpedge_haproxy_old_worker_sessions{{proxy="{backend}"}}': sum(
            n for per_worker in by_worker.values() for pid, n in per_worker.items() if pid in old_pids
        ),
        "rtmpedge_haproxy_oldest_old_worker_seconds": max((uptime_seconds(w["uptime"]) for w in old), default=0),
        "rtmpedge_haproxy_reloads_total": proc["master"]["reloads"],
        "rtmpedge_haproxy_config_stale": int(current is not None and current["reloads"] > 0),
    }
    if proc["master"]["failed"] is not None:
        values["rtmpedge_haproxy_failed_reloads_total"] = proc["master"]["failed"]
    return values


def health_metrics(url: str, backend: str) -> dict[str, float]:
    """The endpoint's verdict on `backend`; unreachable counts as down, not drained."""
    label = f'{{proxy="{backend}"}}'
    try:
        # An opener, not urlopen: the same urllib, with no proxy from the environment (loopback).
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=TIMEOUT) as response:
            status, body = response.status, response.read(4096).decode(errors="replace")
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read(4096).decode(errors="replace")
    except (OSError, ValueError):
        status, body = 0, ""
    values = {
        f"rtmpedge_health_up{label}": int(status == 200),
        f"rtmpedge_health_drained{label}": int("drained on purpose" in body),
    }
    slots = _SLOTS.search(body)
    if slots:
        values[f"rtmpedge_health_free_slots{label}"] = int(slots.group(1))
    return values


def exposition(values: dict[str, float]) -> str:
    """Prometheus' text format; keys are metric names, with their labels where they have any."""
    lines = []
    for series, value in values.items():
        name = series.split("{", 1)[0]
        kind = "counter" if name.endswith("_total") else "gauge"
        lines += [f"# HELP {name} {_HELP[name]}", f"# TYPE {name} {kind}", f"{series} {value:g}"]
    return "\n".join(lines) + "\n"


def collect(fact_path: str, health_url: str) -> str:
    try:
        settings = read_fact(fact_path)
    except (OSError, ValueError, TypeError):
        settings, values = Settings(), {"rtmpedge_haproxy_master_up": 0}
    else:
        values = master_metrics(settings.master_socket, settings.backend)
    if health_url:
        values.update(health_metrics(health_url, settings.backend))
    return exposition(values)


def sessions_document(fact_path: str) -> dict:
    """Each media server's sessions summed over every worker, for the scale-in guard of every
    balancer (module_utils/scale_guard.py): {"complete": bool, "servers": {name: sessions}}.

    Incomplete when the master or a running worker does not answer: the guard then releases nothing.
    """
    try:
        settings = read_fact(fact_path)
        by_worker, complete = sessions_in_every_worker(settings.master_socket, settings.backend, TIMEOUT)
    except (OSError, ValueError, TypeError, RuntimeAPIError) as e:
        return {"complete": False, "servers": {}, "error": str(e)}
    return {"complete": complete, "servers": {name: sum(per.values()) for name, per in sorted(by_worker.items())}}


def make_server(address: str, port: int, fact_path: str, health_url: str) -> ThreadingHTTPServer:
    """The exporter's HTTP server (GET /metrics, GET /sessions), bound and ready for serve_forever()."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # http.server calls it by this name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                body, kind = collect(fact_path, health_url).encode(), "text/plain; version=0.0.4"
            elif path == "/sessions":
                body, kind = json.dumps(sessions_document(fact_path)).encode(), "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):  # scrapes every few seconds: keep the journal for errors
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    return ThreadingHTTPServer((address, port), Handler)


def main(argv: list[str] | None = None) -> int:
    import argparse  # noqa: PLC0415 - only the service's start needs it

    parser = argparse.ArgumentParser(prog="rtmpedge-metrics", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--listen", default="127.0.0.1:8405", help="address:port to serve /metrics on")
    parser.add_argument("--fact", default=FACT_PATH, help="the haproxy role's local fact (HAProxy's sockets)")
    parser.add_argument("--health-url", default="", help="the health endpoint, e.g. http://127.0.0.1:8000/")
    parser.add_argument("--once", action="store_true", help="print the metrics once and exit")
    args = parser.parse_args(argv)
    if args.once:
        sys.stdout.write(collect(args.fact, args.health_url))
        return 0
    address, _sep, port = args.listen.rpartition(":")
    with make_server(address.strip("[]") or "127.0.0.1", int(port), args.fact, args.health_url) as server:
        server.serve_forever()
    return 0

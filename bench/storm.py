"""Bench part 7: a reconnect storm. How many new RTMP sessions a second one balancer admits.

Every session is a real RTMP handshake with media3's nginx-rtmp (C0+C1 out, S0+S1+S2 back,
C2), then a reset. Three paths, in turn each round (the order flips every round):
  direct   the generator straight to nginx-rtmp (what the generator and nginx can do here);
  check    through lb1 as the role renders it: the protocol check on (abuse limits off);
  nocheck  through lb1 with the same file minus the check's tcp-request content rules.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time

from continuity import summary
from forwarding import LOAD, PY, only_server
from harness.wait import wait_until
from labctl import haproxy_usage, lbctl, media_ip, public

PATHS = ("direct", "check", "nocheck")


def storm_once(target: str, seconds: float, processes: int, concurrency: int) -> dict:
    """Several generator processes at once (one Python process is slower than HAProxy)."""
    argv = [PY, LOAD, "storm", "--target", target, "--seconds", str(seconds), "--concurrency", str(concurrency)]
    running = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _n in range(processes)]
    results = []
    for process in running:
        out, _err = process.communicate(timeout=seconds + 60)
        if process.returncode != 0:
            raise RuntimeError(f"the storm generator exited {process.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "per_second": sum(r["per_second"] for r in results),
        "failures": sum(r["failures"] for r in results),
        "errors": _merged(results),
    }


def _answers(target: str) -> bool:
    return storm_once(target, 0.5, 1, 1)["failures"] == 0


def storm(lb: str, media: str, quick: bool) -> dict:
    rounds, seconds = (2, 3.0) if quick else (5, 5.0)
    processes, concurrency = 2, 64
    only_server(lb, media)
    targets = {"direct": f"{media_ip(media)}:1935", "check": f"{public(lb)}:1935", "nocheck": f"{public(lb)}:1935"}
    samples: dict[str, list[dict]] = {path: [] for path in PATHS}
    cpu: dict[str, list[float]] = {"check": [], "nocheck": []}
    try:
        for index in range(rounds):
            order = PATHS if index % 2 == 0 else tuple(reversed(PATHS))
            for path in order:
                lbctl(lb, "variant", "protocol-check-off" if path == "nocheck" else "restore")
                wait_until(lambda t=targets[path]: _answers(t), 30, f"the {path} path to answer")
                before = haproxy_usage(lb)
                result = storm_once(targets[path], seconds, processes, concurrency)
                if path != "direct":
                    sessions = result["per_second"] * seconds
                    cpu[path].append((haproxy_usage(lb)["cpu_s"] - before["cpu_s"]) / max(1.0, sessions) * 1000)
                samples[path].append(result)
                time.sleep(1)
    finally:
        lbctl(lb, "variant", "restore")
    rates = {path: [s["per_second"] for s in runs] for path, runs in samples.items()}
    pairs = zip(rates["check"], rates["nocheck"], strict=True)
    out = {
        "seconds": seconds,
        "generator": {"processes": processes, "concurrency": concurrency},
        "per_second": {path: summary(values) for path, values in rates.items()},
        "failures": {path: sum(s["failures"] for s in runs) for path, runs in samples.items()},
        "errors": {path: _merged(runs) for path, runs in samples.items()},
        "haproxy_cpu_ms_per_session": {path: summary(values) for path, values in cpu.items()},
        "check_vs_nocheck": statistics.median(c / n for c, n in pairs if n),
        "nocheck_vs_direct": statistics.median(rates["nocheck"]) / statistics.median(rates["direct"]),
    }
    print(
        f"bench: storm {', '.join(f'{p} {statistics.median(v):.0f}/s' for p, v in rates.items())}; "
        f"check/nocheck {out['check_vs_nocheck']:.2f}",
        flush=True,
    )
    return out


def _merged(runs: list[dict]) -> dict:
    errors: dict[str, int] = {}
    for run in runs:
        for key, n in run["errors"].items():
            errors[key] = errors.get(key, 0) + n
    return errors

"""The bench's handles on the lab (scripts/lab.py): docker exec, network namespaces, HAProxy stats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))

import lab  # noqa: E402 - scripts/lab.py, the lab's one definition
from harness import containers  # noqa: E402

LB1, LB2, CLIENT = "rtmpedge-lb1", "rtmpedge-lb2", lab.CLIENT
LBCTL = "/usr/local/lib/rtmpedge/bench-lbctl.py"
TICK = os.sysconf("SC_CLK_TCK")


def sh(*argv: str, input_text: str | None = None, check: bool = True) -> str:
    result = subprocess.run(argv, input=input_text, capture_output=True, text=True, check=False, cwd=ROOT)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result.stdout


def dexec(container: str, command: str, check: bool = True, input_text: str | None = None) -> str:
    """The command's output (the harness's docker exec, its stdout)."""
    return containers.dexec(container, command, check=check, input_text=input_text).stdout


def put_file(container: str, path: str, text: str, mode: str = "0644") -> None:
    dexec(container, f"mkdir -p $(dirname {path}) && cat > {path} && chmod {mode} {path}", input_text=text)


def lbctl(lb: str, *args: str) -> dict:
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in args)
    return json.loads(dexec(lb, f"python3 {LBCTL} {quoted}").strip().splitlines()[-1])


def set_fleet(lb: str, servers: list[dict]) -> None:
    """The bench's discovery on the balancer (a static source the job reads)."""
    lbctl(lb, "fleet", json.dumps(servers))


def apply_servers(lb: str, servers: list[dict], way: str = "reconcile") -> dict:
    """Make the balancer serve these media servers, in one of lbctl's ways."""
    set_fleet(lb, servers)
    return lbctl(lb, "apply", way)


def install_lbctl() -> None:
    text = (ROOT / "bench" / "lbctl.py").read_text()
    for lb in lab.BALANCERS:
        put_file(lb, LBCTL, text, "0755")


def pid_of(container: str) -> int:
    return int(sh("docker", "inspect", "-f", "{{.State.Pid}}", container).strip())


def in_netns(container: str, argv: list[str]) -> list[str]:
    """Run a host program in the container's network namespace (its files stay the host's)."""
    return ["nsenter", "-t", str(pid_of(container)), "-n", *argv]


def in_mountns(container: str, argv: list[str]) -> list[str]:
    """Run the container's program (e.g. its ffmpeg) from the host's network namespace."""
    return ["nsenter", "-t", str(pid_of(container)), "-m", *argv]


def address(name: str, network: str) -> str:
    return lab.address(lab.docker.from_env(), name, network)


def public(lb: str) -> str:
    return address(lb, lab.PUBLIC)


def media_ip(name: str) -> str:
    return address(name, lab.MEDIA)


def backend_stats(lb: str) -> dict[str, dict]:
    """rtmp_media's servers in the stats of the worker answering now."""
    rows = lab.balancer_stats(lab.docker.from_env(), lb)
    return {sv: row for (px, sv), row in rows.items() if px == "rtmp_media" and sv not in {"BACKEND", "FRONTEND"}}


def haproxy_processes(container: str) -> list[int]:
    out = sh("docker", "top", container, "-eo", "pid,comm")
    return [int(line.split()[0]) for line in out.splitlines()[1:] if line.split()[-1] == "haproxy"]


def haproxy_usage(container: str) -> dict:
    """CPU seconds and resident memory of every HAProxy process of the container, from the host's /proc."""
    cpu, rss = 0.0, 0
    for pid in haproxy_processes(container):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            continue  # a worker that just left
    return {"cpu_s": cpu, "rss_bytes": rss, "time": time.monotonic()}


def haproxy_version(lb: str) -> str:
    return dexec(lb, "haproxy -v | head -1").split()[2]  # HAProxy version 2.6.12-1+deb12u3 2025/10/03 - ...

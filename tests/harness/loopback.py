"""A real HAProxy master-worker on loopback, in front of 'media servers' that hold connections.

For tests that drive the collection's runtime code (backend_sync, the reconcile job, the
modules) against HAProxy itself, without containers.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

CHECKED = "check inter 500ms fall 2 rise 1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackServer:
    """A TCP server on loopback (host "::1" for IPv6) that hands each connection to `serve`, in a
    thread of its own; closing `sock` stops it."""

    def __init__(self, host: str = "127.0.0.1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.create_server((host, 0), family=family, backlog=64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                peer, _address = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(peer,), daemon=True).start()

    def serve(self, peer: socket.socket) -> None:
        raise NotImplementedError


class Listener(LoopbackServer):
    """A TCP 'media server' on loopback that accepts and holds every connection (TCP checks pass)."""

    def __init__(self):
        self.peers: list[socket.socket] = []
        super().__init__()

    def serve(self, peer: socket.socket) -> None:
        self.peers.append(peer)


def haproxy_config(directory: Path, front_port: int, timeout_server: str = "1m", default_server: str = CHECKED) -> str:
    """Global and defaults as the role sets them for the runtime path, and an empty rtmp_media backend."""
    return f"""global
    stats socket {directory}/admin.sock mode 600 level admin
    server-state-file {directory}/server-state
defaults
    load-server-state-from-file global
    mode tcp
    timeout connect 1s
    timeout client 1m
    timeout server {timeout_server}
frontend rtmp_ingest
    bind 127.0.0.1:{front_port}
    default_backend rtmp_media
backend rtmp_media
    balance leastconn
    default-server {default_server}
"""


def start_master(haproxy: str, config: Path, master_socket: Path) -> subprocess.Popen:
    """HAProxy in master-worker mode with a master CLI; reload it with SIGUSR2."""
    return subprocess.Popen([haproxy, "-W", "-S", str(master_socket), "-f", str(config)], stderr=subprocess.DEVNULL)


# The reconcile job exactly as the role's wrapper starts it: plain Python, the collection's module_utils.
JOB_LAUNCHER = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from ansible_collections.rtmpedge.balancer.plugins.module_utils.reconcile import main; "
    "sys.exit(main(sys.argv[2:]))"
)


class JobBalancer:
    """A loopback HAProxy master-worker with `servers` in rtmp_media, and the reconcile job's files
    (the haproxy role's fact, the job's JSON, the discovery file) as the roles write them."""

    def __init__(self, tmp: Path, haproxy: str, servers: list[dict], default_server: str = CHECKED):
        # Imported here: the harness is also used where the collection is not importable.
        from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_config import (  # noqa: PLC0415
            replace_servers,
        )
        from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import (  # noqa: PLC0415
            backend_state,
            show_proc,
        )

        self.tmp = tmp
        self.admin = str(tmp / "admin.sock")
        self.master = str(tmp / "master.sock")
        self.config = tmp / "haproxy.cfg"
        text = haproxy_config(tmp, free_port(), default_server=default_server)
        self.config.write_text(replace_servers(text, "rtmp_media", servers))
        self.proc = start_master(haproxy, self.config, Path(self.master))
        self.fact = tmp / "rtmpedge_haproxy.fact"
        self.fact.write_text(
            json.dumps(
                {
                    "config_path": str(self.config),
                    "last_good_path": str(tmp / "haproxy.cfg.last-good"),
                    "backend": "rtmp_media",
                    "admin_socket": self.admin,
                    "master_socket": self.master,
                    "server_state_file": str(tmp / "server-state"),
                    "lock_path": str(tmp / "reconcile.lock"),
                    "haproxy": haproxy,
                    "reload_command": ["kill", "-USR2", str(self.proc.pid)],
                }
            )
        )
        self.discovery = tmp / "discovery.media_servers.yml"
        self.job = tmp / "job.json"
        self.job.write_text(
            json.dumps(
                {
                    "discovery_config": str(self.discovery),
                    "haproxy_fact": str(self.fact),
                    "settings": {"lock_wait": 5},
                }
            )
        )
        # A big backend takes HAProxy a while to parse: wait for both sockets to answer.
        deadline = time.monotonic() + 60 + len(servers) / 200
        while True:
            try:
                backend_state(self.admin, "rtmp_media")
                show_proc(self.master)
                break
            except Exception as e:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the loopback HAProxy did not come up: {e}") from e
                time.sleep(0.1)

    def job_argv(self, collections: Path, python: str = sys.executable) -> list[str]:
        return [python, "-c", JOB_LAUNCHER, str(collections), "--config", str(self.job)]

    def run_job(self, collections: Path, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.job_argv(collections),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={"PATH": "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true"},
        )

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

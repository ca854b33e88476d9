"""A real HAProxy master-worker on loopback, in front of 'media servers' that hold connections.

For tests that drive the collection's runtime code (backend_sync, the reconcile job, the
modules) against HAProxy itself, without containers.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Listener:
    """A TCP 'media server' on loopback that accepts and holds every connection (TCP checks pass)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.sock.getsockname()[1]
        self.peers: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                peer, _address = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer)


def haproxy_config(directory: Path, front_port: int, timeout_server: str = "1m") -> str:
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
    default-server check inter 500ms fall 2 rise 1
"""


def start_master(haproxy: str, config: Path, master_socket: Path) -> subprocess.Popen:
    """HAProxy in master-worker mode with a master CLI; reload it with SIGUSR2."""
    return subprocess.Popen([haproxy, "-W", "-S", str(master_socket), "-f", str(config)], stderr=subprocess.DEVNULL)

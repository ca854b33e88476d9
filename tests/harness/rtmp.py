"""A publisher's first bytes, and whether a balancer answers them like an RTMP server."""

from __future__ import annotations

import socket
import struct

# C0 (version 3) and a 1536-byte C1: what a publisher sends before it waits for S0.
C0C1 = b"\x03" + bytes(1536)
# SO_LINGER on, 0 s: close with a reset, so floods of probes leave no TIME_WAIT behind.
NO_LINGER = struct.pack("ii", 1, 0)


def handshake(host: str, port: int = 1935, timeout: float = 5) -> bool:
    """C0+C1 to host:port gets S0 (0x03) back."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, NO_LINGER)
            sock.sendall(C0C1)
            return sock.recv(1) == b"\x03"
    except OSError:
        return False

"""Helpers for tests that run real HAProxy processes on loopback."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import RuntimeAPIError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.wait import wait_until as harness_wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, seconds: float = 10.0, what: str = "condition"):
    """The predicate's first truthy value; a socket that does not answer yet counts as false.

    HAProxy's sockets exist a moment before they listen, and the master CLI drops
    connections while it re-executes on a reload.
    """
    return harness_wait_until(predicate, seconds, what, step=0.05, retry_on=(RuntimeAPIError,))

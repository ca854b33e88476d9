"""Helpers for tests that run real HAProxy processes on loopback."""

from __future__ import annotations

import socket
import time

import pytest
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import RuntimeAPIError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, seconds: float = 10.0, what: str = "condition"):
    """The predicate's first truthy value; a socket that does not answer yet counts as false.

    HAProxy's sockets exist a moment before they listen, and the master CLI drops
    connections while it re-executes on a reload.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = predicate()
        except RuntimeAPIError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)

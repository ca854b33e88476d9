"""Helpers for tests that run real HAProxy processes on loopback (the harness's, plus HAProxy's socket quirks)."""

from __future__ import annotations

from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import RuntimeAPIError
from harness.loopback import free_port
from harness.wait import wait_until as harness_wait_until

__all__ = ["free_port", "wait_until"]


def wait_until(predicate, seconds: float = 10.0, what: str = "condition"):
    """The predicate's first truthy value; a socket that does not answer yet counts as false.

    HAProxy's sockets exist a moment before they listen, and the master CLI drops
    connections while it re-executes on a reload.
    """
    return harness_wait_until(predicate, seconds, what, step=0.05, retry_on=(RuntimeAPIError,))

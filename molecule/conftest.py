"""Shared testinfra helpers for every molecule scenario."""

from __future__ import annotations

import pytest

DEBIAN_HAPROXY_BRANCH = {"12": "2.6", "13": "3.0"}


@pytest.fixture
def debian_major(host) -> str:
    return host.system_info.release.split(".")[0]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed test, attach the HAProxy journal of the host under test."""
    outcome = yield
    report = outcome.get_result()
    host = item.funcargs.get("host") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and host is not None:
        journal = host.run("journalctl -u haproxy --no-pager -n 40")
        report.sections.append(("journal haproxy", journal.stdout or journal.stderr))

"""Shared fixtures for the unit tests."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from ansible.plugins.loader import init_plugin_loader

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the harness package
# `make setup` links the checkout here. Ansible's collection loader imports it by its
# real name, and templates find its filters by their full names, as in a play.
init_plugin_loader([str(REPO_ROOT / ".collections")])


@pytest.fixture(scope="session")
def haproxy_bin() -> str:
    path = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(path).exists():
        pytest.fail("haproxy is not installed; scripts/unit.sh installs it")
    return path

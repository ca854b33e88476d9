"""Shared fixtures for the unit tests."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# `make setup` links the checkout here, so tests import the collection by its real name.
sys.path.insert(0, str(REPO_ROOT / ".collections"))


@pytest.fixture(scope="session")
def haproxy_bin() -> str:
    path = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(path).exists():
        pytest.fail("haproxy is not installed; scripts/unit.sh installs it")
    return path

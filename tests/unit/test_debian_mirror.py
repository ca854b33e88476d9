"""scripts/debian_mirror.py finds the machine's Debian archive, never a security or third-party one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "debian_mirror.py"
_SPEC = importlib.util.spec_from_file_location("debian_mirror", _PATH)
debian_mirror = importlib.util.module_from_spec(_SPEC)
sys.modules["debian_mirror"] = debian_mirror
_SPEC.loader.exec_module(debian_mirror)

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example.org/debian
Suites: bookworm

Types: deb
URIs: http://mirror.example.org/debian
Suites: bookworm bookworm-updates
Components: main
"""

ONE_LINE = """\
# a comment
deb https://packages.example.com/apt cloud-sdk-bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example.net/debian bookworm main
deb http://mirror.example.net/debian-security bookworm-security main
"""


def test_deb822_picks_the_main_archive_not_security_or_sources():
    assert debian_mirror._from_deb822(DEB822) == ["http://mirror.example.org/debian"]


def test_one_line_format_skips_third_party_and_options():
    assert debian_mirror._from_one_line(ONE_LINE) == ["http://mirror.example.net/debian"]


def test_the_security_archive_is_found_on_request_in_both_formats():
    assert debian_mirror._from_deb822(DEB822, security=True) == ["http://security.example.org/debian-security"]
    assert debian_mirror._from_one_line(ONE_LINE, security=True) == ["http://mirror.example.net/debian-security"]


@pytest.mark.parametrize("text", ["", "Types: deb\nURIs: cdrom:/media\nSuites: bookworm\n"])
def test_nothing_usable_gives_nothing(text):
    assert debian_mirror._from_deb822(text) == []


def test_environment_override_wins(monkeypatch):
    monkeypatch.setenv("DEBIAN_MIRROR", "http://override.example/debian")
    assert debian_mirror.find_mirror() == "http://override.example/debian"

"""The RTMP frontend's guards, rendered by the role's template and enforced by a real HAProxy on loopback.

Protocol check (first byte C0 = 0x03, C0+C1 within the handshake timeout), per-source
concurrency and rate limits, the publisher deny/allow lists changed at runtime through
module_utils.haproxy_runtime (what the haproxy_acl module runs), and ACME HTTP-01 answered
by HAProxy itself from a map changed at runtime (what the haproxy_map module runs), all
against a sink that records what reached the "media server".
"""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import (
    acl_entries,
    map_entries,
    replace_acl,
    replace_map,
    send_command,
)
from haproxy_render import render, with_local_lists
from harness.loopback import LoopbackServer
from harness.rtmp import C0C1
from loopback import free_port, wait_until
from run_module import run_module


class Sink(LoopbackServer):
    """A media server stand-in on loopback: answers RTMP handshakes, records each connection's first bytes."""

    def __init__(self):
        self.first_bytes: list[bytes] = []
        super().__init__()

    def serve(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                data = conn.recv(1537)
                self.first_bytes.append(data[:1])
                if data[:1] == b"\x03":
                    conn.sendall(b"\x03" + bytes(3072))
                    while conn.recv(65536):
                        pass
            except OSError:
                pass

    def streams(self) -> int:
        """Connections that carried data (health checks connect and leave without any)."""
        return sum(1 for b in self.first_bytes if b)


@pytest.fixture
def balancer(haproxy_bin, tmp_path):
    """Start HAProxy with the role's config for one sink; yields a function (overrides) -> (port, admin, sink)."""
    started = []

    def start(**overrides):
        sink = Sink()
        port, admin = free_port(), str(tmp_path / "admin.sock")
        variables = {
            "haproxy_rtmp_binds": [{"address": "127.0.0.1", "port": port}],
            "haproxy_health_enabled": False,
            "haproxy_management_enabled": False,
            "haproxy_admin_socket": admin,
            "haproxy_health_check": "tcp",
            "haproxy_rtmp_handshake_timeout": "1s",
            "haproxy_acme_responder_port": free_port(),
            **overrides,
        }
        config = render({"media1": {"rtmp_address": "127.0.0.1", "rtmp_port": sink.port}}, **variables)
        for name, key in (
            ("publishers-allow.acl", "haproxy_publisher_allow"),
            ("publishers-deny.acl", "haproxy_publisher_deny"),
        ):
            (tmp_path / name).write_text("".join(f"{entry}\n" for entry in variables.get(key, [])))  # as the role does
        path = tmp_path / "haproxy.cfg"
        path.write_text(with_local_lists(config, tmp_path))
        proc = subprocess.Popen([haproxy_bin, "-db", "-f", str(path)], stderr=subprocess.DEVNULL)
        started.append((proc, sink))
        wait_until(lambda: send_command(admin, "show info", timeout=1), what="HAProxy's admin socket")
        wait_until(lambda: _handshake(port), what="a handshake through HAProxy")
        return port, admin, sink

    yield start
    for proc, sink in started:
        proc.terminate()
        proc.wait(timeout=10)
        sink.sock.close()


def _handshake(port: int) -> bool:
    """True when a publisher's C0+C1 gets S0 back through the balancer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.sendall(C0C1)
            return sock.recv(1) == b"\x03"
    except OSError:
        return False


def _sessions_sent(admin: str) -> int:
    """Sessions the balancer ever sent to backend rtmp_media (its BACKEND row's stot)."""
    rows = [line.split(",") for line in send_command(admin, "show stat rtmp_media 2 -1").splitlines()]
    header = rows[0]
    header[0] = header[0].lstrip("# ")
    return int(dict(zip(header, rows[1], strict=False))["stot"])


def _closed_without_answer(port: int, payload: bytes, wait: float = 3.0) -> bool:
    """Send payload; True when the balancer closes the connection without sending anything."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        if payload:
            sock.sendall(payload)
        try:
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True


@pytest.mark.parametrize(
    "payload",
    [b"GET / HTTP/1.1\r\nHost: ingest\r\n\r\n", b"\x16\x03\x01\x02\x00" + os.urandom(64), b"\x00" * 32],
    ids=["http", "tls-hello", "zeros"],
)
def test_non_rtmp_first_byte_is_refused_at_the_balancer(balancer, payload):
    port, admin, sink = balancer(haproxy_limit_conn_rate=0, haproxy_limit_conn_concurrent=0)
    before, sent_before = sink.streams(), _sessions_sent(admin)
    started = time.monotonic()
    assert _closed_without_answer(port, payload)
    assert time.monotonic() - started < 0.9, "a wrong first byte must be refused at once, not at the timeout"
    # HAProxy's own count, final once the connection is closed: no session went to a media server.
    assert _sessions_sent(admin) == sent_before, "the refused connection was sent to the media server"
    assert sink.streams() == before, f"the media server saw {sink.first_bytes[before:]}"


def test_silent_and_slow_handshakes_are_closed_after_the_timeout(balancer):
    port, _admin, sink = balancer(haproxy_limit_conn_rate=0, haproxy_limit_conn_concurrent=0)
    before = sink.streams()
    for payload in (b"", b"\x03" + bytes(100)):  # nothing at all; C0 and only part of C1
        started = time.monotonic()
        assert _closed_without_answer(port, payload, wait=5)
        assert 0.9 <= time.monotonic() - started < 4, "closed by the 1 s handshake timeout"
    assert sink.streams() == before


def test_a_publisher_handshake_passes(balancer):
    port, _admin, sink = balancer()
    before = sink.streams()
    assert _handshake(port)
    wait_until(lambda: sink.streams() == before + 1, what="the stream at the media server")


def test_concurrent_connections_per_source_are_limited(balancer):
    port, _admin, _sink = balancer(haproxy_limit_conn_rate=0, haproxy_limit_conn_concurrent=3)
    held = []
    try:
        for _n in range(3):
            sock = socket.create_connection(("127.0.0.1", port), timeout=3)
            sock.sendall(C0C1)
            assert sock.recv(1) == b"\x03"
            held.append(sock)
        assert not _handshake(port), "a fourth connection from the same source got through"
    finally:
        for sock in held:
            sock.close()
    wait_until(lambda: _handshake(port), what="a new connection once the others closed")


def test_connection_rate_per_source_is_limited(balancer):
    port, _admin, _sink = balancer(
        haproxy_limit_conn_rate=5, haproxy_limit_conn_concurrent=0, haproxy_limit_period="30s"
    )
    outcomes = [_handshake(port) for _n in range(10)]
    # The fixture's own readiness handshake counted as the first of the period.
    assert outcomes.count(True) == 4, outcomes
    assert outcomes[:4] == [True] * 4


def test_deny_and_allow_lists_change_at_runtime(balancer, tmp_path):
    port, admin, _sink = balancer(haproxy_publisher_allow=["127.0.0.1"])
    deny = str(tmp_path / "publishers-deny.acl")
    allow = str(tmp_path / "publishers-allow.acl")
    assert acl_entries(admin, deny) == []
    replace_acl(admin, deny, ["127.0.0.0/8"])
    assert acl_entries(admin, deny) == ["127.0.0.0/8"]
    assert not _handshake(port), "a denied source got through"
    replace_acl(admin, deny, [])
    assert _handshake(port)
    replace_acl(admin, allow, ["192.0.2.0/24"])
    assert not _handshake(port), "a source outside the allow list got through"
    replace_acl(admin, allow, ["192.0.2.0/24", "127.0.0.1"])
    assert _handshake(port)


def test_an_acl_the_worker_does_not_load_is_reported_as_such(balancer, tmp_path):
    _port, admin, _sink = balancer()  # no allow list: the rule and its file are not in use
    assert acl_entries(admin, str(tmp_path / "publishers-allow.acl")) is None


TOKEN = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
KEY_AUTHORIZATION = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"


def _http_get(port: int, path: str) -> bytes:
    """One HTTP/1.1 GET as an ACME CA's validator sends it; the whole answer (b"" if closed unanswered)."""
    request = f"GET {path} HTTP/1.1\r\nHost: ingest.example.com\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


@pytest.mark.parametrize("protocol_check", [True, False], ids=["protocol-check", "no-protocol-check"])
def test_an_acme_challenge_is_answered_from_the_map_changed_at_runtime(balancer, tmp_path, protocol_check):
    port, admin, sink = balancer(haproxy_acme_enabled=True, haproxy_rtmp_protocol_check=protocol_check)
    challenges = str(tmp_path / "acme-challenges.map")
    before = sink.streams()
    assert map_entries(admin, challenges) == {}
    assert _http_get(port, f"/.well-known/acme-challenge/{TOKEN}").startswith(b"HTTP/1.1 404"), "answered unknown"
    replace_map(admin, challenges, {TOKEN: KEY_AUTHORIZATION})
    answer = _http_get(port, f"/.well-known/acme-challenge/{TOKEN}")
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert answer.split(b"\r\n\r\n", 1)[1] == KEY_AUTHORIZATION.encode(), answer
    assert _http_get(port, f"/.well-known/acme-challenge/{TOKEN}/x").startswith(b"HTTP/1.1 404")
    replace_map(admin, challenges, {})
    assert _http_get(port, f"/.well-known/acme-challenge/{TOKEN}").startswith(b"HTTP/1.1 404"), "kept after removal"
    assert _handshake(port), "RTMP no longer passes beside the challenge responder"
    wait_until(lambda: sink.streams() == before + 1, what="the stream at the media server")
    assert b"\x47" not in sink.first_bytes, "an HTTP request reached the media server"


def test_with_acme_other_http_and_bytes_are_still_refused(balancer):
    port, admin, sink = balancer(haproxy_acme_enabled=True, haproxy_limit_conn_rate=0, haproxy_limit_conn_concurrent=0)
    before, sent_before = sink.streams(), _sessions_sent(admin)
    scanner, tls = b"GET / HTTP/1.1\r\nHost: ingest\r\nUser-Agent: scanner\r\n\r\n", b"\x16\x03\x01\x02\x00" + bytes(64)
    for payload in (scanner, tls):
        started = time.monotonic()
        assert _closed_without_answer(port, payload), payload
        assert time.monotonic() - started < 0.9, f"{payload[:8]!r} must be refused at once, not at the timeout"
    assert _http_get(port, "/.well-known/acme-challenge-not/x") == b""
    assert _sessions_sent(admin) == sent_before, "a refused connection was sent to the media server"
    assert sink.streams() == before


def test_the_map_module_sets_the_running_map_once_and_refuses_what_the_api_cannot_take(balancer, tmp_path):
    port, admin, _sink = balancer(haproxy_acme_enabled=True)
    challenges = str(tmp_path / "acme-challenges.map")
    args = {"path": challenges, "entries": {TOKEN: KEY_AUTHORIZATION}, "admin_socket": admin}
    checked = run_module(tmp_path, "rtmpedge.balancer.haproxy_map", args, check=True)
    assert checked["changed"] and map_entries(admin, challenges) == {}, "check mode changed the running map"
    first = run_module(tmp_path, "rtmpedge.balancer.haproxy_map", args, diff=True)
    assert first["changed"] and first["loaded"] and first["before"] == {}, first
    assert first["diff"]["after"] == f"{TOKEN} {KEY_AUTHORIZATION}\n"
    assert _http_get(port, f"/.well-known/acme-challenge/{TOKEN}").endswith(KEY_AUTHORIZATION.encode())
    assert not run_module(tmp_path, "rtmpedge.balancer.haproxy_map", args)["changed"], "a second run changed it"
    bad = run_module(tmp_path, "rtmpedge.balancer.haproxy_map", {**args, "entries": {TOKEN: "two words"}})
    assert bad.get("failed") and "not so for: " + TOKEN in bad["msg"], bad
    unused = run_module(tmp_path, "rtmpedge.balancer.haproxy_map", {**args, "path": str(tmp_path / "other.map")})
    assert unused["loaded"] is False and not unused["changed"], unused


def test_the_acl_module_sets_the_running_deny_list_once(balancer, tmp_path):
    port, admin, _sink = balancer()
    deny = str(tmp_path / "publishers-deny.acl")
    args = {"path": deny, "entries": ["127.0.0.1", " 127.0.0.1 "], "admin_socket": admin}
    first = run_module(tmp_path, "rtmpedge.balancer.haproxy_acl", args, diff=True)
    assert first["changed"] and first["before"] == [] and first["after"] == ["127.0.0.1"], first
    assert first["diff"]["after"] == "127.0.0.1\n"
    assert not _handshake(port), "a denied source got through"
    assert not run_module(tmp_path, "rtmpedge.balancer.haproxy_acl", args)["changed"], "a second run changed it"
    unused = run_module(tmp_path, "rtmpedge.balancer.haproxy_acl", {**args, "path": str(tmp_path / "other.acl")})
    assert unused["loaded"] is False and not unused["changed"], unused

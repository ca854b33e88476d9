"""The health endpoint as the role renders it, answered by a real HAProxy on loopback.

200 while enough media servers are up and enough stream slots are free; 503 with the
counts in the body otherwise, so weighted DNS stops sending publishers to a full balancer.
"""

from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request

import pytest
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import send_command
from haproxy_render import render, with_local_lists
from harness.loopback import Listener
from harness.rtmp import C0C1
from loopback import free_port, wait_until


@pytest.fixture
def balancer(haproxy_bin, tmp_path):
    """Start HAProxy with the role's config; yields a function (media maxconns, overrides) -> (rtmp, health)."""
    started = []

    def start(maxconns: list[int], **overrides):
        media = [Listener() for _n in maxconns]
        rtmp, health, admin = free_port(), free_port(), str(tmp_path / f"admin-{len(started)}.sock")
        hosts = {
            f"media{n}": {"rtmp_address": "127.0.0.1", "rtmp_port": m.port, "rtmp_maxconn": maxconn}
            for n, (m, maxconn) in enumerate(zip(media, maxconns, strict=True))
        }
        config = render(
            hosts,
            haproxy_rtmp_binds=[{"address": "127.0.0.1", "port": rtmp}],
            haproxy_health_bind={"address": "127.0.0.1", "port": health},
            haproxy_management_enabled=False,
            haproxy_admin_socket=admin,
            haproxy_health_check="tcp",
            **overrides,
        )
        path = tmp_path / f"haproxy-{len(started)}.cfg"
        path.write_text(with_local_lists(config, tmp_path))
        proc = subprocess.Popen([haproxy_bin, "-db", "-f", str(path)], stderr=subprocess.DEVNULL)
        started.append((proc, media))
        wait_until(lambda: send_command(admin, "show info", timeout=1), what="HAProxy's admin socket")
        wait_until(lambda: _health(health)[0] in (200, 503), what="the health endpoint")
        return rtmp, health, media

    yield start
    for proc, media in started:
        proc.terminate()
        proc.wait(timeout=10)
        for listener in media:
            listener.sock.close()


def _health(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def _publish(port: int) -> socket.socket:
    """A publisher past the protocol check (C0+C1 sent); the media server holds the session."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(C0C1)
    return sock


def _answers(port: int, status: int, body: str):
    """A predicate for wait_until: the health endpoint answers `status` with `body` in it."""

    def answered() -> bool:
        got_status, got_body = _health(port)
        return got_status == status and body in got_body

    return answered


def test_a_full_balancer_answers_503_and_a_freed_slot_brings_200(balancer):
    rtmp, health, media = balancer([1, 1])
    assert _health(health) == (200, "2 media servers up, 2 free stream slots\n")
    first = _publish(rtmp)
    wait_until(_answers(health, 200, "1 free stream slots"), what="1 free slot after the first publisher")
    second = _publish(rtmp)
    wait_until(_answers(health, 503, "0 free stream slots, 1 needed"), what="503 with every slot taken")
    wait_until(lambda: sum(len(m.peers) for m in media) == 2, what="each publisher on a media server")
    next(m for m in media if m.peers).peers[0].close()  # one stream ends on the media server's side
    wait_until(_answers(health, 200, "1 free stream slots"), what="200 once a slot is free again")
    first.close()
    second.close()


def test_the_threshold_is_a_role_variable_and_zero_turns_it_off(balancer):
    _rtmp, health, _media = balancer([2, 2], haproxy_health_min_free_slots=5)
    assert _health(health) == (503, "2 media servers up, 4 free stream slots, 5 needed\n")
    _rtmp, health, _media = balancer([1], haproxy_health_min_free_slots=0)
    assert _health(health) == (200, "1 media servers up\n")


def test_servers_without_maxconn_are_not_counted(balancer):
    """HAProxy cannot count free slots when a server has no limit: capacity never fails the check then."""
    rtmp, health, _media = balancer([1, 0])
    publishers = [_publish(rtmp) for _n in range(3)]
    wait_until(_answers(health, 200, "not counted"), what="200 with uncounted slots")
    assert _health(health) == (200, "2 media servers up, free stream slots not counted (a server without maxconn)\n")
    for sock in publishers:
        sock.close()


def test_too_few_servers_up_still_answers_503_first(balancer):
    _rtmp, health, media = balancer([1, 1], haproxy_health_min_servers=3)
    assert _health(health) == (503, "2 media servers up, 3 needed\n")
    assert all(not m.peers for m in media)


def test_a_balancer_drained_on_purpose_answers_503_until_undrained(balancer, tmp_path):
    """The drain playbook's flag: the file for new workers, the runtime API for the running one."""
    flag = tmp_path / "balancer-drained.acl"
    _rtmp, health, _media = balancer([1, 1])
    admin = str(tmp_path / "admin-0.sock")
    assert _health(health)[0] == 200
    assert send_command(admin, f"add acl {flag} drained").strip() == ""
    assert _health(health) == (503, "balancer drained on purpose\n")
    assert send_command(admin, f"clear acl {flag}").strip() == ""
    assert _health(health)[0] == 200
    # A worker started while the flag file says so (a reload or restart mid-drain) stays out.
    flag.write_text("drained\n")
    _rtmp, health, _media = balancer([1, 1])
    assert _health(health) == (503, "balancer drained on purpose\n")

"""IPv6 publishers and media servers, with the role's configuration and a real HAProxy on loopback.

PROXY-protocol mode carries IPv6 and IPv4 publishers' addresses to an IPv6 media server (one
listener per family: `::` without `v6only` would give IPv4 publishers as ::ffff:a.b.c.d);
transparent mode, which spoofs IPv4 publishers towards IPv4 media servers only, is refused
by the role and by the reconcile job when IPv6 would reach it.
"""

from __future__ import annotations

import json
import socket
import subprocess

import pytest
from ansible_collections.rtmpedge.balancer.plugins.filter.rtmp_backend import rtmp_backend_config
from ansible_collections.rtmpedge.balancer.plugins.module_utils import reconcile
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import send_command, servers_state
from haproxy_render import render, with_local_lists
from harness.loopback import JobBalancer, LoopbackServer
from harness.rtmp import C0C1
from loopback import free_port, wait_until


class ProxyProtocolSink(LoopbackServer):
    """A media server on [::1] that reads the PROXY v1 header of each stream, then answers S0."""

    def __init__(self):
        self.headers: list[str] = []
        super().__init__("::1")

    def serve(self, conn):
        with conn, conn.makefile("rb") as stream:
            conn.settimeout(5)
            try:
                header = stream.readline(108).decode("ascii", "replace").strip()  # v1's longest line
                if stream.read(1) == b"\x03":  # a publisher's C0 (health checks send no data)
                    self.headers.append(header)
                    conn.sendall(b"\x03")
            except OSError:
                pass


def _publish_from(address: str, port: int) -> tuple[str, int]:
    """C0+C1 from `address` to the balancer; the publisher's own (address, port)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect((address, port))
        sock.sendall(C0C1)
        assert sock.recv(1) == b"\x03", "no S0 through the balancer"
        return sock.getsockname()[:2]


@pytest.fixture
def dual_stack_balancer(haproxy_bin, tmp_path):
    """The role's config in proxy_protocol mode, listening on IPv4 and IPv6 on one port; one IPv6 media server."""
    sink = ProxyProtocolSink()
    port, admin = free_port(), str(tmp_path / "admin.sock")
    config = render(
        {"media6": {"rtmp_address": "::1", "rtmp_port": sink.port}},
        haproxy_rtmp_binds=[{"address": "*", "port": port}, {"address": "::", "port": port, "options": "v6only"}],
        haproxy_client_ip_mode="proxy_protocol",
        haproxy_health_enabled=False,
        haproxy_management_enabled=False,
        haproxy_admin_socket=admin,
        haproxy_health_check="tcp",
    )
    assert "bind :::" in config and f"server media6 ::1:{sink.port}" in config
    path = tmp_path / "haproxy.cfg"
    path.write_text(with_local_lists(config, tmp_path))
    proc = subprocess.Popen([haproxy_bin, "-db", "-f", str(path)], stderr=subprocess.DEVNULL)
    wait_until(lambda: send_command(admin, "show info", timeout=1), what="HAProxy's admin socket")
    yield port, sink
    proc.terminate()
    proc.wait(timeout=10)
    sink.sock.close()


def test_proxy_protocol_carries_ipv6_and_ipv4_publishers_to_an_ipv6_media_server(dual_stack_balancer):
    port, sink = dual_stack_balancer
    v6_address, v6_port = _publish_from("::1", port)
    v4_address, v4_port = _publish_from("127.0.0.1", port)
    wait_until(lambda: len(sink.headers) == 2, what="both streams at the media server")
    assert sink.headers[0].split()[:5] == ["PROXY", "TCP6", v6_address, "::1", str(v6_port)], sink.headers
    # An IPv4 publisher reaches the IPv6 media server with its IPv4 address.
    assert sink.headers[1].split()[:3] == ["PROXY", "TCP4", v4_address], sink.headers
    assert sink.headers[1].split()[4] == str(v4_port), sink.headers


def test_the_backend_refuses_ipv6_media_servers_in_transparent_mode_only():
    media = {"media4": {"rtmp_address": "10.30.0.1"}, "media6": {"rtmp_address": "fd00:30::2"}}
    transparent = rtmp_backend_config(list(media), media, client_ip_mode="transparent")
    assert transparent["problems"] == [
        "media servers with IPv6 addresses (media6) cannot be reached in transparent mode, which spoofs "
        "IPv4 publishers towards IPv4 media servers only; use haproxy_client_ip_mode: proxy_protocol, "
        "which carries IPv4 and IPv6 publishers' addresses"
    ]
    for mode in ("proxy_protocol", "none"):
        assert rtmp_backend_config(list(media), media, client_ip_mode=mode)["problems"] == [], mode


@pytest.fixture
def transparent_job(tmp_path, haproxy_bin):
    """A loopback balancer whose backend connects from the client's address, as transparent mode renders it."""
    servers = [{"name": "m4", "address": "127.0.0.1", "port": free_port(), "weight": 10, "maxconn": 0}]
    servers[0]["state"] = "ready"
    lb = JobBalancer(tmp_path, haproxy_bin, servers, default_server="weight 10")
    text = lb.config.read_text()
    transparent = "    balance leastconn\n    source 0.0.0.0 usesrc clientip\n"
    lb.config.write_text(text.replace("    balance leastconn\n", transparent))
    yield lb, servers
    lb.close()


def test_the_job_refuses_an_ipv6_media_server_in_transparent_mode(transparent_job, capsys):
    lb, servers = transparent_job
    before = lb.config.read_text()
    fleet = [*servers, {"name": "m6", "address": "fd00:30::2", "port": 1935}]
    lb.discovery.write_text(
        json.dumps({"plugin": "rtmpedge.balancer.media_servers", "sources": [{"type": "static", "servers": fleet}]})
    )
    assert reconcile.main(["--config", str(lb.job)]) == 1
    error = " ".join(capsys.readouterr().err.split())
    assert "failed, nothing changed: media servers with IPv6 addresses (m6) cannot be reached in transparent" in error
    assert lb.config.read_text() == before, "the job changed haproxy.cfg although it refused the fleet"
    assert set(servers_state(lb.admin, "rtmp_media")) == {"m4"}


def test_the_job_adds_an_ipv6_media_server_at_runtime_and_then_finds_nothing_to_do(tmp_path, haproxy_bin, capsys):
    servers = [{"name": "m4", "address": "127.0.0.1", "port": free_port(), "weight": 10, "maxconn": 0}]
    servers[0]["state"] = "ready"
    lb = JobBalancer(tmp_path, haproxy_bin, servers, default_server="weight 10")
    try:
        fleet = [*servers, {"name": "m6", "address": "2001:db8:60::6", "port": 1940}]
        lb.discovery.write_text(
            json.dumps({"plugin": "rtmpedge.balancer.media_servers", "sources": [{"type": "static", "servers": fleet}]})
        )
        assert reconcile.main(["--config", str(lb.job)]) == 0, capsys.readouterr().err
        first = capsys.readouterr().out
        assert first.startswith("changed ") and "reload=no" in first, first
        running = servers_state(lb.admin, "rtmp_media")["m6"]
        assert (running["address"], running["port"]) == ("2001:db8:60::6", 1940)
        assert "server m6 2001:db8:60::6:1940 weight 10" in lb.config.read_text()
        assert reconcile.main(["--config", str(lb.job)]) == 0
        second = capsys.readouterr().out
        assert second.startswith("no change"), second
    finally:
        lb.close()

"""Stickiness shared between two balancers as the role renders them, on real HAProxy processes.

Each balancer numbers its media servers differently (one adds a server at runtime,
the other has one more in its file), and on the second balancer the target server is
drained: a new publisher could only reach it through the entry the first balancer
shared. The peers listen on private loopback addresses.
"""

from __future__ import annotations

import socket
import subprocess

import pytest
from ansible_collections.rtmpedge.balancer.plugins.filter.rtmp_peers import rtmp_peers
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import send_command
from haproxy_render import haproxy_check, render, with_local_lists
from harness.loopback import Listener
from loopback import free_port, wait_until

PEERS = {"lb-a": {"haproxy_peers_address": "127.0.0.2"}, "lb-b": {"haproxy_peers_address": "127.0.0.3"}}


def _config(me: str, hosts: dict, port: int, rtmp: int, admin: str) -> str:
    return render(
        hosts,
        inventory_hostname=me,
        groups={"balancers": list(PEERS)},
        _haproxy_peers=rtmp_peers(list(PEERS), PEERS, port),
        haproxy_stickiness_enabled=True,
        haproxy_peers_port=port,
        haproxy_rtmp_binds=[{"address": "127.0.0.1", "port": rtmp}],
        haproxy_rtmp_protocol_check=False,
        haproxy_limit_conn_rate=0,
        haproxy_limit_conn_concurrent=0,
        haproxy_health_enabled=False,
        haproxy_management_enabled=False,
        haproxy_admin_socket=admin,
        haproxy_health_check="tcp",
    )


@pytest.fixture
def two_balancers(haproxy_bin, tmp_path):
    media = [Listener() for _n in range(4)]
    hosts = {f"m{n}": {"rtmp_address": "127.0.0.1", "rtmp_port": m.port} for n, m in enumerate(media)}
    # On lb-b a server in maintenance sorts first, so m0-m2 get other ids than on lb-a.
    hosts["m-spare"] = {**hosts.pop("m3"), "rtmp_state": "maint"}
    port, started = free_port(), {}
    for me, servers in (("lb-a", ["m0", "m1"]), ("lb-b", ["m-spare", "m0", "m1", "m2"])):
        rtmp, admin = free_port(), str(tmp_path / f"{me}.sock")
        config = _config(me, {name: hosts[name] for name in servers}, port, rtmp, admin)
        path = tmp_path / f"{me}.cfg"
        path.write_text(with_local_lists(config, tmp_path))
        proc = subprocess.Popen([haproxy_bin, "-db", "-f", str(path)], stderr=subprocess.DEVNULL)
        started[me] = {"proc": proc, "rtmp": rtmp, "admin": admin}
        wait_until(lambda admin=admin: send_command(admin, "show info", timeout=1), what=f"{me}'s admin socket")
    # m2 joins lb-a at runtime, as the reconcile job adds servers: it gets another id there.
    a = started["lb-a"]["admin"]
    assert "New server registered" in send_command(a, f"add server rtmp_media/m2 127.0.0.1:{media[2].port} weight 100")
    send_command(a, "enable server rtmp_media/m2")
    yield started, media
    for balancer in started.values():
        balancer["proc"].terminate()
        balancer["proc"].wait(timeout=10)
    for listener in media:
        listener.sock.close()


def _ids(admin: str) -> dict[str, str]:
    rows = [line.split() for line in send_command(admin, "show servers state rtmp_media").splitlines()[2:]]
    return {row[3]: row[2] for row in rows if len(row) > 3}


def _landed(port: int, source: str, media: list[Listener]) -> tuple[socket.socket, int]:
    """Connect from `source`; the index of the media server that took the connection."""
    before = [len(m.peers) for m in media]
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    grew = wait_until(
        lambda: [n for n, m in enumerate(media) if len(m.peers) > before[n]],
        what=f"{source}'s connection on a media server",
    )
    return sock, grew[0]


def _established(admin: str) -> bool:
    return "last_status=ESTA" in send_command(admin, "show peers")


def test_a_publisher_reaches_the_same_media_server_through_the_other_balancer(two_balancers):
    balancers, media = two_balancers
    a, b = balancers["lb-a"], balancers["lb-b"]
    assert _ids(a["admin"]) != _ids(b["admin"]), "the test needs the balancers to number the servers differently"
    wait_until(
        lambda: _established(a["admin"]) and _established(b["admin"]), 20, "the peers session between lb-a and lb-b"
    )
    held = []
    for n in range(10):
        target = f"m{n % 3}"
        # lb-a may only pick the target; on lb-b the target is drained, so only a shared entry leads there.
        for name in ("m0", "m1", "m2"):
            send_command(a["admin"], f"set server rtmp_media/{name} state {'ready' if name == target else 'drain'}")
            send_command(b["admin"], f"set server rtmp_media/{name} state {'drain' if name == target else 'ready'}")
        source = f"127.0.0.{10 + n}"
        sock, first = _landed(a["rtmp"], source, media)
        assert f"m{first}" == target
        wait_until(
            lambda source=source: f"key=::ffff:{source} " in send_command(b["admin"], "show table rtmp_media"),
            what=f"lb-b learning {source}'s entry from lb-a",
        )
        again, second = _landed(b["rtmp"], source, media)
        assert f"m{second}" == target, f"round {n}: {source} went to m{first} through lb-a, m{second} through lb-b"
        held += [sock, again]
    for sock in held:
        sock.close()


def test_the_rendered_peers_section_passes_haproxy_check(haproxy_bin, tmp_path):
    config = _config("lb-b", {"m0": {"rtmp_address": "127.0.0.1", "rtmp_port": 1935}}, 10000, 1935, "/run/x.sock")
    assert "    localpeer lb-b\n" in config
    assert (
        "peers rtmpedge_balancers\n    server lb-a 127.0.0.2:10000\n    bind 127.0.0.3:10000\n    server lb-b\n"
        in config
    )
    assert "srvkey name peers rtmpedge_balancers" in config
    result = haproxy_check(haproxy_bin, config, tmp_path)
    assert result.returncode == 0, result.stderr


def test_stickiness_off_or_a_single_balancer_renders_no_peers():
    host = {"m0": {"rtmp_address": "127.0.0.1", "rtmp_port": 1935}}
    lone = render(host, inventory_hostname="lb-a", groups={"balancers": ["lb-a"]}, haproxy_stickiness_enabled=True)
    off = render(host, inventory_hostname="lb-a", groups={"balancers": list(PEERS)})
    for config in (lone, off):
        assert "peers" not in config and "localpeer" not in config


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("", "no address for peers"),
        ("lb-a.example", "is not an IP address"),
        ("0.0.0.0", "not one host's address"),  # noqa: S104 - a value refused, never bound
        ("8.8.8.8", "is public; peers listen on the private network only"),
        ("127.0.0.3", "used by another peer too"),
    ],
)
def test_a_peer_without_one_private_address_is_refused(address, message):
    hosts = {"lb-a": {"haproxy_peers_address": address}, "lb-b": {"haproxy_peers_address": "127.0.0.3"}}
    problems = rtmp_peers(list(hosts), hosts, 10000)["problems"]
    assert any(p.startswith("lb-a: ") and message in p for p in problems), problems


def test_a_peer_address_defaults_to_its_default_route_address():
    hosts = {
        "lb-a": {"ansible_facts": {"default_ipv4": {"address": "10.0.0.5"}}},
        "lb-b": {"haproxy_peers_address": "fd00::2"},
    }
    assert rtmp_peers(list(hosts), hosts, 10000) == {
        "peers": [{"name": "lb-a", "address": "10.0.0.5"}, {"name": "lb-b", "address": "fd00::2"}],
        "problems": [],
    }

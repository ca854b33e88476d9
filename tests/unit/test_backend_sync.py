"""module_utils.backend_sync against a real HAProxy master on loopback: runtime first, reload when needed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.rtmpedge.balancer.plugins.module_utils.apply_lock import LockBusy, locked
from ansible_collections.rtmpedge.balancer.plugins.module_utils.backend_sync import (
    SyncError,
    already_running,
    apply_config,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_config import replace_servers
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import (
    backend_state,
    run,
    sessions_by_worker,
    show_proc,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_service import ReloadError
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_settings import Settings
from ansible_collections.rtmpedge.balancer.plugins.modules.haproxy_backend_info import read_servers
from harness.loopback import Listener, haproxy_config, start_master
from loopback import free_port, wait_until


def _server(name, port, weight=10, maxconn=0, state="ready"):
    return {"name": name, "address": "127.0.0.1", "port": port, "weight": weight, "maxconn": maxconn, "state": state}


def _config(tmp_path: Path, front_port: int, timeout_server: str = "1m") -> str:
    return haproxy_config(tmp_path, front_port, timeout_server)


def _wait(predicate, seconds=10.0, what="condition"):
    wait_until(predicate, seconds, what)


@pytest.fixture
def balancer(haproxy_bin, tmp_path):
    """HAProxy (master-worker) on loopback in front of three listeners, with its config and settings."""
    media = [Listener() for _i in range(4)]
    front = free_port()
    template = _config(tmp_path, front)
    config = tmp_path / "haproxy.cfg"
    config.write_text(replace_servers(template, "rtmp_media", [_server(f"m{i}", media[i].port) for i in range(3)]))
    master = tmp_path / "master.sock"
    proc = start_master(haproxy_bin, config, master)
    settings = Settings(
        config_path=str(config),
        last_good_path=str(tmp_path / "haproxy.cfg.last-good"),
        admin_socket=str(tmp_path / "admin.sock"),
        master_socket=str(master),
        server_state_file=str(tmp_path / "server-state"),
        haproxy=haproxy_bin,
        lock_path=str(tmp_path / "lock"),
        config_group=None,
        reload_command=["kill", "-USR2", str(proc.pid)],
    )
    _wait(lambda: backend_state(settings.admin_socket, "rtmp_media"), what="the admin socket")
    _wait(lambda: show_proc(settings.master_socket)["workers"], what="the master CLI")
    try:
        yield {"settings": settings, "media": media, "front": front, "template": template, "proc": proc}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _candidate(balancer, servers, **kwargs):
    template = balancer["template"]
    if kwargs:
        template = _config(Path(balancer["settings"].config_path).parent, balancer["front"], **kwargs)
    return replace_servers(template, "rtmp_media", servers)


def _fleet(balancer, indexes, overrides=None):
    overrides = overrides or {}
    return [_server(f"m{i}", balancer["media"][i].port, **overrides.get(i, {})) for i in indexes]


def _connect(balancer):
    return socket.create_connection(("127.0.0.1", balancer["front"]))


def _one_stream_per_server(balancer, count):
    """One session on each of the first `count` servers. Each connection waits for the previous one
    to land (and every server to be UP): leastconn with several threads may place a burst of
    connections unevenly."""
    media = balancer["media"][:count]
    state = balancer["settings"].admin_socket
    _wait(
        lambda: all(s["status"] == "UP" for s in backend_state(state, "rtmp_media").values()),
        what="every server UP",
    )
    clients = []
    for placed in range(1, count + 1):
        clients.append(_connect(balancer))
        _wait(lambda n=placed: sum(len(m.peers) for m in media) == n, what=f"session {placed} on a media server")
    assert all(m.peers for m in media), f"leastconn left a server without a stream: {[len(m.peers) for m in media]}"
    return clients


def _worker(settings):
    return show_proc(settings.master_socket)["workers"][0]["pid"]


def test_a_new_server_is_added_at_runtime_and_kept_in_the_file(balancer):
    settings = balancer["settings"]
    worker = _worker(settings)
    candidate = _candidate(balancer, _fleet(balancer, [0, 1, 2, 3]))
    result = apply_config(candidate, settings, trust_current=True)
    assert result["changes"] == {"add": ["m3"]}
    assert not result["reloaded"]
    assert _worker(settings) == worker
    state = backend_state(settings.admin_socket, "rtmp_media")
    assert state["m3"]["state"] == "ready" and state["m3"]["weight"] == 10
    assert Path(settings.config_path).read_text() == candidate
    assert Path(settings.last_good_path).read_text() == candidate
    # Health checks run on the new server too, so it comes UP and takes streams.
    _wait(lambda: backend_state(settings.admin_socket, "rtmp_media")["m3"]["status"] == "UP", what="m3 UP")
    clients = [_connect(balancer) for _i in range(8)]
    _wait(lambda: len(balancer["media"][3].peers) > 0, what="a stream on m3")
    for client in clients:
        client.close()


def test_a_removed_server_drains_until_its_last_session_ends(balancer):
    settings = balancer["settings"]
    clients = _one_stream_per_server(balancer, 3)
    result = apply_config(_candidate(balancer, _fleet(balancer, [0, 1])), settings, trust_current=True)
    assert result["changes"] == {"drain": ["m2"]}
    assert result["lingering"] == {"m2": 1}
    assert backend_state(settings.admin_socket, "rtmp_media")["m2"]["state"] == "drain"
    assert "m2" not in Path(settings.config_path).read_text()
    # No new stream goes to the draining server, the old one stays up.
    more = [_connect(balancer) for _i in range(4)]
    others = [balancer["media"][i] for i in (0, 1)]
    _wait(lambda: sum(len(m.peers) for m in others) == 2 + 4, what="the four new sessions on m0 and m1")
    assert len(balancer["media"][2].peers) == 1
    assert sessions_by_worker(settings.master_socket, "rtmp_media")["m2"] == {_worker(settings): 1}
    # The next run leaves it alone while the stream lives, and removes it once it ended.
    again = apply_config(_candidate(balancer, _fleet(balancer, [0, 1])), settings, trust_current=True)
    assert (again["changes"], again["lingering"]) == ({}, {"m2": 1})
    for client in clients:  # the publishers hang up, the media server closes too
        client.close()
    for peer in balancer["media"][2].peers:
        peer.close()
    _wait(lambda: backend_state(settings.admin_socket, "rtmp_media")["m2"]["sessions"] == 0, what="m2 idle")
    final = apply_config(_candidate(balancer, _fleet(balancer, [0, 1])), settings, trust_current=True)
    assert final["changes"] == {"remove": ["m2"]}
    assert "m2" not in backend_state(settings.admin_socket, "rtmp_media")
    for client in more:
        client.close()


def test_weight_maxconn_address_and_maintenance_change_at_runtime(balancer):
    settings = balancer["settings"]
    worker = _worker(settings)
    fleet = _fleet(balancer, [0, 1, 2], {0: {"weight": 3}, 1: {"maxconn": 7}, 2: {"state": "maint"}})
    fleet[0]["port"] = balancer["media"][3].port  # m0 moves to another address
    result = apply_config(_candidate(balancer, fleet), settings, trust_current=True)
    assert not result["reloaded"] and _worker(settings) == worker
    assert result["changes"] == {"address": ["m0"], "weight": ["m0"], "maxconn": ["m1"], "state": ["m2"]}
    state = backend_state(settings.admin_socket, "rtmp_media")
    assert (state["m0"]["port"], state["m0"]["weight"]) == (balancer["media"][3].port, 3)
    assert state["m1"]["maxconn"] == 7
    assert state["m2"]["state"] == "maint"
    # Out of maintenance again once the file stops asking for it.
    back = apply_config(_candidate(balancer, _fleet(balancer, [0, 1, 2])), settings, trust_current=True)
    assert back["changes"]["state"] == ["m2"]
    assert backend_state(settings.admin_socket, "rtmp_media")["m2"]["state"] == "ready"


def test_an_operator_drain_is_left_alone(balancer):
    settings = balancer["settings"]
    apply_config(_candidate(balancer, _fleet(balancer, [0, 1, 2])), settings, trust_current=True)
    run(settings.admin_socket, "set server rtmp_media/m1 state drain")
    result = apply_config(_candidate(balancer, _fleet(balancer, [0, 1, 2, 3])), settings, trust_current=True)
    assert result["changes"] == {"add": ["m3"]}
    assert backend_state(settings.admin_socket, "rtmp_media")["m1"]["state"] == "drain"


def test_a_structural_change_reloads_and_streams_stay_on_the_old_worker(balancer):
    settings = balancer["settings"]
    client = _connect(balancer)
    _wait(lambda: any(m.peers for m in balancer["media"]), what="a session")
    old = _worker(settings)
    result = apply_config(
        _candidate(balancer, _fleet(balancer, [0, 1, 2]), timeout_server="2m"), settings, trust_current=True
    )
    assert result["reloaded"] and result["reason"] == "structural change"
    assert result["worker_pid"] != old and old in result["old_workers"]
    client.sendall(b"still here")  # the stream survived the reload
    client.close()


def test_no_change_changes_nothing(balancer):
    settings = balancer["settings"]
    current = Path(settings.config_path).read_text()
    result = apply_config(current, settings, trust_current=True)
    assert not result["changed"] and not result["reloaded"] and result["changes"] == {}


def test_a_requested_reload_of_an_unchanged_file_starts_a_new_worker(balancer):
    """After a package upgrade: a verified reload runs the new binary; the stream stays on the old worker."""
    settings = balancer["settings"]
    client = _connect(balancer)
    _wait(lambda: any(m.peers for m in balancer["media"]), what="a session")
    old = _worker(settings)
    current = Path(settings.config_path).read_text()
    result = apply_config(current, settings, trust_current=True, force_reload=True)
    assert result["reloaded"] and result["reason"] == "reload requested" and result["changes"] == {}
    assert result["worker_pid"] != old and old in result["old_workers"]
    assert Path(settings.config_path).read_text() == current
    client.sendall(b"still here")
    client.close()


@pytest.mark.parametrize(
    ("indexes", "cause"),
    [([], "no media servers"), ([0], "would shrink from 3 to 1")],
)
def test_an_empty_or_shrunken_fleet_changes_nothing(balancer, indexes, cause):
    settings = balancer["settings"]
    before = Path(settings.config_path).read_text()
    with pytest.raises(SyncError, match=cause):
        apply_config(_candidate(balancer, _fleet(balancer, indexes)), settings, trust_current=True)
    assert Path(settings.config_path).read_text() == before
    assert all(s["state"] == "ready" for s in backend_state(settings.admin_socket, "rtmp_media").values())


def test_an_intended_scale_in_is_allowed_explicitly(balancer):
    result = apply_config(
        _candidate(balancer, _fleet(balancer, [0])), balancer["settings"], allow_shrink=True, trust_current=True
    )
    assert sorted(result["changes"]["remove"]) == ["m1", "m2"]


def test_an_invalid_config_is_refused_and_the_file_kept(balancer):
    settings = balancer["settings"]
    before = Path(settings.config_path).read_text()
    broken = _candidate(balancer, _fleet(balancer, [0, 1, 2])).replace("balance leastconn", "balance nonsense")
    with pytest.raises(ReloadError, match="not a valid HAProxy configuration"):
        apply_config(broken, settings, trust_current=True)
    assert Path(settings.config_path).read_text() == before
    assert not Path(settings.config_path + ".rtmpedge-new").exists()


def test_a_runtime_change_validates_only_its_new_server_lines(balancer):
    settings = balancer["settings"]
    apply_config(_candidate(balancer, _fleet(balancer, [0, 1, 2])), settings, trust_current=True)
    before = Path(settings.config_path).read_text()
    running = backend_state(settings.admin_socket, "rtmp_media")
    added = _candidate(balancer, _fleet(balancer, [0, 1, 2, 3]))
    broken = added.replace(
        f"server m3 127.0.0.1:{balancer['media'][3].port} weight 10", "server m3 127.0.0.1:9 nokeyword"
    )
    assert broken != added
    with pytest.raises(ReloadError, match="nokeyword"):
        apply_config(broken, settings, trust_current=True)
    assert Path(settings.config_path).read_text() == before
    assert backend_state(settings.admin_socket, "rtmp_media").keys() == running.keys()
    assert not list(Path(settings.config_path).parent.glob("haproxy.cfg.rtmpedge-*"))
    # The same server, valid: added at runtime, the whole new file in place.
    assert apply_config(added, settings, trust_current=True)["changes"] == {"add": ["m3"]}
    assert Path(settings.config_path).read_text() == added


def test_a_reload_that_fails_puts_the_last_good_file_back(balancer):
    settings = balancer["settings"]
    apply_config(_candidate(balancer, _fleet(balancer, [0, 1, 2, 3])), settings, trust_current=True)
    good = Path(settings.config_path).read_text()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        # Valid for `haproxy -c`, but the port is taken: only the reload can fail.
        bad = good.replace(f":{balancer['front']}", f":{taken.getsockname()[1]}")
        with pytest.raises(ReloadError, match="could not load"):
            apply_config(bad, settings)
    assert Path(settings.config_path).read_text() == good
    assert Path(settings.last_good_path).read_text() == good


def test_two_runs_never_overlap(tmp_path):
    path = str(tmp_path / "lock")
    with locked(path, 1), pytest.raises(LockBusy, match="another reconcile run holds"), locked(path, 0.3):
        pass
    with locked(path, 0.3):
        pass  # free again


def test_the_master_reports_sessions_of_old_workers_too(balancer):
    settings = balancer["settings"]
    client = _connect(balancer)
    _wait(lambda: any(m.peers for m in balancer["media"]), what="a session")
    old = _worker(settings)
    os.kill(balancer["proc"].pid, signal.SIGUSR2)
    _wait(lambda: len(show_proc(settings.master_socket)["workers"]) == 2, what="a second worker")
    _wait(lambda: show_proc(settings.master_socket), what="the master CLI")
    counts = sessions_by_worker(settings.master_socket, "rtmp_media")
    assert sum(c.get(old, 0) for c in counts.values()) == 1
    client.close()


def test_a_refused_file_already_in_place_is_put_back(balancer):
    # What the role's template does: the new file is on disk before it is applied.
    settings = balancer["settings"]
    good = _candidate(balancer, _fleet(balancer, [0, 1, 2]))
    apply_config(good, settings, trust_current=True)
    shrunk = _candidate(balancer, _fleet(balancer, [0]))
    Path(settings.config_path).write_text(shrunk)
    with pytest.raises(SyncError, match="would shrink"):
        apply_config(shrunk, settings)
    assert Path(settings.config_path).read_text() == good


def test_backend_info_counts_sessions_in_old_and_new_workers(balancer):
    settings = balancer["settings"]
    params = {
        "admin_socket": settings.admin_socket,
        "master_socket": settings.master_socket,
        "backend": "rtmp_media",
        "name": None,
    }
    before = [_connect(balancer) for _i in range(3)]
    _wait(lambda: sum(len(m.peers) for m in balancer["media"][:3]) == 3, what="three sessions")
    old = _worker(settings)
    result = apply_config(_candidate(balancer, _fleet(balancer, [0, 1, 2]), timeout_server="2m"), settings)
    assert result["reloaded"]
    _wait(lambda: len(show_proc(settings.master_socket)["workers"]) == 2, what="old and new worker")
    after = [_connect(balancer) for _i in range(2)]
    _wait(lambda: sum(len(m.peers) for m in balancer["media"][:3]) == 5, what="five sessions")
    servers, workers = read_servers(params)
    assert [s["name"] for s in servers] == ["m0", "m1", "m2"]
    assert sum(s["sessions"] for s in servers) == 5
    per_worker: dict[str, int] = {}
    for server in servers:
        for pid, count in server["sessions_by_worker"].items():
            per_worker[pid] = per_worker.get(pid, 0) + count
    assert per_worker[str(old)] == 3, per_worker
    assert sum(per_worker.values()) == 5
    assert {w["pid"] for w in workers} >= {old}
    only = read_servers({**params, "name": "m1"})[0]
    assert [s["name"] for s in only] == ["m1"]
    for client in before + after:
        client.close()


def test_one_module_defaults_entry_points_every_haproxy_module_at_a_balancer(balancer, tmp_path):
    settings = balancer["settings"]
    playbook = tmp_path / "read.yml"
    playbook.write_text(
        f"""
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/rtmpedge.balancer.haproxy:
      admin_socket: {settings.admin_socket}
      master_socket: {settings.master_socket}
  tasks:
    - rtmpedge.balancer.haproxy_backend_info:
      register: backend
    - ansible.builtin.assert:
        that: backend.servers | map(attribute='name') | list == ['m0', 'm1', 'm2']
"""
    )
    run = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(playbook),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(Path(__file__).resolve().parents[2] / "ansible.cfg")},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def test_already_running_is_the_no_change_shortcut_and_nothing_more(balancer):
    settings = balancer["settings"]
    fleet = _fleet(balancer, [0, 1, 2])
    candidate = _candidate(balancer, fleet)
    assert not already_running(settings, candidate, fleet), "no last good configuration yet"
    apply_config(candidate, settings, trust_current=True)
    assert already_running(settings, candidate, fleet)
    # An operator's drain is left alone by the full path, so it is no change here either.
    run(settings.admin_socket, "set server rtmp_media/m1 state drain")
    assert already_running(settings, candidate, fleet)
    assert apply_config(candidate, settings, trust_current=True)["changes"] == {}
    # A weight changed at runtime by hand is a difference: the full path puts it back.
    run(settings.admin_socket, "set server rtmp_media/m0 weight 3")
    assert not already_running(settings, candidate, fleet)
    assert apply_config(candidate, settings, trust_current=True)["changes"] == {"weight": ["m0"]}
    assert already_running(settings, candidate, fleet)
    # A server the fleet no longer has (its departure needs the full path), one more, one other.
    assert not already_running(settings, candidate, fleet[:2])
    assert not already_running(settings, candidate, [*fleet, _server("m3", balancer["media"][3].port)])
    assert not already_running(settings, candidate, [*fleet[:2], {**fleet[2], "port": 1}])
    # The file differs from what HAProxy last applied.
    assert not already_running(settings, _candidate(balancer, fleet[:2]), fleet[:2])

"""module_utils.haproxy_runtime against a real HAProxy master on this machine (loopback only)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import (
    RuntimeAPIError,
    parse_show_proc,
    send_command,
    show_proc,
    wait_for_reload,
)
from loopback import free_port, wait_until

# Answers recorded from Debian's HAProxy 2.6 and 3.0.
SHOW_PROC_26 = """#<PID>          <type>          <reloads>       <uptime>        <version>
166             master          3 [failed: 1]   0d00h10m19s     2.6.12-1+deb12u3
# workers
222             worker          1               0d00h00m13s     2.6.12-1+deb12u3
# programs

"""
SHOW_PROC_30 = """#<PID>          <type>          <reloads>       <uptime>        <version>
224             master          2 [failed: 0]   0d00h10m09s     3.0.11-1+deb13u3
# workers
280             worker          0               0d00h00m01s     3.0.11-1+deb13u3
258             worker          1               0d00h05m01s     3.0.11-1+deb13u3
# programs
"""


def test_parse_show_proc_26():
    proc = parse_show_proc(SHOW_PROC_26)
    assert proc["master"] == {"pid": 166, "reloads": 3, "failed": 1}
    assert [(w["pid"], w["reloads"]) for w in proc["workers"]] == [(222, 1)]


def test_parse_show_proc_30_with_an_old_worker():
    proc = parse_show_proc(SHOW_PROC_30)
    assert proc["master"]["failed"] == 0
    assert [(w["pid"], w["reloads"]) for w in proc["workers"]] == [(280, 0), (258, 1)]


def test_parse_show_proc_rejects_other_answers():
    with pytest.raises(RuntimeAPIError, match="unexpected answer"):
        parse_show_proc("Unknown command: 'show proc'\n")


def test_unreachable_socket_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeAPIError, match="show info"):
        send_command(str(tmp_path / "absent.sock"), "show info")


def _wait_for(path, command):
    """HAProxy's answer to the command, once the socket listens."""
    return wait_until(lambda: send_command(str(path), command, timeout=1), what=f"{path} to answer {command!r}")


def _config(admin, bind_port: int) -> str:
    state_file = Path(str(admin)).with_name("server-state")
    return f"""global
    stats socket {admin} mode 600 level admin
    server-state-file {state_file}
defaults
    load-server-state-from-file global
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend f
    bind 127.0.0.1:{bind_port}
    default_backend b
backend b
    balance leastconn
    server s1 127.0.0.1:{free_port()} weight 10
"""


@pytest.fixture
def haproxy_master(haproxy_bin, tmp_path):
    """A master-worker HAProxy with a master CLI and an admin socket, on loopback."""
    master, admin = tmp_path / "master.sock", tmp_path / "admin.sock"
    config = tmp_path / "haproxy.cfg"
    config.write_text(_config(admin, free_port()))
    proc = subprocess.Popen([haproxy_bin, "-W", "-S", str(master), "-f", str(config)], stderr=subprocess.DEVNULL)
    try:
        _wait_for(master, "show proc")
        _wait_for(admin, "show info")
        yield proc, str(master), str(admin), config
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_reload_is_seen_with_its_new_worker(haproxy_master):
    proc, master, _admin, _config_path = haproxy_master
    before = show_proc(master)
    assert before["master"]["pid"] == proc.pid
    assert len(before["workers"]) == 1
    os.kill(proc.pid, signal.SIGUSR2)
    outcome, after = wait_for_reload(master, before, seconds=15)
    assert outcome == "reloaded", after
    assert after["workers"][0]["pid"] != before["workers"][0]["pid"]
    assert after["workers"][0]["reloads"] == 0


def test_a_reload_that_cannot_bind_is_seen_as_failed(haproxy_master):
    proc, master, admin, config_path = haproxy_master
    before = show_proc(master)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        # Valid for `haproxy -c`, but the port is in use: only the master notices.
        config_path.write_text(_config(admin, taken.getsockname()[1]))
        os.kill(proc.pid, signal.SIGUSR2)
        outcome, after = wait_for_reload(master, before, seconds=15)
    assert outcome == "failed", after
    assert [w["pid"] for w in after["workers"]] == [w["pid"] for w in before["workers"]]


def test_drain_and_weight_survive_a_reload_through_the_state_file(haproxy_master):
    # What the haproxy_reload module does: save `show servers state`, then reload.
    proc, master, admin, _config_path = haproxy_master
    send_command(admin, "set server b/s1 state drain")
    send_command(admin, "set weight b/s1 3")
    Path(admin).with_name("server-state").write_text(send_command(admin, "show servers state"))
    before = show_proc(master)
    os.kill(proc.pid, signal.SIGUSR2)
    outcome, _after = wait_for_reload(master, before, seconds=15)
    assert outcome == "reloaded"
    state = _wait_for(admin, "show servers state b")
    # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight ...
    fields = next(line.split() for line in state.splitlines() if " s1 " in line)
    assert int(fields[6]) & 0x08, f"not draining after the reload: admin state {fields[6]}"  # SRV_ADMF_FDRAIN
    assert fields[7] == "3"


def test_admin_socket_server_state(haproxy_master):
    _proc, _master, admin, _config_path = haproxy_master
    state = send_command(admin, "show servers state")
    assert state.startswith("1\n")
    assert " b " in state and " s1 " in state

"""The reconcile job's memo (module_utils/reconcile_memo.py) against a real HAProxy on loopback.

A run whose inputs did not change is settled by one `show servers state`; every input that
can change (the fleet, the discovery file, haproxy.cfg, its last good copy, the running
servers, the code) sends the run down the full path, which decides as it always did.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ansible_collections.rtmpedge.balancer.plugins.module_utils import reconcile, reconcile_memo
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import run, servers_state
from harness.loopback import JobBalancer, Listener

PLUGIN = "rtmpedge.balancer.media_servers"


class Fleet(JobBalancer):
    """A loopback balancer whose discovery is a static servers_file, as a large fleet lists it."""

    def __init__(self, tmp: Path, haproxy: str):
        self.media = [Listener() for _n in range(3)]
        self.servers = [
            {"name": f"m{i}", "address": "127.0.0.1", "port": m.port, "weight": 10, "maxconn": 0, "state": "ready"}
            for i, m in enumerate(self.media)
        ]
        super().__init__(tmp, haproxy, self.servers)
        self.servers_file = tmp / "fleet.json"
        self.set_fleet(self.servers)
        self.memo = Path(reconcile_memo.memo_path(str(tmp / "reconcile.lock")))

    def set_fleet(self, servers: list[dict], **config) -> None:
        self.servers_file.write_text(
            json.dumps([{k: s[k] for k in ("name", "address", "port", "weight", "state")} for s in servers])
        )
        source = {"type": "static", "servers_file": str(self.servers_file), **config}
        self.discovery.write_text(json.dumps({"plugin": PLUGIN, "sources": [source]}))


@pytest.fixture
def fleet(tmp_path, haproxy_bin):
    lb = Fleet(tmp_path, haproxy_bin)
    yield lb
    lb.close()


@pytest.fixture
def full_runs(monkeypatch):
    """Counts the runs that took the job's full path (discovery, candidate, apply); each still runs."""
    calls = []
    full_run = reconcile._full_run

    def counted(*args, **kwargs):
        calls.append(args)
        return full_run(*args, **kwargs)

    monkeypatch.setattr(reconcile, "_full_run", counted)
    return calls


def _job(lb: Fleet, capsys, *extra: str) -> str:
    code = reconcile.main(["--config", str(lb.job), *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _confirmed(lb: Fleet, capsys) -> None:
    """Runs until one confirms that HAProxy runs what discovery says (that run writes the memo)."""
    for _n in range(3):
        out = _job(lb, capsys)
        if lb.memo.exists():
            assert out.startswith("no change"), out
            return
    pytest.fail("three runs and no memo: a static fleet's confirmed run must write one")


def test_a_run_with_the_same_inputs_is_settled_without_discovering(fleet, capsys, full_runs):
    _confirmed(fleet, capsys)
    before = len(full_runs)
    assert _job(fleet, capsys).startswith("no change reload=no")
    assert len(full_runs) == before, "the memo did not settle a run whose inputs were unchanged"
    assert oct(fleet.memo.stat().st_mode & 0o777) == "0o600"


def test_a_changed_fleet_is_applied(fleet, capsys, full_runs):
    _confirmed(fleet, capsys)
    fleet.set_fleet([{**fleet.servers[0], "weight": 33}, *fleet.servers[1:]])
    assert "changed" in _job(fleet, capsys)
    assert servers_state(fleet.admin, "rtmp_media")["m0"]["weight"] == 33


def test_a_changed_discovery_file_takes_the_full_path(fleet, capsys, full_runs):
    _confirmed(fleet, capsys)
    before = len(full_runs)
    fleet.set_fleet(fleet.servers, name="renamed")
    _job(fleet, capsys)
    assert len(full_runs) == before + 1


@pytest.mark.parametrize("edited", ["config", "last_good"])
def test_a_hand_edit_of_either_file_is_never_hidden(fleet, capsys, full_runs, edited):
    _confirmed(fleet, capsys)
    path = fleet.config if edited == "config" else fleet.tmp / "haproxy.cfg.last-good"
    path.write_text(path.read_text().replace("timeout client 1m", "timeout client 2m"))
    before = len(full_runs)
    out = _job(fleet, capsys)
    assert len(full_runs) == before + 1, f"{edited} changed by hand, yet the memo settled the run: {out}"


def test_a_server_changed_at_runtime_is_put_back(fleet, capsys, full_runs):
    _confirmed(fleet, capsys)
    run(fleet.admin, "set server rtmp_media/m1 weight 2")
    assert "changed" in _job(fleet, capsys)
    assert servers_state(fleet.admin, "rtmp_media")["m1"]["weight"] == 10


def test_an_operator_s_drain_is_no_change_as_without_the_memo(fleet, capsys, full_runs):
    _confirmed(fleet, capsys)
    run(fleet.admin, "set server rtmp_media/m2 state drain")
    before = len(full_runs)
    assert _job(fleet, capsys).startswith("no change")
    assert len(full_runs) == before
    assert servers_state(fleet.admin, "rtmp_media")["m2"]["state"] == "drain", "the job undid the operator's drain"


def test_a_server_in_maintenance_brought_back_by_hand_goes_back(fleet, capsys, full_runs):
    fleet.set_fleet([*fleet.servers[:2], {**fleet.servers[2], "state": "maint"}])
    _confirmed(fleet, capsys)
    assert servers_state(fleet.admin, "rtmp_media")["m2"]["state"] == "maint"
    run(fleet.admin, "set server rtmp_media/m2 state ready")
    _job(fleet, capsys)
    assert servers_state(fleet.admin, "rtmp_media")["m2"]["state"] == "maint"


def test_a_dry_run_never_writes_the_memo(fleet, capsys):
    for _n in range(2):
        _job(fleet, capsys, "--dry-run")
    assert not fleet.memo.exists()


def test_a_source_that_asks_the_network_is_never_memoised():
    for source in ({"type": "http_json", "url": "http://127.0.0.1:1/x"}, {"type": "docker", "label": "a=b"}):
        config = {"plugin": PLUGIN, "sources": [{"type": "static", "servers": []}, source]}
        assert reconcile_memo.inputs_digest("settings", json.dumps(config).encode(), config) is None


def test_the_code_is_part_of_the_inputs(tmp_path, monkeypatch):
    copy = tmp_path / "module_utils"
    shutil.copytree(Path(reconcile_memo.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(reconcile_memo, "_HERE", str(copy))
    config = {"sources": [{"type": "static", "servers": []}]}
    raw = json.dumps(config).encode()
    first = reconcile_memo.inputs_digest("settings", raw, config)
    assert reconcile_memo.inputs_digest("settings", raw, config) == first
    assert reconcile_memo.inputs_digest("other settings", raw, config) != first
    media_server = copy / "media_server.py"
    media_server.write_text(media_server.read_text() + "\n# an upgrade\n")
    assert reconcile_memo.inputs_digest("settings", raw, config) != first, "an upgraded collection kept the memo"

"""The balancer tier on the lab (docs/balancer-tier.md): capacity-aware health, draining a
balancer, stickiness shared between lb1 and lb2, and a rolling package upgrade of both
under 20 live publishers.

Each test puts the lab back as it found it (the fault tests run after these).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest
import yaml
from conftest import (
    ROOT,
    address,
    health,
    lab,
    live_streams,
    publish,
    publisher_state,
    stop_publishers,
    wait_for,
)
from harness.containers import admin_command, dexec
from harness.loopback import free_port
from harness.wait import wait_until

LB1, LB2 = "rtmpedge-lb1", "rtmpedge-lb2"
MEDIA = [lab.media_name(i) for i in (1, 2, 3)]
ADMIN = "/run/haproxy/admin.sock"
LOCK = "/run/rtmpedge-reconcile.lock"  # the haproxy role's apply lock (module_utils/haproxy_settings.py)
HOLD = "rtmpedge-test-hold-lock"


def _admin(lb: str, command: str) -> str:
    return admin_command(lb, command, ADMIN)


def _health_body(client, lb: str) -> tuple[int, str]:
    return lab.http_get(client, lb, 8000, "/")


def _playbook(playbook: str, *extra: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false"}
    env.update(env_extra or {})
    argv = [str(ROOT / ".venv/bin/ansible-playbook"), "-i", "inventories/lab", playbook, *extra]
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, check=False)


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    return result.stdout


@contextlib.contextmanager
def _reconcile_paused(*balancers: str):
    """Hold the apply lock on the balancers: the reconcile job (cron, every minute) waits, then skips its run.

    Runtime states the test sets are not the job's business anyway; this keeps the test independent of that.
    """
    for lb in balancers:
        dexec(lb, f"systemd-run --unit {HOLD} flock {LOCK} sleep infinity")
        wait_for(
            lambda lb=lb: dexec(lb, f"flock -n {LOCK} true", check=False).returncode != 0,
            120,
            f"the test holding the apply lock on {lb}",
        )
    try:
        yield
    finally:
        for lb in balancers:
            dexec(lb, f"systemctl stop {HOLD}", check=False)


def _stream_on(client, key: str) -> str:
    """The media server that carries the stream, once it is there."""
    wait_for(lambda: key in live_streams(client), 60, f"stream {key} on a media server")
    return live_streams(client)[key][0]


def test_a_full_balancer_answers_503_and_a_freed_slot_brings_200(docker_client):
    """One stream slot per media server (maxconn 1, the design's Fargate tasks), filled by real publishers."""
    with _reconcile_paused(LB1):
        for server in MEDIA:
            _admin(LB1, f"set maxconn server rtmp_media/{server} 1")
        keys = [f"slot-{n}" for n in range(len(MEDIA))]
        try:
            assert _health_body(docker_client, LB1) == (200, "3 media servers up, 3 free stream slots\n")
            for key in keys:
                publish(docker_client, LB1, key)
                _stream_on(docker_client, key)
            wait_for(lambda: _health_body(docker_client, LB1)[0] == 503, 30, "503 with every slot taken")
            assert _health_body(docker_client, LB1) == (503, "3 media servers up, 0 free stream slots, 1 needed\n")
            assert health(docker_client, LB2) == 200, "lb2 has no such limit and must stay in"
            ended = stop_publishers(docker_client, keys[0])[keys[0]]
            assert ended["state"] == "stopped", ended
            wait_for(lambda: _health_body(docker_client, LB1)[0] == 200, 30, "200 once a slot is free")
            assert _health_body(docker_client, LB1) == (200, "3 media servers up, 1 free stream slots\n")
        finally:
            stop_publishers(docker_client, *keys)
            for server in MEDIA:
                _admin(LB1, f"set maxconn server rtmp_media/{server} 50")  # the lab discovery's maxconn


def test_draining_a_balancer_waits_for_its_streams_reports_them_and_undrains(docker_client):
    drain = ("playbooks/drain_balancer.yml", "-e", f"balancer={LB1}", "-e", "balancer_drain_dns_wait=0")
    publish(docker_client, LB1, "drain-me")
    server = _stream_on(docker_client, "drain-me")
    try:
        short = _playbook(*drain, "-e", "balancer_drain_timeout=4", "-e", "balancer_drain_poll_interval=1")
        assert short.returncode != 0, "the drain did not report the stream left at its deadline"
        assert f"still carries 1 streams after 4 s (by media server: {server}: 1)" in short.stdout, short.stdout[-3000:]
        assert _health_body(docker_client, LB1) == (503, "balancer drained on purpose\n")
        assert publisher_state(docker_client, "drain-me") == "running", "draining cut the stream"
        done: dict = {}
        waiting = threading.Thread(
            target=lambda: done.update(result=_playbook(*drain, "-e", "balancer_drain_poll_interval=1"))
        )
        waiting.start()
        ended = stop_publishers(docker_client, "drain-me")["drain-me"]
        assert ended["state"] == "stopped", f"the drained balancer cut the stream: {ended}"
        waiting.join(timeout=300)
        assert "is out of the tier and carries no stream" in _ok(done["result"])
        # Still out after a reload (the flag is a file too): the reconcile playbook forces none, so reload by hand.
        dexec(LB1, "systemctl reload haproxy")
        wait_for(lambda: len(lab.workers(docker_client.containers.get(LB1))) >= 1, 30, "the reloaded worker")
        assert _health_body(docker_client, LB1)[0] == 503
    finally:
        stop_publishers(docker_client, "drain-me")
        _ok(_playbook(*drain, "-e", "balancer_drain_state=active"))
    wait_for(lambda: health(docker_client, LB1) == 200, 30, "lb1 back in the tier")


@pytest.fixture
def stickiness_shared():
    """Both balancers with source stickiness and peers for the test, then as the lab has them."""
    _ok(_playbook("site.yml", "--limit", "balancers", "-e", "haproxy_stickiness_enabled=true"))
    try:
        yield
    finally:
        _ok(_playbook("site.yml", "--limit", "balancers"))


def test_a_publisher_reaches_the_same_media_server_through_either_balancer(docker_client, stickiness_shared):
    """lb1 may only pick the round's server; on lb2 that server is drained, so only the shared entry leads there."""
    client_ip = address(docker_client, lab.CLIENT, lab.PUBLIC)
    for lb in (LB1, LB2):
        wait_for(lambda lb=lb: "last_status=ESTA" in _admin(lb, "show peers"), 60, f"{lb}'s peers session")
    same = 0
    with _reconcile_paused(LB1, LB2):
        try:
            for n in range(10):
                target = MEDIA[n % 3]
                for lb in (LB1, LB2):
                    _admin(lb, "clear table rtmp_media")
                for server in MEDIA:
                    _admin(LB1, f"set server rtmp_media/{server} state {'ready' if server == target else 'drain'}")
                    _admin(LB2, f"set server rtmp_media/{server} state {'drain' if server == target else 'ready'}")
                publish(docker_client, LB1, f"sticky-{n}-lb1")
                first = _stream_on(docker_client, f"sticky-{n}-lb1")
                stop_publishers(docker_client, f"sticky-{n}-lb1")
                assert first == target
                wait_for(
                    lambda: f"key=::ffff:{client_ip} " in _admin(LB2, "show table rtmp_media"),
                    30,
                    "lb2 learning the client's entry from lb1",
                )
                publish(docker_client, LB2, f"sticky-{n}-lb2")
                second = _stream_on(docker_client, f"sticky-{n}-lb2")
                stop_publishers(docker_client, f"sticky-{n}-lb2")
                same += second == first
        finally:
            for lb in (LB1, LB2):
                for server in MEDIA:
                    _admin(lb, f"set server rtmp_media/{server} state ready")
    assert same == 10, f"only {same} of 10 publishes through lb2 reached the server they used through lb1"


def _versions(lb: str, suite: str) -> dict[str, str]:
    """The installed haproxy version, and the release's own (`<suite>/main`, before security updates)."""
    policy = dexec(lb, "apt-cache policy haproxy").stdout
    installed = policy.split("Installed:")[1].split()[0]
    base, version = installed, None
    for line in policy.split("Version table:")[1].splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "***" or not words[0].isdigit():
            version = words[1] if words[0] == "***" else words[0]
        elif len(words) > 2 and words[2] == f"{suite}/main":
            base = version
    return {"installed": installed, "base": base}


def _security_archive() -> str:
    """The machine's own Debian security archive (never a host written into the repo)."""
    found = subprocess.run(
        [sys.executable, str(ROOT / "scripts/debian_mirror.py"), "--security"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    return found.stdout.strip()


def _suite(lb: str) -> str:
    return dexec(lb, ". /etc/os-release && echo $VERSION_CODENAME").stdout.strip()


@pytest.fixture
def older_haproxy(docker_client):
    """Each balancer runs its release's original HAProxy, with the security archive (the newer one) configured."""
    base = {}
    for lb in (LB1, LB2):
        suite = _suite(lb)
        source = f"deb {_security_archive()} {suite}-security main"
        dexec(lb, f"echo '{source}' > /etc/apt/sources.list.d/security.list")
        dexec(lb, "apt-get update -qq")
        versions = _versions(lb, suite)
        if versions["installed"] != versions["base"]:
            # Left upgraded by an earlier run: go back before any stream starts (a restart cuts nothing yet).
            dexec(
                lb,
                "apt-get install -y -qq --allow-downgrades -o Dpkg::Options::=--force-confold "
                f"haproxy={versions['base']} && systemctl restart haproxy",
            )
        wait_for(lambda lb=lb: health(docker_client, lb) == 200, 60, f"{lb} serving")
        base[lb] = versions["base"]
    return base


def test_a_rolling_package_upgrade_of_both_balancers_cuts_no_stream(docker_client, older_haproxy, tmp_path):
    keys = {f"roll-{lb.removeprefix('rtmpedge-')}-{n}": lb for lb in (LB1, LB2) for n in range(10)}
    for key, lb in keys.items():
        publish(docker_client, lb, key)
    wait_for(lambda: set(keys) <= set(live_streams(docker_client)), 120, "20 streams on the media servers")
    before = {lb: lab.workers(docker_client.containers.get(lb)) for lb in (LB1, LB2)}
    # Publishers' address of each balancer, for the playbook's handshake check from the controller.
    public = {lb: {"balancer_dns_ipv4": address(docker_client, lb, lab.PUBLIC)} for lb in (LB1, LB2)}
    extra_inventory = tmp_path / "public.yml"
    extra_inventory.write_text(yaml.safe_dump({"balancers": {"hosts": public}}))
    try:
        out = _ok(
            _playbook(
                "playbooks/balancer_rolling.yml",
                "-i",
                str(extra_inventory),
                "-e",
                "balancer_drain_dns_wait=0",
                "-e",
                "balancer_drain_timeout=5",
                "-e",
                "balancer_drain_poll_interval=1",
            )
        )
        for lb in (LB1, LB2):
            installed = _versions(lb, _suite(lb))["installed"]
            assert installed != older_haproxy[lb], f"{lb} was not upgraded: {out[-3000:]}"
            assert f"{lb}: HAProxy version {older_haproxy[lb]}" in out and f"-> HAProxy {installed} running" in out
            after = lab.workers(docker_client.containers.get(lb))
            assert set(before[lb]) <= set(after), (
                f"{lb}: an old worker carrying streams is gone ({before[lb]} -> {after})"
            )
            assert health(docker_client, lb) == 200
        cut = {k: s for k in keys if (s := publisher_state(docker_client, k)) != "running"}
        assert not cut, f"streams cut by the upgrade: {cut}"
    finally:
        ended = stop_publishers(docker_client, *keys)
    assert all(e["state"] == "stopped" for e in ended.values()), {
        k: e for k, e in ended.items() if e["state"] != "stopped"
    }


def test_a_forced_restart_waits_for_the_drained_balancer_s_streams(docker_client):
    """balancer_rolling with a restart: a stream that outlasts the deadline stops the roll before any restart."""
    roll = ("playbooks/balancer_rolling.yml", "--limit", LB1, "-e", "balancer_rolling_restart=true")
    roll += ("-e", "balancer_rolling_upgrade=false", "-e", "balancer_rolling_probe=false")
    roll += ("-e", "balancer_drain_dns_wait=0", "-e", "balancer_drain_poll_interval=1")
    master = dexec(LB1, "systemctl show -p MainPID --value haproxy").stdout.strip()
    publish(docker_client, LB1, "outlasts")
    server = _stream_on(docker_client, "outlasts")
    try:
        refused = _playbook(*roll, "-e", "balancer_drain_timeout=4")
        assert refused.returncode != 0 and f"(by media server: {server}: 1)" in refused.stdout, refused.stdout[-3000:]
        assert dexec(LB1, "systemctl show -p MainPID --value haproxy").stdout.strip() == master, "restarted anyway"
        assert publisher_state(docker_client, "outlasts") == "running", "the stream was cut"
        ended = stop_publishers(docker_client, "outlasts")["outlasts"]
        assert ended["state"] == "stopped", ended
        _ok(_playbook(*roll, "-e", "balancer_drain_timeout=60"))
        assert dexec(LB1, "systemctl show -p MainPID --value haproxy").stdout.strip() != master, "no restart"
        assert health(docker_client, LB1) == 200, "lb1 was not put back"
    finally:
        stop_publishers(docker_client, "outlasts")
        _playbook("playbooks/drain_balancer.yml", "-e", f"balancer={LB1}", "-e", "balancer_drain_state=active")


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}


@pytest.fixture
def route53(tmp_path):
    """A moto server on loopback as Route 53, a hosted zone, and the lab balancers' records in it."""
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    api = boto3.client(
        "route53",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        wait_until(lambda: api.list_hosted_zones() is not None, 30, "the moto server", retry_on=(Exception,))
        zone_id = api.create_hosted_zone(Name="lab.rtmp.test.", CallerReference="lab")["HostedZone"]["Id"]
        # Documentation addresses: moto checks nothing, and no health check traffic leaves the machine.
        public = {LB1: {"balancer_dns_ipv4": "192.0.2.1"}, LB2: {"balancer_dns_ipv4": "192.0.2.2"}}
        inventory = tmp_path / "dns.yml"
        inventory.write_text(yaml.safe_dump({"balancers": {"hosts": public}}))
        dns = (
            "-i",
            str(inventory),
            "-e",
            "balancer_dns_record=ingest.lab.rtmp.test",
            "-e",
            "balancer_dns_zone=lab.rtmp.test",
        )
        dns += ("-e", f"balancer_dns_aws_endpoint_url={url}")
        _ok(_playbook("playbooks/balancer_dns.yml", *dns, env_extra=AWS_ENV))

        def weights() -> dict[str, int]:
            listed = api.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
            return {r["SetIdentifier"]: r["Weight"] for r in listed if "SetIdentifier" in r}

        yield dns, weights
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_draining_with_route53_sets_weight_zero_and_refuses_to_drain_the_last_one(docker_client, route53):
    dns, weights = route53
    drain = (
        "playbooks/drain_balancer.yml",
        *dns,
        "-e",
        "balancer_drain_route53=true",
        "-e",
        "balancer_drain_dns_wait=0",
    )
    assert weights() == {LB1: 100, LB2: 100}
    try:
        _ok(_playbook(*drain, "-e", f"balancer={LB1}", env_extra=AWS_ENV))
        assert weights() == {LB1: 0, LB2: 100}
        assert _health_body(docker_client, LB1) == (503, "balancer drained on purpose\n")
        _ok(_playbook("playbooks/balancer_dns.yml", *dns, env_extra=AWS_ENV))
        assert weights() == {LB1: 0, LB2: 100}, "a plain balancer_dns run put the drained balancer back"
        last = _playbook(*drain, "-e", f"balancer={LB2}", env_extra=AWS_ENV)
        assert last.returncode != 0 and "add up to 0" in last.stdout, last.stdout[-3000:]
        assert weights() == {LB1: 0, LB2: 100} and health(docker_client, LB2) == 200, (
            "a refused drain changed something"
        )
        _ok(_playbook(*drain, "-e", f"balancer={LB1}", "-e", "balancer_drain_state=active", env_extra=AWS_ENV))
        assert weights() == {LB1: 100, LB2: 100}
        assert health(docker_client, LB1) == 200
    finally:
        for lb in (LB1, LB2):
            _playbook("playbooks/drain_balancer.yml", "-e", f"balancer={lb}", "-e", "balancer_drain_state=active")

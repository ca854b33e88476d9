"""A converged balancer: HAProxy from Debian, master-worker under systemd, the rendered listeners."""

import json

from conftest import DEBIAN_HAPROXY_BRANCH


def test_haproxy_is_the_distribution_branch(host, debian_major):
    package = host.package("haproxy")
    assert package.is_installed
    assert package.version.startswith(DEBIAN_HAPROXY_BRANCH[debian_major] + ".")


def test_haproxy_service_enabled_and_running(host):
    service = host.service("haproxy")
    assert service.is_enabled
    assert service.is_running


def test_haproxy_runs_master_worker(host):
    master_pid = host.run("systemctl show -p MainPID --value haproxy").stdout.strip()
    cmdline = host.file(f"/proc/{master_pid}/cmdline").content_string.split("\0")
    assert "-Ws" in cmdline, cmdline
    workers = host.run(f"pgrep -P {master_pid} -x haproxy").stdout.split()
    assert len(workers) >= 1, "the master has no worker"


def test_rendered_config_is_ours_and_valid(host):
    config = host.file("/etc/haproxy/haproxy.cfg")
    assert config.contains("frontend rtmp_ingest")
    assert config.mode == 0o640
    assert host.run("haproxy -c -f /etc/haproxy/haproxy.cfg").rc == 0


def test_listeners(host):
    for spec in ("tcp://0.0.0.0:1935", "tcp://0.0.0.0:80", "tcp://0.0.0.0:8000", "tcp://127.0.0.1:8404"):
        assert host.socket(spec).is_listening, spec
    assert not host.socket("tcp://0.0.0.0:8404").is_listening


def _http_status(host, url):
    script = (
        "import json, sys, urllib.request, urllib.error\n"
        "try:\n r = urllib.request.urlopen(sys.argv[1], timeout=5); print(json.dumps([r.status, r.read().decode()]))\n"
        "except urllib.error.HTTPError as e:\n print(json.dumps([e.code, e.read().decode()]))\n"
    )
    result = host.run(f"python3 -c '{script}' {url}")
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def test_health_endpoint_is_503_without_media_servers(host):
    status, body = _http_status(host, "http://127.0.0.1:8000/")
    assert status == 503
    assert "0 media servers up" in body


def test_stats_and_metrics_on_the_management_bind(host):
    assert _http_status(host, "http://127.0.0.1:8404/stats")[0] == 200
    status, body = _http_status(host, "http://127.0.0.1:8404/metrics")
    assert status == 200
    assert "haproxy_process_" in body


def test_the_balancer_s_own_metrics_through_the_management_bind(host):
    service = host.service("rtmpedge-metrics")
    assert service.is_enabled and service.is_running
    assert host.socket("tcp://127.0.0.1:8405").is_listening
    assert not host.socket("tcp://0.0.0.0:8405").is_listening
    status, body = _http_status(host, "http://127.0.0.1:8404/rtmpedge/metrics")
    assert status == 200
    metrics = dict(line.rsplit(" ", 1) for line in body.splitlines() if line and not line.startswith("#"))
    assert metrics["rtmpedge_haproxy_master_up"] == "1", body
    assert metrics["rtmpedge_haproxy_workers"] == "1", body
    assert metrics["rtmpedge_haproxy_config_stale"] == "0", body
    # No media servers here: the health endpoint says 503, and not because of a drain.
    assert metrics['rtmpedge_health_up{proxy="rtmp_media"}'] == "0", body
    assert metrics['rtmpedge_health_drained{proxy="rtmp_media"}'] == "0", body


def test_admin_socket_is_not_world_accessible(host):
    socket_file = host.file("/run/haproxy/admin.sock")
    assert socket_file.is_socket
    assert socket_file.mode & 0o007 == 0
    assert socket_file.group == "haproxy"


def test_service_runs_in_the_sandbox(host):
    shown = host.run(
        "systemctl show haproxy -p ProtectSystem -p NoNewPrivileges -p PrivateTmp -p ProtectHome "
        "-p CapabilityBoundingSet -p LimitNOFILE"
    ).stdout
    for setting in ("ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectHome=yes"):
        assert setting in shown, shown
    bounding = next(line for line in shown.splitlines() if line.startswith("CapabilityBoundingSet="))
    assert "cap_sys_admin" not in bounding
    assert "cap_net_bind_service" in bounding
    # The hard limit is the smaller of the unit's 1048576 and what the container allows.
    assert int(next(line for line in shown.splitlines() if line.startswith("LimitNOFILE=")).split("=")[1]) >= 20000


def test_admin_socket_is_for_root_and_the_haproxy_group_only(host):
    socket_file = host.file("/run/haproxy/admin.sock")
    assert socket_file.is_socket
    assert socket_file.mode == 0o660
    assert socket_file.group == "haproxy"


def test_publisher_lists_are_in_place_and_private(host):
    for name in ("publishers-allow.acl", "publishers-deny.acl"):
        acl = host.file(f"/etc/haproxy/{name}")
        assert acl.exists
        assert acl.mode == 0o640
        assert acl.group == "haproxy"

"""The haproxy role's template, rendered with representative variables and checked by `haproxy -c`."""

from __future__ import annotations

import re
import subprocess

import pytest
from haproxy_render import haproxy_check, render

FLEET = {
    "media1": {"rtmp_address": "10.20.0.11"},
    "media2": {"rtmp_address": "10.20.0.12", "rtmp_port": 1936, "rtmp_weight": 20, "rtmp_maxconn": 200},
    "media3": {"rtmp_address": "10.20.0.13", "rtmp_state": "drain"},
    "media4": {"rtmp_address": "10.20.0.14", "rtmp_state": "maint"},
}


def _section(config: str, header: str) -> str:
    """The lines of one section (from its header to the next blank line)."""
    match = re.search(rf"^{re.escape(header)}\n(.*?)(?:\n\n|\Z)", config, re.S | re.M)
    assert match, f"no section {header!r} in:\n{config}"
    return match.group(1)


@pytest.fixture
def self_signed_pem(tmp_path):
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ingest.test"),
            *("-keyout", str(key), "-out", str(crt)),
        ],
        check=True,
        capture_output=True,
    )
    pem = tmp_path / "rtmps.pem"
    pem.write_text(crt.read_text() + key.read_text())
    return pem


SHA512_CRYPT = "$6$saltsalt$As4wrv0kZlfch1du9WeH7qhskyLriQWySXrZzynnvi46nFnNxjdpl6ksRegrrKexvhIa/Iny8S8uF3fVWTMuC1"

VARIANTS = {
    "defaults": {},
    "transparent": {"haproxy_client_ip_mode": "transparent"},
    "proxy_protocol": {"haproxy_client_ip_mode": "proxy_protocol"},
    "proxy_protocol_v2": {"haproxy_client_ip_mode": "proxy_protocol", "haproxy_proxy_protocol_version": 2},
    "tcp_checks_roundrobin_sticky": {
        "haproxy_health_check": "tcp",
        "haproxy_balance_algorithm": "roundrobin",
        "haproxy_stickiness_enabled": True,
        "haproxy_stickiness_expire": "2h",
    },
    "management_auth_plain": {"haproxy_management_user": "ops", "haproxy_management_password": "s3cret"},
    "management_auth_hash": {
        "haproxy_management_user": "ops",
        # openssl passwd -6 -salt saltsalt s3cret
        "haproxy_management_password": SHA512_CRYPT,
    },
    "no_health_no_management": {"haproxy_health_enabled": False, "haproxy_management_enabled": False},
    "extra_lines": {
        "haproxy_global_extra_lines": ["tune.bufsize 32768"],
        "haproxy_defaults_extra_lines": ["timeout check 3s"],
        "haproxy_frontend_extra_lines": ["tcp-request connection reject if { src 192.0.2.0/24 }"],
        "haproxy_backend_extra_lines": ["retries 2"],
    },
    "custom_binds_and_limits": {
        "haproxy_rtmp_binds": [
            {"address": "127.0.0.1", "port": 19350},
            {"address": "::", "port": 1935, "options": "v6only"},
        ],
        "haproxy_frontend_maxconn": 5000,
        "haproxy_global_maxconn": 6000,
        "haproxy_hard_stop_after": "",
        "haproxy_mworker_max_reloads": 0,
    },
}


@pytest.mark.parametrize("overrides", VARIANTS.values(), ids=VARIANTS.keys())
def test_rendered_config_passes_haproxy_check(overrides, haproxy_bin, tmp_path):
    result = haproxy_check(haproxy_bin, render(FLEET, **overrides), tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout


def test_rtmps_config_with_certificate_passes_haproxy_check(haproxy_bin, tmp_path, self_signed_pem):
    config = render(
        FLEET, haproxy_rtmps_enabled=True, haproxy_rtmps_certificate="x", _haproxy_certificate_path=str(self_signed_pem)
    )
    assert f"bind *:443 ssl crt {self_signed_pem}" in _section(config, "frontend rtmp_ingest")
    result = haproxy_check(haproxy_bin, config, tmp_path)
    assert result.returncode == 0, result.stderr


def test_broken_raw_line_fails_haproxy_check(haproxy_bin, tmp_path):
    result = haproxy_check(haproxy_bin, render(FLEET, haproxy_backend_extra_lines=["bogus-keyword 1"]), tmp_path)
    assert result.returncode != 0
    assert "bogus-keyword" in result.stderr + result.stdout


def test_default_frontends_bind_1935_and_80_in_tcp_mode():
    config = render(FLEET)
    frontend = _section(config, "frontend rtmp_ingest")
    assert "bind *:1935" in frontend and "bind *:80" in frontend
    assert "mode tcp" in _section(config, "defaults")
    assert "option tcplog" in _section(config, "defaults")
    assert "default_backend rtmp_media" in frontend


def test_server_lines_follow_the_inventory_contract():
    backend = _section(render(FLEET), "backend rtmp_media")
    assert "balance leastconn" in backend
    assert "    server media1 10.20.0.11:1935 weight 10\n" in backend + "\n"
    assert "server media2 10.20.0.12:1936 weight 20 maxconn 200" in backend
    assert "server media3 10.20.0.13:1935 weight 0" in backend  # drain: no new streams
    assert "server media4 10.20.0.14:1935 weight 10 disabled" in backend  # maint


def test_rtmp_handshake_check_sends_c0_and_a_full_c1():
    backend = _section(render(FLEET), "backend rtmp_media")
    sent = re.findall(r"tcp-check send-binary ([0-9a-f]+)", backend)
    assert sent[0] == "03"
    assert sum(len(chunk) // 2 for chunk in sent[1:]) == 1536
    assert all(len(line) < 2048 for line in backend.splitlines())
    assert "tcp-check expect binary 03" in backend
    assert "default-server check inter 2s fall 3 rise 2" in backend


def test_tcp_check_mode_has_no_handshake():
    backend = _section(render(FLEET, haproxy_health_check="tcp", haproxy_check_inter="5s"), "backend rtmp_media")
    assert "tcp-check" not in backend
    assert "default-server check inter 5s fall 3 rise 2" in backend


def test_transparent_mode_on_26_does_not_switch_uid():
    # HAProxy 2.6 refuses usesrc when the configuration switches uid: systemd starts it unprivileged instead.
    config = render(FLEET, haproxy_client_ip_mode="transparent")
    assert "source 0.0.0.0 usesrc clientip" in _section(config, "backend rtmp_media")
    global_section = _section(config, "global")
    assert "user haproxy" not in global_section and "chroot" not in global_section
    assert "setcap" not in global_section


def test_transparent_mode_on_30_keeps_cap_net_admin_across_the_uid_switch():
    global_section = _section(render(FLEET, haproxy_client_ip_mode="transparent", debian="13"), "global")
    assert "user haproxy" in global_section
    assert "setcap cap_net_admin" in global_section


def test_other_modes_switch_uid_without_capabilities():
    for debian in ("12", "13"):
        global_section = _section(render(FLEET, debian=debian), "global")
        assert "user haproxy" in global_section and "chroot /var/lib/haproxy" in global_section
        assert "setcap" not in global_section


def test_proxy_protocol_mode_sends_v1_by_default_on_streams_and_checks():
    config = render(FLEET, haproxy_client_ip_mode="proxy_protocol")
    assert "default-server check inter 2s fall 3 rise 2 send-proxy check-send-proxy" in config
    v2 = render(FLEET, haproxy_client_ip_mode="proxy_protocol", haproxy_proxy_protocol_version=2)
    assert "default-server check inter 2s fall 3 rise 2 send-proxy-v2 check-send-proxy" in v2
    assert "usesrc" not in config
    assert "user haproxy" in _section(config, "global")


def test_none_mode_neither_spoofs_nor_sends_proxy():
    config = render(FLEET)
    assert "usesrc" not in config and "send-proxy" not in config


def test_reload_settings_and_server_state():
    global_section = _section(render(FLEET), "global")
    assert "hard-stop-after 12h" in global_section
    assert "mworker-max-reloads 50" in global_section
    assert "server-state-file /var/lib/haproxy/server-state" in global_section
    assert "stats socket /run/haproxy/admin.sock mode 660 group haproxy level admin" in global_section


def test_maxconn_derived_from_the_fleet_unless_set():
    # Twice the fleet: media2 has 200, three servers without a limit count 200 each.
    config = render(FLEET)
    assert "maxconn 1600" in _section(config, "frontend rtmp_ingest")
    assert "maxconn 2112" in _section(config, "global")
    small = render({"m": {"rtmp_address": "10.0.0.1", "rtmp_maxconn": 1}})
    assert "maxconn 1024" in _section(small, "frontend rtmp_ingest")
    set_config = render(FLEET, haproxy_frontend_maxconn=5000, haproxy_global_maxconn=6000)
    assert "maxconn 5000" in _section(set_config, "frontend rtmp_ingest")
    assert "maxconn 6000" in _section(set_config, "global")


def test_stickiness_on_source_ip():
    backend = _section(
        render(FLEET, haproxy_stickiness_enabled=True, haproxy_stickiness_expire="2h"), "backend rtmp_media"
    )
    assert "stick-table type ipv6 size 1m expire 2h srvkey name" in backend
    assert "stick on src" in backend


def test_health_endpoint_counts_servers_up():
    health = _section(render(FLEET, haproxy_health_min_servers=2), "frontend rtmp_health")
    assert "bind *:8000" in health
    assert "http-request return status 200" in health and "nbsrv(rtmp_media) ge 2" in health
    assert "http-request return status 503" in health
    assert "be_conn_free(rtmp_media) ge 1" in health  # a full balancer answers 503 too
    servers_only = _section(render(FLEET, haproxy_health_min_free_slots=0), "frontend rtmp_health")
    assert "be_conn_free" not in servers_only and "nbsrv(rtmp_media) ge 1" in servers_only


def test_management_listener_localhost_with_optional_auth():
    config = render(FLEET)
    management = _section(config, "frontend rtmp_management")
    assert "bind 127.0.0.1:8404" in management
    assert "prometheus-exporter" in management and "stats uri /stats" in management
    assert "http-request auth" not in management and "userlist" not in config
    with_auth = render(FLEET, haproxy_management_user="ops", haproxy_management_password="s3cret")
    assert "user ops insecure-password s3cret" in with_auth
    assert "http-request auth realm rtmpedge unless { http_auth(rtmpedge_management) }" in with_auth
    hashed = render(FLEET, haproxy_management_user="ops", haproxy_management_password="$6$abc$def")
    assert "user ops password $6$abc$def" in hashed


def test_management_and_stats_never_on_the_rtmp_frontend():
    frontend = _section(render(FLEET), "frontend rtmp_ingest")
    assert "stats" not in frontend and "prometheus" not in frontend


def test_extra_lines_land_in_their_sections():
    config = render(FLEET, **VARIANTS["extra_lines"])
    assert "tune.bufsize 32768" in _section(config, "global")
    assert "timeout check 3s" in _section(config, "defaults")
    assert "reject if { src 192.0.2.0/24 }" in _section(config, "frontend rtmp_ingest")
    assert "retries 2" in _section(config, "backend rtmp_media")


def test_empty_backend_renders_and_checks(haproxy_bin, tmp_path):
    config = render({})
    assert not re.search(r"^\s+server ", _section(config, "backend rtmp_media"), re.M)
    assert haproxy_check(haproxy_bin, config, tmp_path).returncode == 0

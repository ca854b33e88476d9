"""The haproxy role's preflight, run for real by ansible-playbook on this machine (local connection).

Only the preflight tag runs: nothing is installed or changed here. Each bad input
must stop the play with a message naming the cause.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GOOD_MEDIA = {"media1": {"rtmp_address": "10.30.0.1"}, "media2": {"rtmp_address": "10.30.0.2"}}


def run_preflight(tmp_path: Path, media: dict, **balancer_vars) -> subprocess.CompletedProcess:
    inventory = {
        "balancers": {
            "hosts": {
                "lb-local": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                    "ansible_become": False,
                    **balancer_vars,
                }
            }
        },
        "media_servers": {"hosts": media},
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        ["ansible-playbook", "-i", str(path), "playbooks/site.yml", "--tags", "haproxy_preflight"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    "balancer_vars",
    [
        {},
        # IPv4 and IPv6 publishers on the same ports: one listener per family.
        {
            "haproxy_rtmp_binds": [
                {"address": "*", "port": 1935},
                {"address": "::", "port": 1935, "options": "v6only"},
                {"address": "*", "port": 80},
                {"address": "::", "port": 80, "options": "v6only"},
            ]
        },
        # RTMPS certificates from an ACME CA.
        {
            "haproxy_rtmps_enabled": True,
            "haproxy_acme_enabled": True,
            "haproxy_acme_identifiers": ["ingest.example.com", "203.0.113.10"],
            "haproxy_acme_terms_agreed": True,
        },
    ],
    ids=["defaults", "dual_stack", "acme"],
)
def test_valid_inventory_passes(tmp_path, balancer_vars):
    result = run_preflight(tmp_path, GOOD_MEDIA, **balancer_vars)
    assert result.returncode == 0, result.stdout + result.stderr


CASES = {
    "empty_group": (
        {},
        {},
        "Group media_servers has no hosts",
    ),
    "duplicate_endpoint": (
        {"media1": {"rtmp_address": "10.30.0.1"}, "media2": {"rtmp_address": "10.30.0.1"}},
        {},
        "media2: 10.30.0.1:1935 is also the address of media1",
    ),
    # Templated host vars are read rendered: media2's address renders to media1's.
    "duplicate_endpoint_templated": (
        {
            "media1": {"rtmp_address": "10.30.0.1"},
            "media2": {"rtmp_address": "{{ media_net }}.1", "media_net": "10.30.0", "rtmp_port": "{{ 1900 + 35 }}"},
        },
        {},
        "media2: 10.30.0.1:1935 is also the address of media1",
    ),
    "invalid_weight_templated": (
        {"media1": {"rtmp_address": "10.30.0.1", "rtmp_weight": "{{ 100 * 3 }}"}},
        {},
        "media1: rtmp_weight must be an integer 0..256, got 300",
    ),
    "invalid_port": (
        {"media1": {"rtmp_address": "10.30.0.1", "rtmp_port": 70000}},
        {},
        "media1: rtmp_port must be an integer 1..65535, got 70000",
    ),
    "invalid_weight": (
        {"media1": {"rtmp_address": "10.30.0.1", "rtmp_weight": "heavy"}},
        {},
        "media1: rtmp_weight must be an integer 0..256",
    ),
    "transparent_without_tproxy": (
        GOOD_MEDIA,
        {"haproxy_client_ip_mode": "transparent"},
        "the rtmpedge.balancer.tproxy role has not configured this host",
    ),
    "transparent_with_ipv6_media_server": (
        {"media1": {"rtmp_address": "10.30.0.1"}, "media2": {"rtmp_address": "fd00:30::2"}},
        {"haproxy_client_ip_mode": "transparent"},
        "media servers with IPv6 addresses (media2) cannot be reached in transparent mode",
    ),
    "transparent_listening_on_ipv6": (
        GOOD_MEDIA,
        {"haproxy_client_ip_mode": "transparent", "haproxy_rtmp_binds": [{"address": "::", "port": 1935}]},
        "but RTMP or RTMPS listens on IPv6 (::)",
    ),
    "rtmps_without_certificate": (
        GOOD_MEDIA,
        {"haproxy_rtmps_enabled": True},
        "haproxy_rtmps_certificate is empty",
    ),
    "acme_without_rtmps": (
        GOOD_MEDIA,
        {
            "haproxy_acme_enabled": True,
            "haproxy_acme_identifiers": ["ingest.example.com"],
            "haproxy_acme_terms_agreed": True,
        },
        "haproxy_rtmps_enabled is false: the certificate is for RTMPS",
    ),
    "acme_incomplete": (
        GOOD_MEDIA,
        {
            "haproxy_rtmps_enabled": True,
            "haproxy_acme_enabled": True,
            "haproxy_acme_directory": "http://ca.example/dir",
        },
        "haproxy_acme_identifiers is empty: name the DNS names or IP addresses the certificate is for;"
        " haproxy_acme_directory must be an https:// URL, not http://ca.example/dir;"
        " haproxy_acme_terms_agreed is false",
    ),
    "acme_and_a_given_certificate": (
        GOOD_MEDIA,
        {
            "haproxy_rtmps_enabled": True,
            "haproxy_rtmps_certificate": "PEM",
            "haproxy_acme_enabled": True,
            "haproxy_acme_identifiers": ["ingest.example.com"],
            "haproxy_acme_terms_agreed": True,
        },
        "haproxy_rtmps_certificate is set too: give a bundle or order one with ACME, not both",
    ),
    "acme_responder_port_taken": (
        GOOD_MEDIA,
        {
            "haproxy_rtmps_enabled": True,
            "haproxy_acme_enabled": True,
            "haproxy_acme_identifiers": ["ingest.example.com"],
            "haproxy_acme_terms_agreed": True,
            "haproxy_management_bind": {"address": "127.0.0.1", "port": 8403},
        },
        "ACME responder 127.0.0.1:8403 takes the port of management 127.0.0.1:8403",
    ),
    "unknown_mode": (
        GOOD_MEDIA,
        {"haproxy_client_ip_mode": "magic"},
        "haproxy_client_ip_mode",
    ),
    "port_collision": (
        GOOD_MEDIA,
        {"haproxy_health_bind": {"address": "*", "port": 1935}},
        "health *:1935 takes the port of RTMP *:1935 for IPv4",
    ),
    # :: without v6only also takes IPv4 on Linux.
    "dual_stack_collision": (
        GOOD_MEDIA,
        {"haproxy_rtmp_binds": [{"address": "*", "port": 1935}, {"address": "::", "port": 1935}]},
        "RTMP :::1935 takes the port of RTMP *:1935 for IPv4",
    ),
}


@pytest.mark.parametrize(("media", "balancer_vars", "message"), CASES.values(), ids=CASES.keys())
def test_bad_input_stops_the_play_with_its_cause(tmp_path, media, balancer_vars, message):
    result = run_preflight(tmp_path, media, **balancer_vars)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert message in output, output

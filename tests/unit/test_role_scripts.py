"""The shell scripts the tproxy and media_route roles install, rendered and checked with shellcheck and bash -n."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from role_render import render_template, role_variables

PATHS = [
    {"name": "lb1", "id": 1, "address": "10.2.0.2", "mac": "02:42:0a:02:00:02", "mark": 257, "table": 201},
    {"name": "lb2", "id": 2, "address": "10.2.0.3", "mac": "02:42:0a:02:00:03", "mark": 258, "table": 202},
]

SCRIPTS = {
    "tproxy-nftables": ("tproxy", "rtmpedge-tproxy.sh.j2", {}),
    "tproxy-iptables": ("tproxy", "rtmpedge-tproxy.sh.j2", {"tproxy_firewall": "iptables", "tproxy_ipv6": "required"}),
    "media_route": ("media_route", "rtmpedge-media-route.sh.j2", {"_media_route_paths": PATHS, "rtmp_port": 1935}),
}


@pytest.fixture(scope="session")
def shellcheck() -> str:
    path = shutil.which("shellcheck")
    if not path:
        pytest.fail("shellcheck is not installed; scripts/sanity.sh installs it")
    return path


@pytest.mark.parametrize(("role", "template", "overrides"), SCRIPTS.values(), ids=SCRIPTS.keys())
def test_rendered_script_is_clean(role, template, overrides, shellcheck, tmp_path):
    script = tmp_path / "script.sh"
    script.write_text(render_template(role, template, role_variables(role, **overrides)))
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False).returncode == 0
    result = subprocess.run([shellcheck, "-s", "bash", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_media_route_script_knows_every_balancer():
    script = render_template(
        "media_route", "rtmpedge-media-route.sh.j2", role_variables("media_route", _media_route_paths=PATHS)
    )
    assert '"257 201 10.2.0.2 lb1"' in script and '"258 202 10.2.0.3 lb2"' in script
    assert 'KNOWN_TABLES=" 201 202 "' in script


def test_nft_rules_mark_by_balancer_mac_and_restore_on_replies():
    rules = render_template(
        "media_route",
        "media-route.nft.j2",
        role_variables("media_route", _media_route_paths=PATHS, media_route_ports=[1935, 1936]),
    )
    assert "tcp dport { 1935, 1936 } ct state new ether saddr 02:42:0a:02:00:02 ct mark set 257" in rules
    assert "tcp sport { 1935, 1936 } ct mark != 0 meta mark set ct mark" in rules
    assert "type route hook output" in rules


def test_nft_divert_rule_marks_transparent_sockets():
    rules = render_template("tproxy", "tproxy.nft.j2", role_variables("tproxy", tproxy_mark=7))
    assert "socket transparent 1 meta mark set 7 accept" in rules

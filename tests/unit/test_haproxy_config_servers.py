"""module_utils.haproxy_config: the server lines the template writes, read back and replaced."""

from __future__ import annotations

import pytest
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_config import (
    ConfigError,
    file_view,
    parse_server,
    read_backend,
    replace_servers,
    server_line,
    structure,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.media_server import backend_plan
from haproxy_render import haproxy_check, render

FLEET = {
    "media-a": {"ansible_host": "10.0.0.11", "rtmp_maxconn": 50},
    "media-b": {"ansible_host": "10.0.0.12", "rtmp_port": 1936, "rtmp_state": "drain"},
    "media-c": {"ansible_host": "10.0.0.13", "rtmp_weight": 3, "rtmp_state": "maint"},
}


def test_the_rendered_servers_read_back_as_planned():
    backend = read_backend(render(FLEET), "rtmp_media")
    assert backend["servers"] == {
        "media-a": {
            "name": "media-a",
            "address": "10.0.0.11",
            "port": 1935,
            "weight": 10,
            "maxconn": 50,
            "state": "ready",
        },
        # drain is written as weight 0: haproxy.cfg has no drain keyword
        "media-b": {
            "name": "media-b",
            "address": "10.0.0.12",
            "port": 1936,
            "weight": 0,
            "maxconn": 0,
            "state": "ready",
        },
        "media-c": {
            "name": "media-c",
            "address": "10.0.0.13",
            "port": 1935,
            "weight": 3,
            "maxconn": 0,
            "state": "maint",
        },
    }
    assert backend["default_server"].startswith("check inter ")


def test_replacing_the_servers_gives_what_the_template_renders():
    # The reconcile job and the role must write the same file, or they would undo each other.
    smaller = {k: v for k, v in FLEET.items() if k != "media-b"}
    bigger = {**FLEET, "media-d": {"ansible_host": "10.0.0.14"}}
    base = render(FLEET, haproxy_frontend_maxconn=4000)
    for fleet in (smaller, bigger, FLEET):
        plan = backend_plan(list(fleet), fleet)["servers"]
        assert replace_servers(base, "rtmp_media", plan) == render(fleet, haproxy_frontend_maxconn=4000)


def test_an_empty_backend_gets_its_servers_back(haproxy_bin, tmp_path):
    empty = render({}, haproxy_allow_empty_backend=True, haproxy_frontend_maxconn=4000)
    plan = backend_plan(list(FLEET), FLEET)["servers"]
    filled = replace_servers(empty, "rtmp_media", plan)
    assert filled == render(FLEET, haproxy_frontend_maxconn=4000)
    assert haproxy_check(haproxy_bin, filled, tmp_path).returncode == 0


def test_structure_ignores_only_server_lines():
    base = render(FLEET, haproxy_frontend_maxconn=4000)
    fewer = render({"media-a": FLEET["media-a"]}, haproxy_frontend_maxconn=4000)
    assert structure(base, "rtmp_media") == structure(fewer, "rtmp_media")
    other = render(FLEET, haproxy_frontend_maxconn=4000, haproxy_timeout_server="2m")
    assert structure(base, "rtmp_media") != structure(other, "rtmp_media")


def test_a_config_without_the_backend_is_a_clear_error():
    with pytest.raises(ConfigError, match="no 'backend rtmp_media' section"):
        read_backend("global\n    daemon\n", "rtmp_media")


@pytest.mark.parametrize("state", ["ready", "drain", "maint"])
@pytest.mark.parametrize("maxconn", [0, 7])
def test_file_view_is_what_the_written_line_reads_back_as(state, maxconn):
    entry = {"name": "m", "address": "10.0.0.1", "port": 1936, "weight": 20, "maxconn": maxconn, "state": state}
    assert file_view(entry) == parse_server(server_line(entry))


@pytest.mark.parametrize("line", ["    server m 10.0.0.1:1935 weight 10", "\tserver\tm 10.0.0.1:1935"])
def test_indented_server_lines_with_spaces_or_tabs_are_replaced(line):
    text = f"backend rtmp_media\n    balance leastconn\n{line}\n"
    assert "m 10.0.0.1" not in replace_servers(text, "rtmp_media", [])

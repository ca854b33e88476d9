"""module_utils.media_server: the media-server contract, one check for discovery, the role and the job."""

from __future__ import annotations

import pytest
from ansible_collections.rtmpedge.balancer.plugins.module_utils.media_server import (
    backend_plan,
    derived_maxconn,
    server_name,
)


def test_defaults_follow_the_contract():
    plan = backend_plan(["media1"], {"media1": {"ansible_host": "10.0.0.5"}})
    assert plan == {
        "servers": [
            {
                "name": "media1",
                "address": "10.0.0.5",
                "port": 1935,
                "weight": 10,
                "maxconn": 0,
                "state": "ready",
            }
        ],
        "problems": [],
    }


def test_rtmp_address_wins_over_ansible_host_and_numbers_may_be_strings():
    plan = backend_plan(
        ["m"], {"m": {"ansible_host": "a", "rtmp_address": "10.1.1.1", "rtmp_port": "1936", "rtmp_weight": "5"}}
    )
    server = plan["servers"][0]
    assert (server["address"], server["port"], server["weight"]) == ("10.1.1.1", 1936, 5)


def test_servers_are_sorted_by_host_name():
    plan = backend_plan(["b", "a", "c"], {h: {"rtmp_address": f"10.0.0.{i}"} for i, h in enumerate("abc")})
    assert [s["name"] for s in plan["servers"]] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("host_vars", "expected"),
    [
        ({"rtmp_port": 0}, "rtmp_port must be an integer 1..65535, got 0"),
        ({"rtmp_port": "http"}, "rtmp_port must be an integer 1..65535, got 'http'"),
        ({"rtmp_weight": 300}, "rtmp_weight must be an integer 0..256, got 300"),
        ({"rtmp_weight": True}, "rtmp_weight must be an integer 0..256, got True"),
        ({"rtmp_maxconn": -1}, "rtmp_maxconn must be an integer 0..1000000, got -1"),
        ({"rtmp_state": "paused"}, "rtmp_state must be one of ready, drain, maint, got 'paused'"),
        ({"rtmp_address": "10.0.0.1 extra"}, "is not a usable IP address or host name"),
    ],
)
def test_invalid_values_are_reported_with_host_and_cause(host_vars, expected):
    plan = backend_plan(["bad"], {"bad": {"rtmp_address": "10.9.9.9", **host_vars}})
    assert len(plan["problems"]) == 1
    assert plan["problems"][0].startswith("bad: ")
    assert expected in plan["problems"][0]


def test_duplicate_address_and_port_is_a_problem_naming_both_hosts():
    plan = backend_plan(
        ["a", "b"], {"a": {"rtmp_address": "10.0.0.1"}, "b": {"rtmp_address": "10.0.0.1", "rtmp_port": 1935}}
    )
    assert plan["problems"] == ["b: 10.0.0.1:1935 is also the address of a"]


def test_same_address_other_port_is_fine():
    plan = backend_plan(
        ["a", "b"], {"a": {"rtmp_address": "10.0.0.1"}, "b": {"rtmp_address": "10.0.0.1", "rtmp_port": 1936}}
    )
    assert plan["problems"] == []


def test_server_names_are_made_safe_and_clashes_reported():
    assert server_name("task/abc 1") == "task_abc_1"
    plan = backend_plan(["a b", "a_b"], {"a b": {"rtmp_address": "10.0.0.1"}, "a_b": {"rtmp_address": "10.0.0.2"}})
    assert plan["problems"] == ["a_b: server name 'a_b' clashes with a b"]


def test_derived_maxconn_is_twice_the_fleet_with_a_floor():
    servers = [{"maxconn": 300}, {"maxconn": 0}, {"maxconn": 400}]
    assert derived_maxconn(servers, per_server_fallback=200, floor=1024) == 1800
    assert derived_maxconn([{"maxconn": 1}], per_server_fallback=200, floor=1024) == 1024
    assert derived_maxconn([], per_server_fallback=200, floor=1024) == 1024

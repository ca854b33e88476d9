"""Filter rtmpedge.balancer.rtmp_listener_clashes: the listeners the preflight refuses to bind together."""

from __future__ import annotations

import pytest
from ansible_collections.rtmpedge.balancer.plugins.filter.rtmp_listeners import rtmp_listener_clashes


def test_listeners_of_their_own_pass():
    listeners = {
        "RTMP": [
            {"address": "*", "port": 1935},
            {"address": "::", "port": 1935, "options": "v6only"},
            {"address": "*", "port": 80},
            {"address": "2001:db8::7", "port": 80},
        ],
        "RTMPS": [{"address": "*", "port": 443}],
        "health": [{"address": "10.0.0.5", "port": 8000}],
        "management": [{"address": "10.0.0.6", "port": 8000}],  # another address, same port
        "peers": [],
    }
    assert rtmp_listener_clashes(listeners) == []


@pytest.mark.parametrize(
    ("listeners", "message"),
    [
        (
            {"RTMP": [{"address": "*", "port": 1935}], "health": [{"port": 1935}]},
            "health *:1935 takes the port of RTMP *:1935 for IPv4",
        ),
        (
            {"RTMP": [{"address": "*", "port": 80}], "RTMPS": [{"address": "0.0.0.0", "port": 80}]},  # noqa: S104
            "RTMPS 0.0.0.0:80 takes the port of RTMP *:80 for IPv4",
        ),
        (
            {"RTMP": [{"address": "*", "port": 1935}, {"address": "::", "port": 1935}]},
            "RTMP :::1935 takes the port of RTMP *:1935 for IPv4",
        ),
        (
            {"RTMP": [{"address": "::", "port": 1935, "options": "v6only"}, {"address": "[fd00::1]", "port": 1935}]},
            "RTMP fd00::1:1935 takes the port of RTMP :::1935 for IPv6",
        ),
        ({"RTMP": [{"address": "10.0.0.5", "port": 1935}, {"address": "*", "port": 1935}]}, "for IPv4"),
        ({"RTMP": [{"address": "*", "port": 70000}]}, "RTMP *:70000: the port must be 1-65535"),
        ({"RTMP": [{"address": "*", "port": "web"}]}, "RTMP *:web: the port must be 1-65535"),
        ({"RTMP": ["*:1935"]}, "RTMP listener '*:1935' is not a mapping"),
    ],
)
def test_clashes_and_bad_ports_are_named(listeners, message):
    problems = rtmp_listener_clashes(listeners)
    assert len(problems) == 1 and message in problems[0], problems

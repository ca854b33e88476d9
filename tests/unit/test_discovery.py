"""module_utils.discovery: checking outside data, merging sources, SRV weights."""

from __future__ import annotations

import dataclasses

import pytest
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import (
    DiscoveryError,
    make_server,
    merge,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.dns_srv import scale_weights
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.sources import discover_all
from ansible_collections.rtmpedge.balancer.plugins.module_utils.media_server import (
    MediaServer,
    _check_address_fully,
    check_address,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("media-1.example.com", "media-1.example.com"),
        ("999.1.1.1", None),
        ("10.0.0", None),
        ("bad host", None),
        ("", None),
        (None, None),
        ("-lead.example.com", None),
    ],
)
def test_check_address(value, expected):
    assert check_address(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "0.0.0.0",  # noqa: S104 - an address the check must refuse
        "255.255.255.255",
        "224.0.0.1",
        "239.255.255.255",
        "223.255.255.255",
        "240.0.0.1",
        "127.0.0.1",
        "01.2.3.4",
        "1.2.3.04",
        " 10.0.0.1",
        "10.0.0.1 ",
        "10.0.0.1\n",
        "10.0.0.1\x00",
        "1.2.3.4.5",
        "1.2.3.256",
        "0x7f.0.0.1",
        "1e3.1.1.1",
        "::ffff:10.0.0.1",
        "10.0.0.1.example.com",
    ],
)
def test_check_address_fast_path_agrees_with_the_full_check(value):
    """The canonical-IPv4 shortcut gives what the full check gives."""
    assert check_address(value) == _check_address_fully(value)


def test_make_server_applies_source_defaults_and_names_by_address():
    server = make_server("s", None, "10.0.0.1", port=1936, defaults={"weight": 3, "maxconn": 9})
    assert (server.name, server.port, server.weight, server.maxconn, server.state) == (
        "10.0.0.1-1936",
        1936,
        3,
        9,
        "ready",
    )
    assert make_server("s", None, "10.0.0.1").name == "10.0.0.1"


def test_make_server_errors_name_the_source_server_and_field():
    with pytest.raises(
        DiscoveryError, match=r"^media server source api: server 'edge-9': weight must be an integer 0\.\.256"
    ):
        make_server("api", "edge-9", "10.0.0.1", weight=500)


def test_merge_keeps_the_first_endpoint_and_makes_names_unique():
    first = [MediaServer("edge", "10.0.0.1", source="a")]
    second = [MediaServer("other", "10.0.0.1", source="b"), MediaServer("edge", "10.0.0.2", source="b")]
    servers, warnings = merge([first, second])
    assert [(s.name, s.address, s.source) for s in servers] == [
        ("edge", "10.0.0.1", "a"),
        ("edge-1935", "10.0.0.2", "b"),
    ]
    assert warnings == ["b: other (10.0.0.1:1935) is a duplicate of edge from a; kept the first"]


def test_merge_names_are_unique_even_when_every_spelled_out_name_is_taken():
    taken = [
        MediaServer("edge", "10.0.0.1", source="a"),
        MediaServer("edge-1935", "10.0.0.3", source="a"),
        MediaServer("edge-10.0.0.2-1935", "10.0.0.4", source="a"),
        MediaServer("edge-10.0.0.2-1935-2", "10.0.0.5", source="a"),
    ]
    servers, _warnings = merge([taken, [MediaServer("edge", "10.0.0.2", source="b")]])
    assert servers[-1].name == "edge-10.0.0.2-1935-3"
    assert len({s.name for s in servers}) == len(servers)


def test_servers_round_trip_through_the_cache_format():
    server = MediaServer("t1", "10.0.0.5", 1935, 5, 1, "drain", "ecs", {"rtmp_task_arn": "arn:x"})
    assert MediaServer(**dataclasses.asdict(server)) == server


@pytest.mark.parametrize(
    ("weights", "expected"),
    [([0, 10, 256], [1, 10, 256]), ([1000, 500, 0], [256, 128, 1]), ([], [])],
)
def test_srv_weights_fit_haproxy(weights, expected):
    assert scale_weights(weights) == expected


def test_sources_must_be_a_non_empty_list():
    with pytest.raises(DiscoveryError, match="'sources' must be a non-empty list"):
        discover_all([], allow_empty=False, on_source_error="fail")


def test_static_source_end_to_end():
    servers, warnings = discover_all(
        [{"type": "static", "servers": [{"address": "10.0.0.1", "name": "a"}, {"address": "10.0.0.2", "maxconn": 1}]}],
        allow_empty=False,
        on_source_error="fail",
    )
    assert [(s.name, s.maxconn, s.source) for s in servers] == [("a", 0, "static[0]"), ("10.0.0.2", 1, "static[0]")]
    assert warnings == []


def test_every_source_failing_under_skip_is_still_an_error():
    with pytest.raises(DiscoveryError, match="all sources: found no media servers"):
        discover_all([{"type": "static", "servers": [{"address": "999.1.1.1"}]}], False, on_source_error="skip")


def test_a_configuration_mistake_fails_even_under_skip():
    # skip is for sources that fail at run time, not for a source that cannot be what was meant.
    with pytest.raises(DiscoveryError, match="static\\[0\\]: option 'servers' must be a list, not a str"):
        discover_all([{"type": "static", "servers": "x"}], allow_empty=False, on_source_error="skip")

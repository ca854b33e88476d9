"""module_utils.return_paths: which balancer address and MAC a media server routes replies back to."""

from __future__ import annotations

import re

import pytest
from ansible_collections.rtmpedge.balancer.plugins.module_utils.return_paths import ReturnPathError, return_paths


def _facts(*interfaces):
    """Ansible-style facts for (name, address, netmask, mac) tuples."""
    facts = {
        "interfaces": [i[0] for i in interfaces] + ["lo"],
        "lo": {"ipv4": {"address": "127.0.0.1", "netmask": "255.0.0.0"}},
    }
    for name, address, netmask, mac in interfaces:
        facts[name] = {"ipv4": {"address": address, "netmask": netmask}, "macaddress": mac}
    return facts


LB1 = _facts(
    ("eth0", "10.1.0.2", "255.255.255.0", "02:42:0a:01:00:02"),
    ("eth1", "10.2.0.2", "255.255.255.0", "02:42:0a:02:00:02"),
)
LB2 = _facts(
    ("eth0", "10.1.0.3", "255.255.255.0", "02:42:0A:01:00:03"),
    ("eth1", "10.2.0.3", "255.255.255.0", "02:42:0a:02:00:03"),
)


def test_each_balancer_is_reached_on_the_media_servers_subnet():
    paths = return_paths("10.2.0.10", [{"name": "lb2", "facts": LB2}, {"name": "lb1", "facts": LB1}], 256, 200)
    assert paths == [
        {"name": "lb1", "id": 1, "address": "10.2.0.2", "mac": "02:42:0a:02:00:02", "mark": 257, "table": 201},
        {"name": "lb2", "id": 2, "address": "10.2.0.3", "mac": "02:42:0a:02:00:03", "mark": 258, "table": 202},
    ]


def test_explicit_ids_and_addresses_win():
    paths = return_paths(
        "10.2.0.10",
        [{"name": "lb1", "id": 7, "facts": {}, "address": "10.2.0.99", "mac": "AA:BB:CC:DD:EE:FF"}],
        256,
        200,
    )
    assert paths == [
        {"name": "lb1", "id": 7, "address": "10.2.0.99", "mac": "aa:bb:cc:dd:ee:ff", "mark": 263, "table": 207}
    ]


def test_a_balancer_off_the_subnet_is_an_error_naming_it():
    with pytest.raises(
        ReturnPathError, match=re.escape("balancer lb1 has no interface on the subnet of media server address 10.9.0.1")
    ):
        return_paths("10.9.0.1", [{"name": "lb1", "facts": LB1}], 256, 200)


def test_clashing_ids_are_an_error():
    with pytest.raises(ReturnPathError, match="ids clash"):
        return_paths(
            "10.2.0.10", [{"name": "lb1", "id": 1, "facts": LB1}, {"name": "lb2", "id": 1, "facts": LB2}], 256, 200
        )

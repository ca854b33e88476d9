"""Filter rtmpedge.balancer.rtmp_invalid_networks: what the preflight refuses in the publisher lists."""

from __future__ import annotations

from ansible_collections.rtmpedge.balancer.plugins.filter.rtmp_networks import rtmp_invalid_networks


def test_addresses_and_networks_pass():
    assert rtmp_invalid_networks(["203.0.113.7", "198.51.100.0/24", "2001:db8::/32", " 192.0.2.1 "]) == []


def test_names_ranges_and_host_bits_are_refused():
    entries = ["ingest.example.com", "10.0.0.1-10.0.0.9", "10.0.0.1/24", "300.1.1.1", ""]
    assert rtmp_invalid_networks(entries) == entries


def test_no_list_is_no_problem():
    assert rtmp_invalid_networks(None) == []

"""The balancer_dns_changes filter: what the balancer_dns role keeps, deletes and puts back."""

from __future__ import annotations

from ansible_collections.rtmpedge.balancer.plugins.filter.balancer_dns import balancer_dns_changes

NAME = "ingest.example.com."


def _record(name, kind, ident, value, *, weight=100, check=None):
    record = {
        "name": name,
        "type": kind,
        "set_identifier": ident,
        "weight": weight,
        "ttl": 60,
        "resource_records": [{"value": value}],
    }
    if check:
        record["health_check_id"] = check
    return record


def test_one_a_record_per_balancer_and_an_aaaa_with_its_own_identifier():
    hosts = {
        "lb1": {"balancer_dns_ipv4": "192.0.2.1", "balancer_dns_ipv6": "2001:DB8::1"},
        "lb2": {"ansible_host": "192.0.2.2"},
    }
    out = balancer_dns_changes(["lb1", "lb2"], hosts, [], "Ingest.Example.com")
    assert out["fqdn"] == NAME and out["problems"] == [] and out["total_weight"] == 200
    assert [(r["identifier"], r["type"], r["value"]) for r in out["records"]] == [
        ("lb1", "A", "192.0.2.1"),
        ("lb1/ipv6", "AAAA", "2001:db8::1"),
        ("lb2", "A", "192.0.2.2"),
    ]


def test_a_departed_balancer_is_removed_and_what_shares_its_identifier_comes_back():
    zone = [
        _record(NAME, "A", "lb1", "192.0.2.1", check="c1"),
        _record(NAME, "A", "lb3", "192.0.2.3", check="c3"),
        _record("other.example.com.", "A", "lb3", "198.51.100.7", weight=7),
        _record("other.example.com.", "A", "lb9", "198.51.100.9"),
    ]
    out = balancer_dns_changes(["lb1"], {"lb1": {"balancer_dns_ipv4": "192.0.2.1"}}, zone, NAME)
    assert [(r["set_identifier"], r["type"]) for r in out["remove"]] == [("lb3", "A")]
    assert [(r["record"], r["identifier"], r["weight"], r["value"]) for r in out["restore"]] == [
        ("other.example.com.", "lb3", 7, ["198.51.100.7"])
    ]
    assert out["departed_checks"] == ["c3"]


def test_an_aaaa_without_ipv6_now_is_removed_and_its_check_stays():
    zone = [
        _record(NAME, "A", "lb1", "192.0.2.1", check="c1"),
        _record(NAME, "AAAA", "lb1/ipv6", "2001:db8::1", check="c1"),
    ]
    out = balancer_dns_changes(["lb1"], {"lb1": {"balancer_dns_ipv4": "192.0.2.1"}}, zone, NAME)
    assert [(r["set_identifier"], r["type"]) for r in out["remove"]] == [("lb1/ipv6", "AAAA")]
    assert out["departed_checks"] == [] and out["restore"] == []


def test_bad_values_and_a_zero_total_are_problems():
    hosts = {
        "a": {"balancer_dns_ipv4": "2001:db8::1"},
        "b": {"balancer_dns_ipv4": "192.0.2.2", "balancer_dns_ipv6": "192.0.2.3"},
        "c": {"balancer_dns_ipv4": "192.0.2.4", "balancer_dns_weight": "-1"},
    }
    problems = balancer_dns_changes(["a", "b", "c"], hosts, [], NAME)["problems"]
    assert len(problems) == 3 and "balancer a:" in problems[0] and "'-1'" in problems[2]
    zero = {"a": {"balancer_dns_ipv4": "192.0.2.1", "balancer_dns_weight": 0}}
    assert "add up to 0" in balancer_dns_changes(["a"], zero, [], NAME)["problems"][0]


def test_a_drained_balancer_gets_weight_zero_and_draining_the_last_one_is_refused():
    hosts = {
        "lb1": {"balancer_dns_ipv4": "192.0.2.1", "balancer_dns_ipv6": "2001:db8::1"},
        "lb2": {"ansible_host": "192.0.2.2"},
    }
    out = balancer_dns_changes(["lb1", "lb2"], hosts, [], NAME, 100, ["lb1"])
    assert [(r["identifier"], r["weight"]) for r in out["records"]] == [("lb1", 0), ("lb1/ipv6", 0), ("lb2", 100)]
    assert out["problems"] == [] and out["total_weight"] == 100
    both = balancer_dns_changes(["lb1", "lb2"], hosts, [], NAME, 100, ["lb1", "lb2"])
    assert "add up to 0" in both["problems"][0]

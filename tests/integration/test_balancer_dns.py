"""playbooks/balancer_dns.yml (role rtmpedge.balancer.balancer_dns) against a local moto server's Route 53."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml
from conftest import AWS_ENV

REPO = Path(__file__).resolve().parents[2]
_zones = itertools.count()


@pytest.fixture
def dns(moto_url, tmp_path):
    """A fresh hosted zone; `run(balancers)` applies the playbook for these balancers (name -> host vars)."""
    route53 = boto3.client(
        "route53",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    zone = f"z{next(_zones)}.rtmp.test"
    zone_id = route53.create_hosted_zone(Name=zone + ".", CallerReference=zone)["HostedZone"]["Id"]

    def run(balancers: dict[str, dict], *extra: str) -> subprocess.CompletedProcess:
        inventory = tmp_path / "hosts.yml"
        inventory.write_text(
            yaml.safe_dump(
                {"all": {"children": {"balancers": {"hosts": balancers}}, "vars": {"ansible_connection": "local"}}}
            )
        )
        return subprocess.run(
            [
                *("ansible-playbook", "-i", str(inventory), "playbooks/balancer_dns.yml"),
                *("-e", f"ansible_python_interpreter={sys.executable}"),
                *("-e", f"balancer_dns_record=ingest.{zone}", "-e", f"balancer_dns_zone={zone}"),
                *("-e", f"balancer_dns_aws_endpoint_url={moto_url}"),
                *extra,
            ],
            cwd=REPO,
            env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), **AWS_ENV},
            capture_output=True,
            text=True,
            check=False,
        )

    def records() -> dict[tuple[str, str, str], dict]:
        """(name, type, set identifier) -> record, for the weighted records of the zone."""
        listed = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        return {(r["Name"], r["Type"], r["SetIdentifier"]): r for r in listed if "SetIdentifier" in r}

    def health_checks() -> dict[str, dict]:
        return {h["Id"]: h["HealthCheckConfig"] for h in route53.list_health_checks()["HealthChecks"]}

    return {"run": run, "records": records, "checks": health_checks, "zone": zone, "zone_id": zone_id, "api": route53}


THREE = {
    "lb1": {"balancer_dns_ipv4": "192.0.2.1", "balancer_dns_ipv6": "2001:db8::1"},
    "lb2": {"balancer_dns_ipv4": "192.0.2.2"},
    "lb3": {"balancer_dns_ipv4": "192.0.2.3", "balancer_dns_weight": 50},
}


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result.stdout


def _changed(output: str) -> int:
    recap = next(line for line in output.splitlines() if line.startswith("lb1 "))
    return int(recap.split("changed=")[1].split()[0])


def _weights(records: dict) -> dict[tuple[str, str], int]:
    return {(ident, kind): r["Weight"] for (_name, kind, ident), r in records.items()}


def test_three_balancers_get_weighted_records_and_health_checks(dns):
    out = _ok(dns["run"](THREE))
    assert _changed(out) > 0
    name = f"ingest.{dns['zone']}."
    records = dns["records"]()
    assert _weights(records) == {("lb1", "A"): 100, ("lb1/ipv6", "AAAA"): 100, ("lb2", "A"): 100, ("lb3", "A"): 50}
    assert {r["TTL"] for r in records.values()} == {60}
    assert records[(name, "AAAA", "lb1/ipv6")]["ResourceRecords"] == [{"Value": "2001:db8::1"}]
    checks = dns["checks"]()
    for ident, address in (("lb1", "192.0.2.1"), ("lb2", "192.0.2.2"), ("lb3", "192.0.2.3")):
        check = checks[records[(name, "A", ident)]["HealthCheckId"]]
        assert (check["IPAddress"], check["Port"], check["Type"], check["ResourcePath"]) == (address, 8000, "HTTP", "/")
    assert records[(name, "AAAA", "lb1/ipv6")]["HealthCheckId"] == records[(name, "A", "lb1")]["HealthCheckId"]
    # A second run changes nothing.
    assert _changed(_ok(dns["run"](THREE))) == 0


def test_draining_one_balancer_sets_its_weight_to_zero_only(dns):
    _ok(dns["run"](THREE))
    before = dns["records"]()
    drained = {**THREE, "lb2": {**THREE["lb2"], "balancer_dns_weight": 0}}
    _ok(dns["run"](drained))
    after = dns["records"]()
    assert _weights(after) == {**_weights(before), ("lb2", "A"): 0}
    assert _changed(_ok(dns["run"](drained))) == 0


def test_the_drain_playbook_s_drained_list_overrides_host_weights_until_a_run_without_it(dns):
    _ok(dns["run"](THREE))
    before = _weights(dns["records"]())
    _ok(dns["run"](THREE, "-e", '{"balancer_dns_drained": ["lb1"]}'))
    assert _weights(dns["records"]()) == {**before, ("lb1", "A"): 0, ("lb1/ipv6", "AAAA"): 0}
    refused = dns["run"](THREE, "-e", '{"balancer_dns_drained": ["lb1", "lb2", "lb3"]}')
    assert refused.returncode != 0 and "add up to 0" in refused.stdout
    _ok(dns["run"](THREE))
    assert _weights(dns["records"]()) == before


def test_a_balancer_that_left_loses_its_records_and_check_and_nothing_else(dns):
    _ok(dns["run"](THREE))
    name = f"ingest.{dns['zone']}."
    lb3_check = dns["records"]()[(name, "A", "lb3")]["HealthCheckId"]
    # Someone else's record sharing lb3's identifier under another name must survive its deletion.
    other = {
        "Name": f"other.{dns['zone']}.",
        "Type": "A",
        "SetIdentifier": "lb3",
        "Weight": 7,
        "TTL": 300,
        "ResourceRecords": [{"Value": "198.51.100.7"}],
    }
    dns["api"].change_resource_record_sets(
        HostedZoneId=dns["zone_id"], ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": other}]}
    )
    _ok(dns["run"]({k: v for k, v in THREE.items() if k != "lb3"}))
    records = dns["records"]()
    assert _weights(records) == {("lb1", "A"): 100, ("lb1/ipv6", "AAAA"): 100, ("lb2", "A"): 100, ("lb3", "A"): 7}
    assert records[(other["Name"], "A", "lb3")]["ResourceRecords"] == other["ResourceRecords"]
    assert lb3_check not in dns["checks"](), "the departed balancer's health check is deleted"
    assert all(r["HealthCheckId"] in dns["checks"]() for (n, _t, _i), r in records.items() if n == name)


def test_a_balancer_without_ipv6_now_loses_only_its_aaaa(dns):
    _ok(dns["run"](THREE))
    _ok(dns["run"]({**THREE, "lb1": {"balancer_dns_ipv4": "192.0.2.1"}}))
    assert _weights(dns["records"]()) == {("lb1", "A"): 100, ("lb2", "A"): 100, ("lb3", "A"): 50}


def test_total_weight_zero_is_refused_and_nothing_changes(dns):
    _ok(dns["run"](THREE))
    before = dns["records"]()
    zero = {name: {**host_vars, "balancer_dns_weight": 0} for name, host_vars in THREE.items()}
    result = dns["run"](zero)
    assert result.returncode != 0
    assert "add up to 0" in result.stdout and "nothing changed" in result.stdout, result.stdout[-3000:]
    assert dns["records"]() == before


@pytest.mark.parametrize(
    ("host_vars", "cause"),
    [
        (
            {"balancer_dns_ipv4": "not-an-address"},
            "balancer lb2: balancer_dns_ipv4 (or ansible_host) is 'not-an-address'",
        ),
        ({"balancer_dns_ipv4": "192.0.2.2", "balancer_dns_ipv6": "192.0.2.9"}, "balancer_dns_ipv6 is '192.0.2.9'"),
        ({"balancer_dns_ipv4": "192.0.2.2", "balancer_dns_weight": 300}, "balancer_dns_weight is 300"),
    ],
)
def test_bad_balancer_settings_are_refused_naming_the_cause(dns, host_vars, cause):
    result = dns["run"]({**THREE, "lb2": host_vars})
    assert result.returncode != 0
    assert cause in result.stdout, result.stdout[-3000:]
    assert dns["records"]() == {}, "nothing was created"

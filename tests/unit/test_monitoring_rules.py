"""The monitoring role's alerting rules, as the role renders them with its defaults, checked and
unit-tested by Debian's promtool (`promtool check rules`, `promtool test rules`).

Every alert has a case where it fires and one where it stays quiet. The inputs, the labels and
the summary of each alert (which must name the balancer and the backend) are written here by
hand; the static description and runbook link come from the rendered rules.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "monitoring"
HAPROXY = 'job="rtmpedge-haproxy"'
BALANCER = 'job="rtmpedge-balancer"'

# alert: (input series, eval time, firing [(labels, summary)], quiet eval time or None, quiet series or None)
CASES = {
    "RtmpedgeNoMediaServer": {
        "series": [
            (f'haproxy_backend_active_servers{{instance="lb1",{HAPROXY},proxy="rtmp_media"}}', "3 3 0 0 0 0"),
            (f'haproxy_backend_active_servers{{instance="lb2",{HAPROXY},proxy="rtmp_media"}}', "3 3 3 3 3 3"),
        ],
        "fires_at": "4m",
        "firing": [
            (
                {"instance": "lb1", "job": "rtmpedge-haproxy", "proxy": "rtmp_media", "severity": "critical"},
                "lb1: no media server is up in backend rtmp_media",
            )
        ],
        "quiet_at": "1m",
    },
    "RtmpedgeFewMediaServers": {
        "series": [
            (f'haproxy_backend_active_servers{{instance="lb1",{HAPROXY},proxy="rtmp_media"}}', "1x10"),
            (f'haproxy_backend_active_servers{{instance="lb2",{HAPROXY},proxy="rtmp_media"}}', "2x10"),
            (f'haproxy_backend_active_servers{{instance="lb3",{HAPROXY},proxy="rtmp_media"}}', "0x10"),
        ],
        "fires_at": "5m",
        "firing": [
            (
                {"instance": "lb1", "job": "rtmpedge-haproxy", "proxy": "rtmp_media", "severity": "warning"},
                "lb1: only 1 media servers up in backend rtmp_media (2 wanted)",
            )
        ],
        "quiet_at": "1m",
    },
    "RtmpedgeFreeSlotsLow": {
        "series": [
            (f'rtmpedge_health_free_slots{{instance="lb1",{BALANCER},proxy="rtmp_media"}}', "3x10"),
            (f'rtmpedge_health_free_slots{{instance="lb2",{BALANCER},proxy="rtmp_media"}}', "40x10"),
        ],
        "fires_at": "5m",
        "firing": [
            (
                {"instance": "lb1", "job": "rtmpedge-balancer", "proxy": "rtmp_media", "severity": "warning"},
                "lb1: 3 free stream slots left in backend rtmp_media",
            )
        ],
        "quiet_at": "1m",
    },
    "RtmpedgeHealthDown": {
        "series": [
            (f'rtmpedge_health_up{{instance="lb1",{BALANCER},proxy="rtmp_media"}}', "0x10"),
            (f'rtmpedge_health_drained{{instance="lb1",{BALANCER},proxy="rtmp_media"}}', "0x10"),
            # Drained on purpose: 503 too, and no alert.
            (f'rtmpedge_health_up{{instance="lb2",{BALANCER},proxy="rtmp_media"}}', "0x10"),
            (f'rtmpedge_health_drained{{instance="lb2",{BALANCER},proxy="rtmp_media"}}', "1x10"),
            (f'rtmpedge_health_up{{instance="lb3",{BALANCER},proxy="rtmp_media"}}', "1x10"),
            (f'rtmpedge_health_drained{{instance="lb3",{BALANCER},proxy="rtmp_media"}}', "0x10"),
        ],
        "fires_at": "3m",
        "firing": [
            (
                {"instance": "lb1", "job": "rtmpedge-balancer", "proxy": "rtmp_media", "severity": "critical"},
                "lb1: the health endpoint answers 503 for backend rtmp_media",
            )
        ],
        "quiet_at": "30s",
    },
    "RtmpedgeBalancerLeftDrained": {
        "series": [
            (f'rtmpedge_health_drained{{instance="lb1",{BALANCER},proxy="rtmp_media"}}', "1x200"),
            (f'rtmpedge_health_drained{{instance="lb2",{BALANCER},proxy="rtmp_media"}}', "0x200"),
        ],
        "fires_at": "150m",
        "firing": [
            (
                {"instance": "lb1", "job": "rtmpedge-balancer", "proxy": "rtmp_media", "severity": "info"},
                "lb1: drained on purpose for a long time",
            )
        ],
        "quiet_at": "60m",
    },
    "RtmpedgeSessionsNearMaxconn": {
        "series": [
            (f'haproxy_frontend_current_sessions{{instance="lb1",{HAPROXY},proxy="rtmp_ingest"}}', "950x10"),
            (f'haproxy_frontend_limit_sessions{{instance="lb1",{HAPROXY},proxy="rtmp_ingest"}}', "1000x10"),
            (f'haproxy_frontend_current_sessions{{instance="lb2",{HAPROXY},proxy="rtmp_ingest"}}', "500x10"),
            (f'haproxy_frontend_limit_sessions{{instance="lb2",{HAPROXY},proxy="rtmp_ingest"}}', "1000x10"),
        ],
        "fires_at": "7m",
        "firing": [
            (
                {"instance": "lb1", "job": "rtmpedge-haproxy", "proxy": "rtmp_ingest", "severity": "warning"},
                "lb1: frontend rtmp_ingest at 95% of its maxconn",
            )
        ],
        "quiet_at": "2m",
    },
    "RtmpedgeReloadFailed": {
        "series": [
            # lb1 runs an older configuration: every reload since its worker started failed.
            (f'rtmpedge_haproxy_config_stale{{instance="lb1",{BALANCER}}}', "0 0 1 1 1 1 1 1"),
            (f'rtmpedge_haproxy_failed_reloads_total{{instance="lb1",{BALANCER}}}', "0 0 1 1 1 1 1 1"),
            (f'rtmpedge_haproxy_config_stale{{instance="lb2",{BALANCER}}}', "0x7"),
            (f'rtmpedge_haproxy_failed_reloads_total{{instance="lb2",{BALANCER}}}', "0x7"),
        ],
        "fires_at": "5m",
        "firing": [
            (
                {"instance": "lb1", "job": "rtmpedge-balancer", "severity": "critical"},
                "lb1: an HAProxy reload failed; it may run an older configuration than the file",
            )
        ],
        "quiet_at": "1m",
    },
    "RtmpedgeOldWorkersPiling": {
        "series": [
            (f'rtmpedge_haproxy_workers{{instance="lb1",{BALANCER}}}', "6x20"),
            (f'rtmpedge_haproxy_workers{{instance="lb2",{BALANCER}}}', "3x20"),
        ],
        "fires_at": "15m",
        "firing": [
            (
                {"instance": "lb1", "job": "rtmpedge-balancer", "severity": "warning"},
                "lb1: 6 HAProxy workers (old ones kept alive by their streams)",
            )
        ],
        "quiet_at": "5m",
    },
    "RtmpedgeStreamsOnOldWorkers": {
        "series": [
            (f'rtmpedge_haproxy_old_worker_sessions{{instance="lb1",{BALANCER},proxy="rtmp_media"}}', "2x20"),
            (f'rtmpedge_haproxy_oldest_old_worker_seconds{{instance="lb1",{BALANCER}}}', "30000+60x20"),
            # Streams on an old worker, but not for long: the usual state right after a reload.
            (f'rtmpedge_haproxy_old_worker_sessions{{instance="lb2",{BALANCER},proxy="rtmp_media"}}', "2x20"),
            (f'rtmpedge_haproxy_oldest_old_worker_seconds{{instance="lb2",{BALANCER}}}', "60+60x20"),
        ],
        "fires_at": "15m",
        "firing": [
            (
                {"instance": "lb1", "job": "rtmpedge-balancer", "proxy": "rtmp_media", "severity": "warning"},
                "lb1: 2 streams of backend rtmp_media held by an old worker for hours",
            )
        ],
        "quiet_at": "5m",
    },
    "RtmpedgePublishersRefused": {
        "series": [
            # 600 refusals a minute on lb1 (10/s), 60 a minute on lb2 (1/s).
            (f'haproxy_frontend_denied_connections_total{{instance="lb1",{HAPROXY},proxy="rtmp_ingest"}}', "0+600x10"),
            (f'haproxy_frontend_denied_connections_total{{instance="lb2",{HAPROXY},proxy="rtmp_ingest"}}', "0+60x10"),
        ],
        "fires_at": "5m",
        "firing": [
            (
                {"instance": "lb1", "job": "rtmpedge-haproxy", "proxy": "rtmp_ingest", "severity": "warning"},
                "lb1: 10 connections/s refused on frontend rtmp_ingest (abuse limits or deny list)",
            )
        ],
        "quiet_at": "1m",
    },
    "RtmpedgeBalancerNotScraped": {
        "series": [
            (f'up{{instance="lb1",{HAPROXY}}}', "0x10"),
            (f'up{{instance="lb1",{BALANCER}}}', "1x10"),
            (f'rtmpedge_haproxy_master_up{{instance="lb1",{BALANCER}}}', "1x10"),
            (f'up{{instance="lb2",{HAPROXY}}}', "1x10"),
            (f'up{{instance="lb2",{BALANCER}}}', "1x10"),
            # lb2's exporter answers, but HAProxy's master CLI does not.
            (f'rtmpedge_haproxy_master_up{{instance="lb2",{BALANCER}}}', "0x10"),
            (f'up{{instance="lb3",{HAPROXY}}}', "1x10"),
            (f'up{{instance="lb3",{BALANCER}}}', "1x10"),
            (f'rtmpedge_haproxy_master_up{{instance="lb3",{BALANCER}}}', "1x10"),
        ],
        "fires_at": "5m",
        "firing": [
            (
                {"instance": "lb1", "job": "rtmpedge-haproxy", "severity": "critical"},
                "lb1: metrics cannot be read (job rtmpedge-haproxy)",
            ),
            (
                {"instance": "lb2", "job": "rtmpedge-balancer", "severity": "critical"},
                "lb2: metrics cannot be read (job rtmpedge-balancer)",
            ),
        ],
        "quiet_at": "1m",
    },
}


def rendered_rules(**overrides) -> str:
    """The rules file as the role's template task renders it ([[ ]] for Ansible's variables)."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    environment = jinja2.Environment(  # noqa: S701 - YAML, not HTML
        variable_start_string="[[",
        variable_end_string="]]",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    template = environment.from_string((ROLE / "templates" / "rtmpedge.rules.yml.j2").read_text())
    return template.render(ansible_managed="Ansible managed", **{**defaults, **overrides})


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(path).exists():
        pytest.fail("promtool is not installed; scripts/unit.sh installs Debian's prometheus package")
    return path


@pytest.fixture(scope="module")
def rules(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "rtmpedge.rules.yml"
    path.write_text(rendered_rules())
    return path


def _static_annotations(rules_path: Path) -> dict[str, dict]:
    groups = yaml.safe_load(rules_path.read_text())["groups"]
    return {
        r["alert"]: {k: v for k, v in r["annotations"].items() if k != "summary"} for g in groups for r in g["rules"]
    }


def test_promtool_accepts_the_rules(promtool, rules):
    result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(CASES)} rules found" in result.stdout, result.stdout


def test_every_alert_has_a_firing_and_a_quiet_case(rules):
    assert set(_static_annotations(rules)) == set(CASES)


def test_promtool_unit_tests_fire_and_stay_quiet(promtool, rules, tmp_path):
    static = _static_annotations(rules)
    tests = []
    for alert, case in CASES.items():
        series = [{"series": s, "values": v} for s, v in case["series"]]
        firing = [
            {"exp_labels": labels, "exp_annotations": {"summary": summary, **static[alert]}}
            for labels, summary in case["firing"]
        ]
        tests.append(
            {
                "name": alert,
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": case["quiet_at"], "alertname": alert, "exp_alerts": []},
                    {"eval_time": case["fires_at"], "alertname": alert, "exp_alerts": firing},
                ],
            }
        )
    test_file = tmp_path / "rules.test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests}))
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_thresholds_and_for_durations_come_from_the_role_variables():
    rules = yaml.safe_load(
        rendered_rules(monitoring_min_media_servers=4, monitoring_alert_for={"RtmpedgeNoMediaServer": "7s"})
    )
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert by_name["RtmpedgeNoMediaServer"]["for"] == "7s"
    assert by_name["RtmpedgeFewMediaServers"]["for"] == "2m"
    assert "< 4" in by_name["RtmpedgeFewMediaServers"]["expr"]

"""The lab's Prometheus (docs/monitoring.md): both balancers scraped through their management bind,
the shipped rules quiet on a healthy lab, and every query of the shipped dashboard answered.

scripts/lab.sh runs this file first, on the lab `make lab` left; the fault tests then check that
their alerts fire (RtmpedgeNoMediaServer, RtmpedgePublishersRefused).
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from conftest import ROOT, lab, prometheus_api, prometheus_query, wait_for

JOBS = ("rtmpedge-haproxy", "rtmpedge-balancer")
DASHBOARD = ROOT / "roles/monitoring/files/rtmpedge-dashboard.json"


@pytest.fixture(scope="module")
def scraped(docker_client):
    """Every balancer up in both jobs, and every rule group evaluated since."""
    wanted = {(job, lb) for job in JOBS for lb in lab.BALANCERS}

    def all_up() -> bool:
        found = {(r["metric"]["job"], r["metric"]["instance"]) for r in prometheus_query(docker_client, "up == 1")}
        return wanted <= found

    wait_for(all_up, 120, f"Prometheus scraping {sorted(wanted)}")
    return docker_client


def _last_evaluation(client) -> float:
    """When Prometheus last evaluated the shipped rules (its own clock, Unix seconds)."""
    groups = [g for g in prometheus_api(client, "rules")["groups"] if g["name"] == "rtmpedge-balancers"]
    assert groups, "the shipped rules are not loaded"
    whole, _dot, fraction = groups[0]["lastEvaluation"].rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}+00:00").timestamp()


def test_a_healthy_lab_fires_no_alert(scraped):
    # 40 s of rule evaluations with every target up, longer than any `for:` the lab sets: a
    # condition that holds on a healthy lab would have fired within the minute looked at.
    since = float(prometheus_api(scraped, "query", query="time()")["result"][1])
    wait_for(lambda: _last_evaluation(scraped) >= since + 40, 180, "40 s of rule evaluations")
    firing = prometheus_query(scraped, 'count_over_time(ALERTS{alertstate="firing"}[1m])')
    assert not firing, f"alerts fired on a healthy lab: {[r['metric'] for r in firing]}"
    pending = prometheus_query(scraped, "ALERTS")
    assert not pending, f"alerts pending on a healthy lab: {[r['metric'] for r in pending]}"


def _dashboard_queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queries = [(p["title"], t["expr"]) for p in panels for t in p["targets"]]
    assert len(queries) >= len(panels) > 0
    return queries


QUERIES = _dashboard_queries()


@pytest.mark.parametrize(("title", "expr"), QUERIES, ids=[f"{n}-{title}" for n, (title, _e) in enumerate(QUERIES)])
def test_every_dashboard_query_returns_data(scraped, title, expr):
    # Grafana's variables as it fills them: every balancer, its default rate window.
    query = expr.replace("$balancer", ".+").replace("$__rate_interval", "1m")
    result = prometheus_query(scraped, query)
    assert result, f"panel {title!r}: {query} returned nothing"
    instances = {r["metric"].get("instance") for r in result}
    assert instances - {None} <= set(lab.BALANCERS), instances

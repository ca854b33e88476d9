"""The balancer's own metrics (module_utils/balancer_metrics.py, service rtmpedge-metrics) against a
real HAProxy master-worker on loopback, running the role's configuration and scraped as Prometheus
scrapes it: through the management bind at /rtmpedge/metrics, with the management credentials.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request

import pytest
from ansible_collections.rtmpedge.balancer.plugins.module_utils import balancer_metrics
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import run, show_proc
from haproxy_render import render, with_local_lists
from harness.loopback import Listener
from harness.rtmp import C0C1
from loopback import free_port, wait_until

AUTH = ("prom", "scrape-me")


class Balancer:
    def __init__(self, haproxy: str, tmp):
        self.tmp = tmp
        self.media = [Listener(), Listener()]
        self.rtmp, self.health, self.management, self.exporter = (free_port() for _n in range(4))
        self.admin, self.master = str(tmp / "admin.sock"), str(tmp / "master.sock")
        hosts = {
            f"media{n}": {"rtmp_address": "127.0.0.1", "rtmp_port": m.port, "rtmp_maxconn": 5}
            for n, m in enumerate(self.media)
        }
        config = render(
            hosts,
            haproxy_rtmp_binds=[{"address": "127.0.0.1", "port": self.rtmp}],
            haproxy_health_bind={"address": "127.0.0.1", "port": self.health},
            haproxy_management_bind={"address": "127.0.0.1", "port": self.management},
            haproxy_management_user=AUTH[0],
            haproxy_management_password=AUTH[1],
            haproxy_metrics_exporter_port=self.exporter,
            haproxy_admin_socket=self.admin,
            haproxy_server_state_file=str(tmp / "server-state"),
            haproxy_health_check="tcp",
        )
        config = with_local_lists(config, tmp).replace("    chroot /var/lib/haproxy\n", "")
        config = config.replace("    user haproxy\n    group haproxy\n", "").replace(" group haproxy level", " level")
        self.config = tmp / "haproxy.cfg"
        self.config.write_text(config)
        self.proc = subprocess.Popen(
            [haproxy, "-W", "-S", self.master, "-f", str(self.config)], stderr=subprocess.DEVNULL
        )
        wait_until(lambda: show_proc(self.master)["workers"], what="HAProxy's master and first worker")
        self.fact = tmp / "rtmpedge_haproxy.fact"
        self.fact.write_text(json.dumps({"admin_socket": self.admin, "master_socket": self.master}))
        self.server = balancer_metrics.make_server(
            "127.0.0.1", self.exporter, str(self.fact), f"http://127.0.0.1:{self.health}/"
        )
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def scrape(self, auth=AUTH) -> dict[str, float]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.management}/rtmpedge/metrics")
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read().decode()
        return {
            line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line and not line.startswith("#")
        }

    def sessions(self) -> dict:
        request = urllib.request.Request(f"http://127.0.0.1:{self.management}/rtmpedge/sessions")
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(AUTH).encode()).decode())
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def reload(self) -> None:
        os.kill(self.proc.pid, signal.SIGUSR2)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def balancer(haproxy_bin, tmp_path):
    lb = Balancer(haproxy_bin, tmp_path)
    yield lb
    lb.close()


def _waited(lb: Balancer, condition, what: str) -> dict[str, float]:
    seen = {}

    def met() -> bool:
        seen.update(lb.scrape())
        return condition(seen)

    wait_until(met, what=f"{what} (last scrape: {seen})")
    return seen


def test_a_healthy_balancer(balancer):
    metrics = _waited(balancer, lambda m: m.get('rtmpedge_health_up{proxy="rtmp_media"}') == 1, "health up")
    assert metrics["rtmpedge_haproxy_master_up"] == 1
    assert metrics["rtmpedge_haproxy_workers"] == 1
    assert metrics["rtmpedge_haproxy_old_workers"] == 0
    assert metrics['rtmpedge_haproxy_old_worker_sessions{proxy="rtmp_media"}'] == 0
    assert metrics["rtmpedge_haproxy_config_stale"] == 0
    assert metrics["rtmpedge_haproxy_failed_reloads_total"] == 0
    assert metrics['rtmpedge_health_drained{proxy="rtmp_media"}'] == 0
    assert metrics['rtmpedge_health_free_slots{proxy="rtmp_media"}'] == 10


def test_the_scrape_needs_the_management_credentials(balancer):
    with pytest.raises(urllib.error.HTTPError) as refused:
        balancer.scrape(auth=None)
    assert refused.value.code == 401


def test_an_old_worker_keeping_a_stream_is_counted_with_its_session(balancer):
    _waited(balancer, lambda m: m.get('rtmpedge_health_up{proxy="rtmp_media"}') == 1, "health up")
    publisher = socket.create_connection(("127.0.0.1", balancer.rtmp), timeout=5)
    publisher.sendall(C0C1)
    try:
        _waited(
            balancer,
            lambda m: m.get('rtmpedge_health_free_slots{proxy="rtmp_media"}') == 9,
            "the stream on a media server",
        )
        balancer.reload()
        metrics = _waited(balancer, lambda m: m.get("rtmpedge_haproxy_old_workers") == 1, "the old worker")
        assert metrics["rtmpedge_haproxy_workers"] == 2
        assert metrics['rtmpedge_haproxy_old_worker_sessions{proxy="rtmp_media"}'] == 1
        assert metrics["rtmpedge_haproxy_config_stale"] == 0, "the reload succeeded"
        assert metrics["rtmpedge_haproxy_reloads_total"] == 1
    finally:
        publisher.close()
        for media in balancer.media:  # the media server ends its side too (the Listener holds it open)
            for peer in media.peers:
                peer.close()
    _waited(balancer, lambda m: m.get("rtmpedge_haproxy_old_workers") == 0, "the old worker leaving with its stream")


def test_sessions_in_every_worker_for_the_scale_in_guard(balancer):
    assert balancer.sessions() == {"complete": True, "servers": {"media0": 0, "media1": 0}}
    publisher = socket.create_connection(("127.0.0.1", balancer.rtmp), timeout=5)
    publisher.sendall(C0C1)
    try:
        wait_until(lambda: sum(balancer.sessions()["servers"].values()) == 1, what="the stream in the sessions")
        balancer.reload()
        _waited(balancer, lambda m: m.get("rtmpedge_haproxy_old_workers") == 1, "the old worker")
        # The stream is on the old worker now: the current worker's stats alone would say 0.
        document = balancer.sessions()
        assert document["complete"] and sum(document["servers"].values()) == 1, document
    finally:
        publisher.close()
        for media in balancer.media:
            for peer in media.peers:
                peer.close()


def test_a_failed_reload_leaves_haproxy_on_an_older_configuration_and_says_so(balancer):
    balancer.config.write_text(balancer.config.read_text() + "\nfrontend broken\n    not-a-keyword\n")
    balancer.reload()
    metrics = _waited(balancer, lambda m: m.get("rtmpedge_haproxy_failed_reloads_total") == 1, "the failed reload")
    assert metrics["rtmpedge_haproxy_config_stale"] == 1
    assert metrics["rtmpedge_haproxy_workers"] == 1, "the running worker keeps serving"
    assert metrics['rtmpedge_health_up{proxy="rtmp_media"}'] == 1


def test_a_drained_balancer_is_down_on_purpose(balancer):
    _waited(balancer, lambda m: m.get('rtmpedge_health_up{proxy="rtmp_media"}') == 1, "health up")
    run(balancer.admin, f"add acl {balancer.tmp / 'balancer-drained.acl'} drained")
    metrics = _waited(balancer, lambda m: m.get('rtmpedge_health_up{proxy="rtmp_media"}') == 0, "health 503")
    assert metrics['rtmpedge_health_drained{proxy="rtmp_media"}'] == 1


def test_no_master_and_no_health_endpoint_are_zeros_not_errors(tmp_path):
    fact = tmp_path / "fact"
    fact.write_text(json.dumps({"master_socket": str(tmp_path / "gone.sock")}))
    text = balancer_metrics.collect(str(fact), f"http://127.0.0.1:{free_port()}/")
    assert "rtmpedge_haproxy_master_up 0" in text and 'rtmpedge_health_up{proxy="rtmp_media"} 0' in text
    assert 'rtmpedge_health_drained{proxy="rtmp_media"} 0' in text, "down, not drained on purpose"
    assert "rtmpedge_haproxy_master_up 0" in balancer_metrics.collect(str(tmp_path / "no-fact"), "")
    assert balancer_metrics.sessions_document(str(fact))["complete"] is False


def test_uptimes_read_as_seconds():
    assert balancer_metrics.uptime_seconds("0d00h01m05s") == 65
    assert balancer_metrics.uptime_seconds("2d03h00m00s") == 2 * 86400 + 3 * 3600
    assert balancer_metrics.uptime_seconds("garbage") == 0

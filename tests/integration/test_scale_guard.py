"""module_utils/scale_guard.py against a moto server (with the harness's ECS task protection,
tests/harness/cloud.py) and balancers' sessions served by real HTTP servers on loopback.

Busy on any balancer: protected. Idle on all of them: released. One balancer unreadable: nothing
released, the busy still protected. ECS calls go 10 tasks at a time; instances outside an Auto
Scaling group are left alone; AWS failures name the source.
"""

from __future__ import annotations

import base64
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.sources import discover_all
from ansible_collections.rtmpedge.balancer.plugins.module_utils.scale_guard import (
    GuardError,
    decide,
    guard_from_job,
)
from harness import cloud
from harness.loopback import free_port
from moto.moto_api import state_manager
from moto.server import ThreadedMotoServer


class Balancer:
    """A balancer's /rtmpedge/sessions, as its metrics service answers it (or does not)."""

    def __init__(self, name: str):
        self.name, self.user, self.password = name, "prom", "scrape"
        self.sessions: dict[str, int] = {}
        self.answering = True
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # http.server calls it by this name
                expected = "Basic " + base64.b64encode(f"{outer.user}:{outer.password}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_error(401)
                    return
                if not outer.answering:
                    self.send_error(503)
                    return
                body = json.dumps({"complete": True, "servers": outer.sessions}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def peer(self) -> dict:
        url = f"http://127.0.0.1:{self.server.server_address[1]}/rtmpedge/sessions"
        return {"name": self.name, "url": url, "user": self.user, "password": self.password}


@pytest.fixture(scope="module")
def moto():
    cloud.install_fidelity()
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 1_000_000})
    random.seed(7)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    cloud.bootstrap(endpoint, instances=3, tasks=12)
    cloud.schedule_services()  # the service's 12 tasks (moto runs none by itself)
    yield endpoint
    server.stop()


def _discovery(endpoint: str) -> dict:
    common = {"region": cloud.REGION, "endpoint_url": endpoint, **cloud.KEYS}
    return {
        "sources": [
            {"type": "aws_ecs", "name": "fargate", "cluster": cloud.CLUSTER, "container_name": "nginx-rtmp", **common},
            {"type": "aws_ec2", "name": "asg", "tags": {"role": "rtmp-media"}, "port_tag": "rtmp_port", **common},
        ]
    }


def _fleet(endpoint: str):
    config = _discovery(endpoint)
    servers, _warnings = discover_all(config["sources"], False, "fail")
    return config, servers


def _protection(endpoint: str) -> tuple[dict[str, bool], dict[str, bool]]:
    aws = cloud.clients(endpoint)
    group = aws["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[cloud.ASG])["AutoScalingGroups"][0]
    instances = {i["InstanceId"]: i["ProtectedFromScaleIn"] for i in group["Instances"]}
    arns = aws["ecs"].list_tasks(cluster=cloud.CLUSTER)["taskArns"]
    tasks = {}
    for start in range(0, len(arns), 10):
        answer = aws["ecs"].get_task_protection(cluster=cloud.CLUSTER, tasks=arns[start : start + 10])
        tasks |= {t["taskArn"]: t["protectionEnabled"] for t in answer["protectedTasks"]}
    return instances, tasks


def _names(servers) -> tuple[dict[str, str], dict[str, str]]:
    tasks = {s.name: s.meta["rtmp_task_arn"] for s in servers if "rtmp_task_arn" in s.meta}
    instances = {s.name: s.meta["rtmp_instance_id"] for s in servers if "rtmp_instance_id" in s.meta}
    return tasks, instances


def test_decide_protects_what_is_busy_anywhere_and_releases_only_with_every_view():
    views = {"lb1": {"a": 1, "b": 0}, "lb2": {"b": 0, "c": 2}}
    assert decide(["a", "b", "c", "d"], views, {}).protect == ["a", "c"]
    assert decide(["a", "b", "c", "d"], views, {}).release == ["b", "d"]
    held = decide(["a", "b", "c", "d"], views, {"lb3": "timed out"})
    assert held.protect == ["a", "c"] and held.release == []


def test_busy_servers_are_protected_and_idle_ones_released_across_balancers(moto):
    config, servers = _fleet(moto)
    tasks, instances = _names(servers)
    assert len(tasks) == 12 and len(instances) == 3
    lb1, lb2 = Balancer("lb1"), Balancer("lb2")
    busy_task, busy_instance, other_task = sorted(tasks)[0], sorted(instances)[0], sorted(tasks)[11]
    lb1.sessions = {busy_task: 1, busy_instance: 0}
    lb2.sessions = {busy_instance: 2, other_task: 1}  # streams on lb2 count as much as lb1's
    guard = {"peers": [lb1.peer(), lb2.peer()], "minutes": 5}
    summary = guard_from_job(guard, config, servers)
    assert summary["unreadable"] == {} and summary["failures"] == []
    protected_instances, protected_tasks = _protection(moto)
    assert {i for i, on in protected_instances.items() if on} == {instances[busy_instance]}
    assert {t for t, on in protected_tasks.items() if on} == {tasks[busy_task], tasks[other_task]}
    # The streams end: everything is released on the next run, 12 tasks read 10 at a time.
    lb1.sessions, lb2.sessions = {}, {}
    guard_from_job(guard, config, servers)
    protected_instances, protected_tasks = _protection(moto)
    assert not any(protected_instances.values()) and not any(protected_tasks.values())


def test_an_unreadable_balancer_holds_every_release_but_not_protection(moto):
    config, servers = _fleet(moto)
    tasks, _instances = _names(servers)
    lb1, lb2 = Balancer("lb1"), Balancer("lb2")
    first, second = sorted(tasks)[:2]
    lb1.sessions = {first: 1, second: 1}
    guard = {"peers": [lb1.peer(), lb2.peer()], "minutes": 5}
    guard_from_job(guard, config, servers)
    lb1.sessions = {second: 1}  # `first` is idle now, but lb2 cannot be read
    lb2.answering = False
    summary = guard_from_job(guard, config, servers)
    assert set(summary["unreadable"]) == {"lb2"} and "503" in summary["unreadable"]["lb2"]
    assert summary["released"] == []
    _instances_now, protected_tasks = _protection(moto)
    assert protected_tasks[tasks[first]] and protected_tasks[tasks[second]], "released without lb2's view"
    lb2.answering = True
    guard_from_job(guard, config, servers)
    _instances_now, protected_tasks = _protection(moto)
    assert not protected_tasks[tasks[first]] and protected_tasks[tasks[second]]
    lb1.sessions = {}
    guard_from_job(guard, config, servers)


def test_wrong_credentials_count_as_unreadable(moto):
    config, servers = _fleet(moto)
    lb1 = Balancer("lb1")
    peer = {**lb1.peer(), "password": "wrong"}
    summary = guard_from_job({"peers": [peer]}, config, servers)
    assert "401" in summary["unreadable"]["lb1"] and summary["released"] == []


def test_aws_failures_name_the_source(moto):
    config, servers = _fleet(moto)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    broken = {"sources": [{**s, "endpoint_url": down, "max_attempts": 1, "timeout": 2} for s in config["sources"]]}
    lb1 = Balancer("lb1")
    lb1.sessions = {servers[0].name: 1}
    with pytest.raises(GuardError, match="media server source fargate: UpdateTaskProtection"):
        guard_from_job({"peers": [lb1.peer()]}, broken, servers)


def test_bad_guard_settings_are_refused():
    with pytest.raises(GuardError, match="minutes between 1 and 2880"):
        guard_from_job({"peers": [{"name": "lb1", "url": "http://127.0.0.1:1/x"}], "minutes": 5000}, {}, [])
    with pytest.raises(GuardError, match="unusable"):
        guard_from_job({"peers": [{"nom": "lb1"}]}, {}, [])
    with pytest.raises(GuardError, match="http"):
        guard_from_job({"peers": [{"name": "lb1", "url": "file:///etc/passwd"}]}, _discovery("http://127.0.0.1:1"), [])

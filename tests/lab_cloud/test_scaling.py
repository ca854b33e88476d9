"""The cloud lab (make lab CLOUD=aws, docs/scaling.md): an Auto Scaling group and an ECS service whose
machines are real nginx-rtmp containers, discovered through a local moto server by the balancers'
reconcile job, which also runs the scale-in guard on its timer.

- scale-out is picked up at runtime, with no reload;
- a scale-in with 2 busy servers of 4 terminates only the 2 idle ones and cuts no stream, for the
  Auto Scaling group and for the ECS service;
- protection is released once the streams ended;
- a balancer whose sessions cannot be read stops every release.

Run by scripts/lab.sh after `make lab CLOUD=aws`. Each test leaves the cloud at 2 instances and 2 tasks.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))

import lab  # noqa: E402 - scripts/lab.py, the lab's one definition
from harness import cloud  # noqa: E402
from harness.containers import admin_command, dexec  # noqa: E402
from harness.wait import wait_until  # noqa: E402

LB1, LB2 = "rtmpedge-lb1", "rtmpedge-lb2"
GUARD_RUN = 90  # seconds: a few runs of the reconcile timer, on a busy machine


@pytest.fixture(scope="module")
def docker_client():
    client = lab.docker.from_env()
    if not lab.cloud_lab(client):
        pytest.fail("the cloud lab is not up: make lab CLOUD=aws")
    return client


@pytest.fixture(scope="module")
def aws():
    return cloud.clients(lab.CLOUD_ENDPOINT)


def _asg_instances(aws) -> dict[str, bool]:
    """{instance id: protected from scale-in} of the group's instances."""
    group = aws["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[cloud.ASG])["AutoScalingGroups"][0]
    return {i["InstanceId"]: i["ProtectedFromScaleIn"] for i in group["Instances"]}


def _tasks(aws) -> dict[str, bool]:
    """{task ARN: protected} of the service's running tasks."""
    arns = aws["ecs"].list_tasks(cluster=cloud.CLUSTER)["taskArns"]
    if not arns:
        return {}
    described = aws["ecs"].describe_tasks(cluster=cloud.CLUSTER, tasks=arns)["tasks"]
    running = [
        t["taskArn"] for t in described if t["lastStatus"] == "RUNNING" and t.get("group", "").startswith("service:")
    ]
    protection = {}
    for start in range(0, len(running), 10):
        answer = aws["ecs"].get_task_protection(cluster=cloud.CLUSTER, tasks=running[start : start + 10])
        protection |= {t["taskArn"]: t["protectionEnabled"] for t in answer["protectedTasks"]}
    return protection


def _of_kind(aws, kind: str) -> dict[str, bool]:
    """{machine id (instance id, task id): protected} of the group ("asg") or the service ("ecs")."""
    machines = _asg_instances(aws) if kind == "asg" else _tasks(aws)
    return {m.rsplit("/", 1)[-1]: on for m, on in machines.items()}


def _server_of(machine: str) -> str:
    """The backend's name of an instance (its id) or a task (cluster-taskid)."""
    return machine if machine.startswith("i-") else f"{cloud.CLUSTER}-{machine.rsplit('/', 1)[-1]}"


def _up_everywhere(names: set[str]) -> bool:
    info = lab.backend_info()
    for lb in lab.BALANCERS:
        servers = {s["name"]: s for s in info[lb].get("servers", [])}
        if not all(servers.get(n, {}).get("status") == "UP" for n in names):
            return False
    return True


def _workers() -> dict[str, list[str]]:
    client = lab.docker.from_env()
    return {lb: lab.workers(client.containers.get(lb)) for lb in lab.BALANCERS}


def _scale(aws, instances: int, tasks: int) -> None:
    aws["autoscaling"].set_desired_capacity(AutoScalingGroupName=cloud.ASG, DesiredCapacity=instances)
    aws["ecs"].update_service(cluster=cloud.CLUSTER, service=cloud.SERVICE, desiredCount=tasks)


def _machines(aws) -> set[str]:
    return {_server_of(i) for i in _asg_instances(aws)} | {_server_of(t) for t in _tasks(aws)}


def _publish(client, keys: list[str]) -> None:
    host = lab.address(client, LB1, lab.PUBLIC)
    lab.install_publisher(client)
    code, _out, err = lab.publisher(client, "start", *(f"{k}=rtmp://{host}:1935/live/{k}" for k in keys))
    assert code == 0, err


def _stop(client, keys: list[str]) -> dict:
    _code, out, _err = lab.publisher(client, "stop", *keys)
    return json.loads(out)


def _states(client, keys: list[str]) -> dict[str, str]:
    _code, out, _err = lab.publisher(client, "status", *keys)
    return {k: v["state"] for k, v in json.loads(out).items()}


@pytest.fixture
def four_of_each(docker_client, aws):
    """4 instances and 4 tasks, every one UP on both balancers; back to 2 and 2 afterwards."""
    before = _workers()
    _scale(aws, 4, 4)
    wait_until(lambda: len(_machines(aws)) == 8, 60, "8 machines in the API")
    wait_until(lambda: _up_everywhere(_machines(aws)), GUARD_RUN, "every machine UP on both balancers")
    assert _workers() == before, "picking up the scale-out reloaded HAProxy"
    yield
    _scale(aws, 2, 2)
    wait_until(lambda: len(_machines(aws)) == 4, GUARD_RUN, "the cloud back at 2 instances and 2 tasks")


def test_scale_out_is_picked_up_at_runtime(docker_client, aws, four_of_each):
    # The fixture's assertions: 8 machines UP on both balancers, with the same workers as before.
    assert len(_machines(aws)) == 8


@pytest.mark.parametrize("kind", ["asg", "ecs"])
def test_scale_in_with_two_busy_of_four_cuts_no_stream(docker_client, aws, four_of_each, kind):
    """Two publishers on two of the four machines of one kind (maxconn 1 each: two servers), then a
    scale-in to 2: only the idle ones go, no stream is cut; after the streams end, protection is released."""
    others = {_server_of(m) for m in (_tasks(aws) if kind == "asg" else _asg_instances(aws))}
    # Streams only to this kind: the other kind's servers in maintenance on lb1 for the test.
    for server in others:
        admin_command(LB1, f"set server rtmp_media/{server} state maint")
    keys = [f"{kind}-busy-{n}" for n in range(2)]
    try:
        _publish(docker_client, keys)
        wait_until(lambda: set(keys) <= set(lab.streams(docker_client)), 60, "both streams on media servers")
        busy = {lab.streams(docker_client)[k][0] for k in keys}
        by_container = {c.name: c.labels[cloud.LABEL] for c in lab.cloud_containers(docker_client)}
        busy_machines = {by_container[name] for name in busy}

        wait_until(
            lambda: {m for m, on in _of_kind(aws, kind).items() if on} == busy_machines,
            GUARD_RUN,
            f"exactly the busy {kind} machines protected",
        )
        if kind == "asg":
            aws["autoscaling"].set_desired_capacity(AutoScalingGroupName=cloud.ASG, DesiredCapacity=2)
        else:
            aws["ecs"].update_service(cluster=cloud.CLUSTER, service=cloud.SERVICE, desiredCount=2)
        wait_until(lambda: set(_of_kind(aws, kind)) == busy_machines, 60, f"the scale-in leaving the busy {kind} only")
        assert _states(docker_client, keys) == dict.fromkeys(keys, "running"), "the scale-in cut a stream"
    finally:
        ended = _stop(docker_client, keys)
        for server in others:
            admin_command(LB1, f"set server rtmp_media/{server} state ready")
    assert all(e["state"] == "stopped" for e in ended.values()), ended
    wait_until(
        lambda: not any(_of_kind(aws, kind).values()),
        GUARD_RUN,
        f"the {kind} machines released once their streams ended",
    )


def test_an_unreadable_balancer_stops_every_release(docker_client, aws):
    keys = ["held-1"]
    _publish(docker_client, keys)
    wait_until(lambda: "held-1" in lab.streams(docker_client), 60, "the stream on a media server")
    wait_until(
        lambda: any(_asg_instances(aws).values()) or any(_tasks(aws).values()), GUARD_RUN, "its server protected"
    )
    dexec(LB2, "systemctl stop rtmpedge-metrics")  # lb2's sessions cannot be read any more
    try:
        _stop(docker_client, keys)
        # Long enough for every balancer's guard to run twice; the server must stay protected.
        started = time.monotonic()
        wait_until(
            lambda: "releases held" in dexec(LB1, "journalctl -t rtmpedge-reconcile --since '-2min' -o cat").stdout,
            GUARD_RUN,
            "lb1's guard saying it holds releases",
        )
        assert any(_asg_instances(aws).values()) or any(_tasks(aws).values()), (
            f"released although lb2 could not be read ({time.monotonic() - started:.0f}s after its exporter stopped)"
        )
    finally:
        dexec(LB2, "systemctl start rtmpedge-metrics")
    wait_until(
        lambda: not any(_asg_instances(aws).values()) and not any(_tasks(aws).values()),
        GUARD_RUN,
        "the release once every balancer can be read again",
    )

"""Bench part 9, on the cloud lab (make lab CLOUD=aws): from a new instance running in the API to its
first stream through a balancer, with the reconcile job's timer at the role's default interval.

Every other media server holds a stream (maxconn 1, the design's Fargate tasks), so a new session
can only go to the new server. Each round: the Auto Scaling group grows by one; the clock starts when
the API says the new instance is running, and the figures are when its container answered, when the
reconcile job added it to lb1, when its health check passed, and when an RTMP handshake through lb1
first completed (it can only land there). Then the group shrinks back: the guard protects the held
servers, so the new, idle one goes. Each round starts at a random point of the timer's interval.
"""

from __future__ import annotations

import random
import statistics
import time

from continuity import summary
from harness import cloud
from harness.rtmp import handshake
from labctl import lab

LB1 = "rtmpedge-lb1"
TIMER_DEFAULT, TIMER_SECONDS = "30s", 30  # the reconcile role's reconcile_timer_interval


def _instances(aws) -> dict[str, str]:
    group = aws["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[cloud.ASG])["AutoScalingGroups"][0]
    return {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}


def _until(predicate, seconds: float, what: str, step: float = 0.05) -> float:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: timed out after {seconds:g}s waiting for {what}")
        time.sleep(step)
    return time.monotonic()


def _status(client, name: str) -> str | None:
    """The server's status on lb1 (its stats CSV: a fast read), None while it is not in the backend."""
    row = lab.balancer_stats(client, LB1).get(("rtmp_media", name))
    return row["status"] if row else None


def round_once(client, aws) -> dict:
    # Rounds back to back would fall at the same point of the job's timer every time.
    time.sleep(random.uniform(0, TIMER_SECONDS))  # noqa: S311 - a delay, not a secret
    before = set(_instances(aws))
    desired = len(before) + 1
    aws["autoscaling"].set_desired_capacity(AutoScalingGroupName=cloud.ASG, DesiredCapacity=desired)
    new: list[str] = []

    def running() -> bool:
        new[:] = [i for i, state in _instances(aws).items() if i not in before and state == "InService"]
        return bool(new)

    t0 = _until(running, 60, "the new instance running in the API")
    instance = new[0]
    container = f"rtmpedge-cloud-{instance}"
    t_container = _until(
        lambda: any(c.name == container and c.status == "running" for c in lab.cloud_containers(client)),
        60,
        "its container",
    )
    lab.wait_for_stat(client, [container])
    t_stat = time.monotonic()
    t_added = _until(lambda: _status(client, instance) is not None, 120, "lb1 to add it", step=0.1)
    t_up = _until(lambda: _status(client, instance) == "UP", 60, "its health check", step=0.1)
    host = lab.address(client, LB1, lab.PUBLIC)
    t_stream = _until(lambda: handshake(host, timeout=1), 60, "a handshake through lb1", step=0.05)
    aws["autoscaling"].set_desired_capacity(AutoScalingGroupName=cloud.ASG, DesiredCapacity=desired - 1)
    _until(lambda: instance not in _instances(aws), 60, "the idle new instance scaled in again", step=0.2)
    # Gone from lb1 (or DOWN there) before the next round, so that round's new server is the only free one.
    _until(lambda: _status(client, instance) in (None, "DOWN", "MAINT"), 120, "lb1 to let it go", step=0.5)
    return {
        "container_s": t_container - t0,
        "answering_s": t_stat - t0,
        "added_s": t_added - t0,
        "up_s": t_up - t0,
        "first_stream_s": t_stream - t0,
    }


def measure(rounds: int, say, site_yml) -> dict:
    """Part 9's rounds; the reconcile timer is put at its default for them and back afterwards."""
    client = lab.docker.from_env()
    if not lab.cloud_lab(client):
        raise SystemExit("bench: part 9 needs the cloud lab (make lab CLOUD=aws)")
    aws = cloud.clients(lab.CLOUD_ENDPOINT)
    say(f"part 9: the reconcile timer at its default ({TIMER_DEFAULT}) on the balancers")
    site_yml(["--limit", "balancers", "-e", f"reconcile_timer_interval={TIMER_DEFAULT}"])
    keys: list[str] = []

    def hold() -> None:
        """A stream on every server but a new one: lb1's only free slot is the next instance."""
        servers = [s for s in lab.backend_info()[LB1]["servers"] if s["status"] == "UP"]
        wanted = len(servers) - len(keys)
        fresh = [f"hold-{len(keys) + n}" for n in range(max(0, wanted))]
        if fresh:
            host = lab.address(client, LB1, lab.PUBLIC)
            lab.install_publisher(client)
            lab.publisher(client, "start", *(f"{k}=rtmp://{host}:1935/live/{k}" for k in fresh))
            keys.extend(fresh)
        _until(lambda: len(set(keys) & set(lab.streams(client))) == len(keys), 90, "the held streams", step=0.5)

    rounds_done = []
    try:
        hold()
        for n in range(rounds):
            say(f"part 9: round {n + 1} of {rounds}: one more instance, until its first stream through lb1")
            rounds_done.append(round_once(client, aws))
            alive = set(keys) & set(lab.streams(client))
            if alive != set(keys):
                raise RuntimeError(f"bench: held streams were cut: {sorted(set(keys) - alive)}")
    finally:
        if keys:
            lab.publisher(client, "stop", *keys)
        site_yml(["--limit", "balancers"])
    figures = {key: summary([r[key] for r in rounds_done]) for key in rounds_done[0]}
    figures["rounds"] = rounds
    figures["timer"] = TIMER_DEFAULT
    figures["median_first_stream_s"] = statistics.median(r["first_stream_s"] for r in rounds_done)
    return figures

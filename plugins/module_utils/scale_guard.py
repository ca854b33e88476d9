# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scale-in guard: the cloud never terminates a media server that carries a stream (docs/scaling.md).

Each balancer sees only its own streams, so the decision reads every balancer: the
sessions each one's workers (old ones included) carry per media server, from the
balancer's own metrics service (`/rtmpedge/sessions` on its management bind). A server
with a session on any balancer is protected from scale-in: an EC2 Auto Scaling
instance with SetInstanceProtection, an ECS service task with UpdateTaskProtection
(renewed on every run, so it also lapses by itself if the guard stops). A server idle
on every balancer is released; when any balancer cannot be read, nothing is released
(its streams are unknown), while what is known to be busy is still protected.

Plain boto3 calls, with the same connection options (region, credentials, endpoint)
as the discovery source that found the servers. Pure Python; no Ansible.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.aws import aws_call, aws_client
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import DiscoveryError, MediaServer

ECS_BATCH = 10  # UpdateTaskProtection and GetTaskProtection take at most 10 tasks a call
ASG_BATCH = 50  # SetInstanceProtection: at most 50 instances a call


class GuardError(Exception):
    """The guard could not do what it decided (an AWS call failed)."""


@dataclass
class Peer:
    """A balancer to read: its name and its management bind's sessions URL, with credentials."""

    name: str
    url: str
    user: str = ""
    password: str = ""


@dataclass
class Decision:
    """What to protect and what to release, by media server name, and why nothing may be released."""

    protect: list[str] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # balancer -> why


def read_sessions(peer: Peer, timeout: float) -> dict[str, int]:
    """{server: sessions in every worker} from one balancer; raises GuardError when it cannot be read."""
    if not peer.url.startswith(("http://", "https://")):
        raise GuardError(f"{peer.name}: its sessions URL must be http(s), got {peer.url!r}")
    request = urllib.request.Request(peer.url)  # noqa: S310 - scheme checked above
    if peer.user:
        token = base64.b64encode(f"{peer.user}:{peer.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    # An opener, not urlopen: the same urllib, with no proxy from the environment (private addresses).
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as answer:
            data = json.loads(answer.read(64 * 1024 * 1024))
    except (OSError, ValueError) as e:
        raise GuardError(f"{peer.name}: cannot read its sessions at {peer.url}: {e}") from e
    if not isinstance(data, dict) or not data.get("complete") or not isinstance(data.get("servers"), dict):
        raise GuardError(f"{peer.name}: its sessions are incomplete (a worker or the master did not answer)")
    return {str(name): int(count) for name, count in data["servers"].items()}


def decide(servers: list[str], views: dict[str, dict[str, int]], unreadable: dict[str, str]) -> Decision:
    """Busy on any balancer: protect. Idle on every balancer, all of them read: release."""
    busy = {name for view in views.values() for name, count in view.items() if count > 0}
    decision = Decision(unreadable=dict(unreadable))
    decision.protect = sorted(name for name in servers if name in busy)
    if not unreadable:
        decision.release = sorted(name for name in servers if name not in busy)
    return decision


def read_all(peers: list[Peer], timeout: float) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
    views, unreadable = {}, {}
    for peer in peers:
        try:
            views[peer.name] = read_sessions(peer, timeout)
        except GuardError as e:
            unreadable[peer.name] = str(e)
    return views, unreadable


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def guard_ecs(label: str, options: dict, decision: Decision, tasks: dict[str, str], minutes: int) -> dict:
    """Protect the busy tasks for `minutes` (renewed every run), release the idle ones that are protected.

    `tasks` maps server names to task ARNs of the source's cluster. Returns what was done.
    """
    client = aws_client(label, options, "ecs")
    cluster = options["cluster"]
    done = {"protected": [], "released": [], "failures": []}
    protect = [tasks[name] for name in decision.protect if name in tasks]
    for batch in _batches(protect, ECS_BATCH):
        answer = aws_call(
            label,
            "UpdateTaskProtection",
            client.update_task_protection,
            cluster=cluster,
            tasks=batch,
            protectionEnabled=True,
            expiresInMinutes=minutes,
        )
        done["protected"] += [t["taskArn"] for t in answer.get("protectedTasks", [])]
        done["failures"] += [f"{f.get('arn')}: {f.get('reason')}" for f in answer.get("failures", [])]
    idle = [tasks[name] for name in decision.release if name in tasks]
    for batch in _batches(idle, ECS_BATCH):
        current = aws_call(label, "GetTaskProtection", client.get_task_protection, cluster=cluster, tasks=batch)
        protected = [t["taskArn"] for t in current.get("protectedTasks", []) if t.get("protectionEnabled")]
        if protected:
            answer = aws_call(
                label,
                "UpdateTaskProtection",
                client.update_task_protection,
                cluster=cluster,
                tasks=protected,
                protectionEnabled=False,
            )
            done["released"] += [t["taskArn"] for t in answer.get("protectedTasks", [])]
            done["failures"] += [f"{f.get('arn')}: {f.get('reason')}" for f in answer.get("failures", [])]
    return done


def guard_ec2(label: str, options: dict, decision: Decision, instances: dict[str, str]) -> dict:
    """Set scale-in protection of Auto Scaling instances: on for busy ones, off for idle ones.

    `instances` maps server names to instance IDs; instances in no Auto Scaling group are left
    alone. Only what differs from the current protection is changed.
    """
    client = aws_client(label, options, "autoscaling")
    wanted = {instances[n]: True for n in decision.protect if n in instances}
    wanted |= {instances[n]: False for n in decision.release if n in instances}
    done = {"protected": [], "released": [], "failures": []}
    current: dict[str, tuple[str, bool]] = {}
    for batch in _batches(sorted(wanted), ASG_BATCH):
        answer = aws_call(
            label, "DescribeAutoScalingInstances", client.describe_auto_scaling_instances, InstanceIds=batch
        )
        for entry in answer.get("AutoScalingInstances", []):
            current[entry["InstanceId"]] = (entry["AutoScalingGroupName"], bool(entry.get("ProtectedFromScaleIn")))
    changes: dict[tuple[str, bool], list[str]] = {}
    for instance, protect in wanted.items():
        if instance in current and current[instance][1] != protect:
            changes.setdefault((current[instance][0], protect), []).append(instance)
    for (group, protect), members in sorted(changes.items()):
        for batch in _batches(sorted(members), ASG_BATCH):
            aws_call(
                label,
                "SetInstanceProtection",
                client.set_instance_protection,
                AutoScalingGroupName=group,
                InstanceIds=batch,
                ProtectedFromScaleIn=protect,
            )
            done["protected" if protect else "released"] += batch
    return done


def cloud_ids(servers: list[MediaServer]) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """By source label: {server name: task ARN} and {server name: instance ID}."""
    tasks: dict[str, dict[str, str]] = {}
    instances: dict[str, dict[str, str]] = {}
    for server in servers:
        if server.meta.get("rtmp_task_arn"):
            tasks.setdefault(server.source, {})[server.name] = server.meta["rtmp_task_arn"]
        elif server.meta.get("rtmp_instance_id"):
            instances.setdefault(server.source, {})[server.name] = server.meta["rtmp_instance_id"]
    return tasks, instances


def run_guard(sources: dict[str, dict], servers: list[MediaServer], peers: list[Peer], *, minutes: int, timeout: float):
    """Read every balancer, decide, and apply it to every AWS source's servers. Returns a summary.

    `sources` are the checked discovery source options by label (the servers' `source`).
    """
    views, unreadable = read_all(peers, timeout)
    decision = decide([s.name for s in servers], views, unreadable)
    tasks, instances = cloud_ids(servers)
    summary = {"protected": [], "released": [], "failures": [], "unreadable": decision.unreadable}
    try:
        for label, members in tasks.items():
            done = guard_ecs(label, sources[label], decision, members, minutes)
            for key in ("protected", "released", "failures"):
                summary[key] += done[key]
        for label, members in instances.items():
            done = guard_ec2(label, sources[label], decision, members)
            for key in ("protected", "released", "failures"):
                summary[key] += done[key]
    except DiscoveryError as e:
        raise GuardError(str(e)) from e
    summary["busy"] = decision.protect
    return summary


def guard_from_job(config: dict, discovery: dict, servers: list[MediaServer]) -> dict:
    """The reconcile job's entry: its `scale_guard` settings, the discovery configuration and the
    servers discovery found. Only the AWS sources' servers are guarded."""
    from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.registry import (  # noqa: PLC0415
        check_options,
    )
    from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.sources import (  # noqa: PLC0415
        source_label,
    )

    try:
        peers = [Peer(**peer) for peer in config["peers"]]
        minutes = int(config.get("minutes", 10))
        timeout = float(config.get("timeout", 5))
    except (KeyError, TypeError, ValueError) as e:
        raise GuardError(f"the job's scale_guard settings are unusable: {e}") from e
    if not peers or not 1 <= minutes <= 2880:
        raise GuardError("scale_guard needs at least one balancer to read and minutes between 1 and 2880")
    for peer in peers:
        if not peer.url.startswith(("http://", "https://")):
            raise GuardError(f"scale_guard: {peer.name}'s sessions URL must be http(s), got {peer.url!r}")
    sources = {}
    for index, options in enumerate(discovery.get("sources") or []):
        label = source_label(index, options)
        if isinstance(options, dict) and options.get("type") in ("aws_ecs", "aws_ec2"):
            sources[label] = check_options(label, options)
    guarded = [s for s in servers if s.source in sources]
    return run_guard(sources, guarded, peers, minutes=minutes, timeout=timeout)

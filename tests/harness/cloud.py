"""The cloud lab's AWS (make lab CLOUD=aws, docs/scaling.md): a moto server as the control plane, and a
"hypervisor" that runs a real nginx-rtmp container for every EC2 instance and ECS task moto runs.

    python -m harness.cloud serve --bind ADDRESS:PORT --network NAME      (scripts/lab.py starts it)

What moto 5.2 lacks, this harness adds to the moto server it starts (the product's calls stay plain
boto3 against it):

- ECS task scale-in protection, UpdateTaskProtection and GetTaskProtection, as AWS documents them:
  1 to 2880 minutes (default 120), reset by every call, at most 10 tasks a call, service tasks only
  (others fail with TASK_NOT_VALID, unknown ones with MISSING), expired protection reads as none;
- an ECS service scheduler: moto stores a service's desiredCount but never runs its tasks. Here a
  service gets tasks up to its desired count and, when that drops, loses unprotected tasks only;
- awsvpc task ENIs take their address from the task's subnet, as in AWS (moto picks any 10.x);
- Auto Scaling's own scale-in (honouring SetInstanceProtection) is moto's.

The hypervisor polls the backends: a running instance or task gets a container at its private IP on
the lab's media network, with the name rtmpedge-cloud-<id>; a terminated instance or stopped task
loses it. The containers speak PROXY protocol (the cloud lab's balancers send it, as for Fargate).
"""

from __future__ import annotations

import argparse
import datetime
import io
import logging
import tarfile
import threading
import time
from pathlib import Path

ACCOUNT = "123456789012"
REGION = "eu-west-1"
LABEL = "rtmpedge.cloud"
MEDIA_IMAGE = "rtmpedge/media-nginx-rtmp:bookworm"
NGINX_CONF = Path(__file__).resolve().parents[2] / "images" / "media-nginx-rtmp" / "nginx.conf"
# The cloud's address plan inside the lab's media network (10.213.0.0/16, scripts/lab.py).
VPC_CIDR = "10.213.0.0/16"
ASG_SUBNET = "10.213.64.0/18"  # EC2 instances: moto hands addresses out in order
ECS_SUBNET = "10.213.128.0/17"  # ECS task ENIs: random in the subnet (the seed makes them repeatable)
MAX_PROTECTION_MINUTES = 2880
DEFAULT_PROTECTION_MINUTES = 120
PROTECTION_BATCH = 10

log = logging.getLogger("cloud")


# --- ECS task protection, added to moto's ECS backend and responses ----------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _find_task(backend, cluster, ref: str):
    for task in backend.tasks.get(cluster.name, {}).values():
        if ref in (task.task_arn, task.task_arn.rsplit("/", 1)[-1]):
            return task
    return None


def _protection_of(backend, task) -> dict:
    expires = backend.rtmpedge_protection.get(task.task_arn)
    if expires is None or expires <= _now():
        backend.rtmpedge_protection.pop(task.task_arn, None)
        return {"taskArn": task.task_arn, "protectionEnabled": False}
    return {"taskArn": task.task_arn, "protectionEnabled": True, "expirationDate": expires}


def _checked_tasks(tasks) -> list[str]:
    from moto.ecs.exceptions import InvalidParameterException  # noqa: PLC0415 - moto is the harness's

    if not tasks or len(tasks) > PROTECTION_BATCH:
        raise InvalidParameterException(f"tasks must name 1 to {PROTECTION_BATCH} tasks, got {len(tasks or [])}")
    return list(tasks)


def _update_task_protection(self, cluster_str, tasks, protection_enabled, expires_in_minutes=None):
    from moto.ecs.exceptions import InvalidParameterException  # noqa: PLC0415

    cluster = self._get_cluster(cluster_str)
    tasks = _checked_tasks(tasks)
    minutes = DEFAULT_PROTECTION_MINUTES if expires_in_minutes is None else int(expires_in_minutes)
    if protection_enabled and not 1 <= minutes <= MAX_PROTECTION_MINUTES:
        raise InvalidParameterException(f"expiresInMinutes must be 1 to {MAX_PROTECTION_MINUTES}, got {minutes}")
    protected, failures = [], []
    for ref in tasks:
        task = _find_task(self, cluster, ref)
        if task is None:
            failures.append({"arn": ref, "reason": "MISSING"})
        elif not (task.group or "").startswith("service:"):
            failures.append({"arn": task.task_arn, "reason": "TASK_NOT_VALID", "detail": "not part of a service"})
        else:
            if protection_enabled:
                self.rtmpedge_protection[task.task_arn] = _now() + datetime.timedelta(minutes=minutes)
            else:
                self.rtmpedge_protection.pop(task.task_arn, None)
            protected.append(_protection_of(self, task))
    return protected, failures


def _get_task_protection(self, cluster_str, tasks):
    cluster = self._get_cluster(cluster_str)
    protected, failures = [], []
    for ref in _checked_tasks(tasks):
        task = _find_task(self, cluster, ref)
        if task is None:
            failures.append({"arn": ref, "reason": "MISSING"})
        else:
            protected.append(_protection_of(self, task))
    return protected, failures


def _response_update(self):
    from moto.core.responses import ActionResult  # noqa: PLC0415

    protected, failures = self.ecs_backend.update_task_protection(
        self._get_param("cluster"),
        self._get_param("tasks"),
        self._get_param("protectionEnabled"),
        self._get_param("expiresInMinutes"),
    )
    return ActionResult({"protectedTasks": protected, "failures": failures})


def _response_get(self):
    from moto.core.responses import ActionResult  # noqa: PLC0415

    protected, failures = self.ecs_backend.get_task_protection(self._get_param("cluster"), self._get_param("tasks"))
    return ActionResult({"protectedTasks": protected, "failures": failures})


def install_fidelity() -> None:
    """What this harness adds to moto (see the module's docstring). Idempotent."""
    from moto.ecs import models as ecs_models  # noqa: PLC0415
    from moto.ecs import responses as ecs_responses  # noqa: PLC0415

    backend = ecs_models.EC2ContainerServiceBackend
    if getattr(backend, "rtmpedge_fidelity", False):
        return
    backend.rtmpedge_fidelity = True
    original_init = backend.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.rtmpedge_protection = {}

    backend.__init__ = init
    backend.update_task_protection = _update_task_protection
    backend.get_task_protection = _get_task_protection
    ecs_responses.EC2ContainerServiceResponse.update_task_protection = _response_update
    ecs_responses.EC2ContainerServiceResponse.get_task_protection = _response_get
    # An awsvpc task's ENI: no address given, so moto picks one in the subnet, as AWS does.
    ecs_models.random_private_ip = lambda *args, **kwargs: None


def _backends():
    from moto.autoscaling.models import autoscaling_backends  # noqa: PLC0415
    from moto.ec2.models import ec2_backends  # noqa: PLC0415
    from moto.ecs.models import ecs_backends  # noqa: PLC0415

    return ec2_backends[ACCOUNT][REGION], ecs_backends[ACCOUNT][REGION], autoscaling_backends[ACCOUNT][REGION]


def schedule_services() -> list[str]:
    """One pass of the ECS service scheduler moto lacks; returns what it did."""
    _ec2, ecs, _asg = _backends()
    done = []
    for service in list(ecs.services.values()):
        cluster_name = service.cluster_name
        group = f"service:{service.name}"
        running = [
            t
            for t in ecs.tasks.get(cluster_name, {}).values()
            if t.group == group and t.last_status == "RUNNING" and t.desired_status == "RUNNING"
        ]
        missing = service.desired_count - len(running)
        if missing > 0:
            ecs.run_task(
                cluster_name,
                service.task_definition,
                missing,
                None,
                f"ecs-svc/{service.name}",
                None,
                service.launch_type or "FARGATE",
                service.network_configuration,
                group,
            )
            done.append(f"{service.name}: started {missing}")
        elif missing < 0:
            free = [
                t for t in sorted(running, key=lambda t: t.task_arn) if not _protection_of(ecs, t)["protectionEnabled"]
            ]
            for task in free[:-missing]:
                ecs.stop_task(cluster_name, task.task_arn, "Scaling activity initiated by (deployment ecs-svc)")
                done.append(f"{service.name}: stopped {task.task_arn.rsplit('/', 1)[-1]}")
    return done


# --- The hypervisor: containers for what the cloud runs ----------------------------------------


def running_machines() -> dict[str, str]:
    """{id: private IPv4} of running EC2 instances and ECS tasks."""
    ec2, ecs, _asg = _backends()
    machines = {}
    for reservation in ec2.describe_instances():
        for instance in reservation.instances:
            if instance.state == "running" and instance.private_ip:
                machines[instance.id] = instance.private_ip
    for tasks in ecs.tasks.values():
        for task in tasks.values():
            if task.last_status != "RUNNING" or task.desired_status != "RUNNING":
                continue
            for attachment in task.attachments:
                for detail in attachment.get("details", []):
                    if detail.get("name") == "privateIPv4Address":
                        machines[task.task_arn.rsplit("/", 1)[-1]] = detail["value"]
    return machines


def _nginx_conf_with_proxy_protocol() -> bytes:
    text = NGINX_CONF.read_text()
    return text.replace("listen 1935;", "listen 1935 proxy_protocol;").encode()


class Hypervisor:
    def __init__(self, docker_client, network: str, container_options: dict):
        self.docker = docker_client
        self.network = network
        self.options = container_options

    def containers(self) -> dict[str, object]:
        found = self.docker.containers.list(all=True, filters={"label": LABEL}, ignore_removed=True)
        return {c.labels[LABEL]: c for c in found}

    def start(self, machine: str, address: str) -> None:
        name = f"rtmpedge-cloud-{machine}"[:63]
        labels = {"rtmpedge.lab": "1", LABEL: machine, "rtmpedge.role": "cloud-media"}
        endpoint = self.docker.api.create_endpoint_config(ipv4_address=address)
        container = self.docker.containers.create(
            MEDIA_IMAGE,
            name=name,
            hostname=name[:63],
            labels=labels,
            detach=True,
            network=self.network,
            networking_config={self.network: endpoint},
            **self.options,
        )
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            content = _nginx_conf_with_proxy_protocol()
            info = tarfile.TarInfo("nginx.conf")
            info.size, info.mode = len(content), 0o644
            tar.addfile(info, io.BytesIO(content))
        container.put_archive("/etc/nginx", archive.getvalue())
        container.start()
        log.info("started %s at %s", name, address)

    def sync(self) -> None:
        wanted = running_machines()
        have = self.containers()
        for machine, container in have.items():
            if machine not in wanted:
                container.remove(force=True, v=True)
                log.info("removed %s (terminated or stopped)", container.name)
        for machine, address in wanted.items():
            if machine not in have:
                try:
                    self.start(machine, address)
                except Exception as e:  # a clash or a docker error: said, and tried again next pass
                    log.warning("cannot start %s at %s: %s", machine, address, e)
                    leftover = self.containers().get(machine)
                    if leftover is not None:
                        leftover.remove(force=True, v=True)


# --- The cloud's shape, as an operator's infrastructure code would make it ----------------------

CLUSTER = "ingest"
SERVICE = "nginx-rtmp"
ASG = "rtmp-media"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def clients(endpoint: str) -> dict:
    import boto3  # noqa: PLC0415

    services = ("ec2", "ecs", "autoscaling")
    return {name: boto3.client(name, endpoint_url=endpoint, region_name=REGION, **KEYS) for name in services}


def bootstrap(endpoint: str, instances: int, tasks: int) -> dict:
    """A VPC in the lab's media network, an Auto Scaling group of media instances and an ECS service
    of Fargate tasks (awsvpc). Idempotent: an existing cloud is left as it is. Returns its ids."""
    aws = clients(endpoint)
    ec2, ecs, asg = aws["ec2"], aws["ecs"], aws["autoscaling"]
    if asg.describe_auto_scaling_groups(AutoScalingGroupNames=[ASG])["AutoScalingGroups"]:
        return {"asg": ASG, "cluster": CLUSTER, "service": SERVICE}
    vpc = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # moto's awsvpc tasks need it
    zone = f"{REGION}a"
    asg_subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=ASG_SUBNET, AvailabilityZone=zone)["Subnet"]["SubnetId"]
    ecs_subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=ECS_SUBNET, AvailabilityZone=zone)["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="rtmp", Description="RTMP from the balancers", VpcId=vpc)["GroupId"]
    ec2.create_launch_template(
        LaunchTemplateName="rtmp-media",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.small", "SecurityGroupIds": [group]},
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=ASG,
        LaunchTemplate={"LaunchTemplateName": "rtmp-media", "Version": "$Latest"},
        MinSize=0,
        MaxSize=10,
        DesiredCapacity=instances,
        VPCZoneIdentifier=asg_subnet,
        Tags=[
            {"Key": "role", "Value": "rtmp-media", "PropagateAtLaunch": True},
            {"Key": "rtmp_port", "Value": "1935", "PropagateAtLaunch": True},
        ],
    )
    ecs.create_cluster(clusterName=CLUSTER)
    ecs.register_task_definition(
        family="nginx-rtmp",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "nginx-rtmp", "image": "nginx-rtmp", "portMappings": [{"containerPort": 1935}], "memory": 512}
        ],
    )
    ecs.create_service(
        cluster=CLUSTER,
        serviceName=SERVICE,
        taskDefinition="nginx-rtmp",
        desiredCount=tasks,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [ecs_subnet], "securityGroups": [group]}},
    )
    return {"asg": ASG, "cluster": CLUSTER, "service": SERVICE}


def serve(bind: str, network: str, interval: float, container_options: dict, seed: int) -> None:
    import docker  # noqa: PLC0415 - the harness process's own dependency
    from moto.moto_api import state_manager  # noqa: PLC0415
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    install_fidelity()
    # Real tasks stay RUNNING until stopped; moto would walk them to STOPPED on every describe.
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 1_000_000})
    import random  # noqa: PLC0415

    random.seed(seed)  # repeatable task addresses
    host, _sep, port = bind.rpartition(":")
    server = ThreadedMotoServer(ip_address=host, port=int(port), verbose=False)
    server.start()
    log.info("moto on http://%s", bind)
    hypervisor = Hypervisor(docker.from_env(), network, container_options)
    lock = threading.Lock()
    while True:
        with lock:
            try:
                for line in schedule_services():
                    log.info("scheduler: %s", line)
                hypervisor.sync()
            except Exception:
                log.exception("hypervisor pass failed")
        time.sleep(interval)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve")
    run.add_argument("--bind", required=True, help="address:port of the moto server (the media network's gateway)")
    run.add_argument("--network", required=True, help="the docker network the machines join")
    run.add_argument("--interval", type=float, default=0.5)
    run.add_argument("--seed", type=int, default=1935)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per API call otherwise
    from harness.containers import SYSTEMD  # noqa: PLC0415

    serve(args.bind, args.network, args.interval, SYSTEMD, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

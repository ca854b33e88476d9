# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sources `aws_ecs` and `aws_ec2` (boto3).

Credentials as amazon.aws users expect: explicit options win, then a named profile,
then boto3's own chain (AWS_* environment variables, shared files, instance role).
`assume_role_arn` assumes a role first. `endpoint_url` points at another endpoint
(a local moto server in the tests).
"""

from __future__ import annotations

from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import (
    DiscoveryError,
    MediaServer,
    make_server,
)

try:
    import boto3
    import botocore.config
    import botocore.exceptions

    HAS_BOTO3 = True
except ImportError:
    HAS_BOTO3 = False

_ECS_DESCRIBE_BATCH = 100  # describe_tasks takes at most 100 tasks a call


def _session(label: str, options: dict):
    if not HAS_BOTO3:
        raise DiscoveryError(label, "the AWS sources need the Python packages boto3 and botocore")
    try:
        session = boto3.Session(
            aws_access_key_id=options.get("aws_access_key_id"),
            aws_secret_access_key=options.get("aws_secret_access_key"),
            aws_session_token=options.get("aws_session_token"),
            profile_name=options.get("profile"),
            region_name=options.get("region"),
        )
        if options.get("assume_role_arn"):
            sts = session.client("sts", endpoint_url=options.get("endpoint_url"))
            creds = sts.assume_role(RoleArn=options["assume_role_arn"], RoleSessionName=options["role_session_name"])[
                "Credentials"
            ]
            session = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=session.region_name,
            )
    except botocore.exceptions.BotoCoreError as e:
        raise DiscoveryError(label, f"AWS credentials: {e}") from e
    except botocore.exceptions.ClientError as e:
        raise DiscoveryError(label, f"assume role {options.get('assume_role_arn')}: {_client_error(e)}") from e
    if not session.region_name:
        raise DiscoveryError(label, "no AWS region: set 'region', AWS_REGION or a profile with one")
    return session


def aws_client(label: str, options: dict, service: str):
    """A boto3 client for `service` with a source's connection options (the scale-in guard's too)."""
    config = botocore.config.Config(
        connect_timeout=options["timeout"],
        read_timeout=options["timeout"],
        retries={"max_attempts": options["max_attempts"]},
    )
    return _session(label, options).client(service, endpoint_url=options.get("endpoint_url"), config=config)


def _client_error(e) -> str:
    error = e.response.get("Error", {})
    return f"{error.get('Code', 'error')}: {error.get('Message', e)}"


def aws_call(label: str, what: str, fn, **kwargs):
    """One AWS call; any failure is a DiscoveryError naming the source and the call."""
    try:
        return fn(**kwargs)
    except botocore.exceptions.ClientError as e:
        raise DiscoveryError(label, f"{what}: {_client_error(e)}") from e
    except botocore.exceptions.BotoCoreError as e:
        raise DiscoveryError(label, f"{what}: {e}") from e


def _pages(label: str, client, operation: str, key: str, **kwargs) -> list:
    items = []
    try:
        for page in client.get_paginator(operation).paginate(**kwargs):
            items += page.get(key, [])
    except botocore.exceptions.ClientError as e:
        raise DiscoveryError(label, f"{operation}: {_client_error(e)}") from e
    except botocore.exceptions.BotoCoreError as e:
        raise DiscoveryError(label, f"{operation}: {e}") from e
    return items


# --- ECS -----------------------------------------------------------------------


def _task_ipv4(task: dict) -> str | None:
    """The awsvpc ENI's private IPv4 of a task (attachments, else the containers' interfaces)."""
    for attachment in task.get("attachments", []):
        if attachment.get("type") == "ElasticNetworkInterface":
            for detail in attachment.get("details", []):
                if detail.get("name") == "privateIPv4Address" and detail.get("value"):
                    return detail["value"]
    for container in task.get("containers", []):
        for interface in container.get("networkInterfaces", []):
            if interface.get("privateIpv4Address"):
                return interface["privateIpv4Address"]
    return None


def _container_port(label: str, client, options: dict, task: dict, cache: dict) -> int:
    """The port of the named container: the option, else its task definition's first port mapping."""
    if options.get("port"):
        return options["port"]
    arn = task["taskDefinitionArn"]
    if arn not in cache:
        definition = aws_call(label, "describe_task_definition", client.describe_task_definition, taskDefinition=arn)
        cache[arn] = definition["taskDefinition"]["containerDefinitions"]
    name = options.get("container_name")
    for container in cache[arn]:
        if (name is None or container.get("name") == name) and container.get("portMappings"):
            return int(container["portMappings"][0]["containerPort"])
    raise DiscoveryError(label, f"task definition {arn} has no container {name!r} with a port mapping; set 'port'")


def discover_ecs(label: str, options: dict) -> list[MediaServer]:
    cluster = options["cluster"]
    client = aws_client(label, options, "ecs")
    selectors = [{"serviceName": s} for s in options.get("services") or []]
    selectors += [{"family": f} for f in options.get("task_families") or []]
    arns: list[str] = []
    for selector in selectors or [{}]:
        arns += _pages(label, client, "list_tasks", "taskArns", cluster=cluster, desiredStatus="RUNNING", **selector)
    arns = sorted(set(arns))
    tasks = []
    for start in range(0, len(arns), _ECS_DESCRIBE_BATCH):
        answer = aws_call(
            label,
            "describe_tasks",
            client.describe_tasks,
            cluster=cluster,
            tasks=arns[start : start + _ECS_DESCRIBE_BATCH],
        )
        tasks += answer.get("tasks", [])
    definitions: dict = {}
    found = []
    for task in tasks:
        if task.get("lastStatus") != "RUNNING" or task.get("healthStatus") == "UNHEALTHY":
            continue
        task_id = task["taskArn"].rsplit("/", 1)[-1]
        address = _task_ipv4(task)
        if address is None:
            raise DiscoveryError(label, f"task {task_id} has no awsvpc private IPv4 address (network mode awsvpc?)")
        found.append(
            make_server(
                label,
                f"{cluster}-{task_id}",
                address,
                port=_container_port(label, client, options, task, definitions),
                defaults=options,
                meta={
                    "rtmp_task_arn": task["taskArn"],
                    "rtmp_availability_zone": task.get("availabilityZone", ""),
                    "rtmp_task_definition": task.get("taskDefinitionArn", ""),
                },
            )
        )
    return found


# --- EC2 -----------------------------------------------------------------------


def discover_ec2(label: str, options: dict) -> list[MediaServer]:
    filters = [{"Name": "instance-state-name", "Values": ["running"]}]
    for key, value in (options.get("tags") or {}).items():
        filters.append({"Name": f"tag:{key}", "Values": value if isinstance(value, list) else [str(value)]})
    client = aws_client(label, options, "ec2")
    reservations = _pages(label, client, "describe_instances", "Reservations", Filters=filters)
    port_tag = options.get("port_tag")
    found = []
    for instance in (i for r in reservations for i in r.get("Instances", [])):
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        if not instance.get("PrivateIpAddress"):
            raise DiscoveryError(label, f"instance {instance['InstanceId']} has no private IP address")
        found.append(
            make_server(
                label,
                instance["InstanceId"],
                instance["PrivateIpAddress"],
                port=tags.get(port_tag) if port_tag else None,
                defaults=options,
                meta={
                    "rtmp_instance_id": instance["InstanceId"],
                    "rtmp_availability_zone": instance.get("Placement", {}).get("AvailabilityZone", ""),
                    "rtmp_instance_name": tags.get("Name", ""),
                },
            )
        )
    return found

"""The media_servers inventory plugin against real services on loopback (and the Docker engine).

Successful configurations run through `ansible-inventory --list` and are compared with
the expected JSON; the bad-input table runs the same discovery code in-process.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading

import boto3
import pytest
import yaml
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import DiscoveryError
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.sources import discover_all
from conftest import AWS_ENV, FLEET, REPO, _Handler, _keys, inventory, inventory_error, run_inventory

BASE_VARS = {"rtmp_maxconn": 0, "rtmp_port": 1935, "rtmp_state": "ready", "rtmp_weight": 10}


def _hostvars(data: dict) -> dict:
    return data["_meta"]["hostvars"]


# --- successful discovery, compared with the expected JSON -----------------------


def test_static_and_http_json_merged_first_source_wins_duplicates(tmp_path, http_url):
    config = {
        "sources": [
            {"type": "static", "name": "boxes", "servers": [{"name": "box1", "address": "10.60.0.1", "maxconn": 7}]},
            {"type": "http_json", "name": "api", "url": f"{http_url}/wrapped"},
        ]
    }
    result = run_inventory(tmp_path, config)
    assert result.returncode == 0, result.stderr
    assert "api: edge-a (10.60.0.1:1935) is a duplicate of box1 from boxes; kept the first" in " ".join(
        result.stderr.split()
    )
    data = inventory(tmp_path, config)
    assert data["media_servers"]["hosts"] == ["box1", "edge-b"]
    assert _hostvars(data) == {
        "box1": {
            **BASE_VARS,
            "ansible_host": "10.60.0.1",
            "rtmp_address": "10.60.0.1",
            "rtmp_maxconn": 7,
            "rtmp_source": "boxes",
        },
        "edge-b": {
            **BASE_VARS,
            "ansible_host": "10.60.0.2",
            "rtmp_address": "10.60.0.2",
            "rtmp_state": "drain",
            "rtmp_source": "api",
        },
    }


def test_http_json_with_bearer_token_and_custom_group(tmp_path, http_url):
    data = inventory(
        tmp_path,
        {"group": "origins", "sources": [{"type": "http_json", "url": f"{http_url}/auth", "bearer_token": "s3cret"}]},
    )
    assert sorted(data["origins"]["hosts"]) == ["edge-a", "edge-b"]
    assert _hostvars(data)["edge-a"] == {
        **BASE_VARS,
        "ansible_host": "10.60.0.1",
        "rtmp_address": "10.60.0.1",
        "rtmp_weight": 5,
        "rtmp_maxconn": 100,
        "rtmp_source": "http_json[0]",
    }


def test_dns_srv_from_dnsmasq(tmp_path, dns_port):
    data = inventory(
        tmp_path,
        {
            "sources": [
                {
                    "type": "dns_srv",
                    "name": "consul",
                    "record": "_rtmp._tcp.media.test",
                    "nameserver": "127.0.0.1",
                    "nameserver_port": dns_port,
                }
            ]
        },
    )
    assert _hostvars(data) == {
        "media1.media.test": {
            **BASE_VARS,
            "ansible_host": "10.70.0.11",
            "rtmp_address": "10.70.0.11",
            "rtmp_weight": 50,
            "rtmp_source": "consul",
            "rtmp_srv_target": "media1.media.test",
        },
        "media2.media.test-1936": {
            **BASE_VARS,
            "ansible_host": "10.70.0.12",
            "rtmp_address": "10.70.0.12",
            "rtmp_port": 1936,
            "rtmp_weight": 1,
            "rtmp_source": "consul",
            "rtmp_srv_target": "media2.media.test",
        },
    }


def test_ipv6_media_servers_from_static_http_json_and_dns_srv_aaaa(tmp_path, http_url, dns_port):
    dns = {"type": "dns_srv", "record": "_rtmp6._tcp.media.test", "nameserver": "127.0.0.1"}
    dns["nameserver_port"] = dns_port
    data = inventory(
        tmp_path,
        {
            "sources": [
                {"type": "static", "name": "boxes", "servers": [{"name": "box6", "address": "2001:db8:60::1"}]},
                {"type": "http_json", "name": "api", "url": f"{http_url}/fleet6"},
                {**dns, "name": "consul", "address_type": "AAAA"},
            ]
        },
    )
    hostvars = _hostvars(data)
    assert {host: v["rtmp_address"] for host, v in hostvars.items()} == {
        "box6": "2001:db8:60::1",
        "edge-v6": "2001:db8:60::2",
        "media6.media.test": "fd00:70::16",
    }
    assert all(v["ansible_host"] == v["rtmp_address"] and v["rtmp_port"] == 1935 for v in hostvars.values())
    # The same target by its A record, the default.
    servers, _warnings = discover_all([dns], allow_empty=False, on_source_error="fail")
    assert [(s.name, s.address) for s in servers] == [("media6.media.test", "10.70.0.16")]


def test_dns_srv_aaaa_of_a_target_with_an_ipv4_address_only_is_an_error(dns_port):
    source = {
        "type": "dns_srv",
        "record": "_rtmp._tcp.media.test",
        "nameserver": "127.0.0.1",
        "nameserver_port": dns_port,
        "address_type": "AAAA",
    }
    with pytest.raises(DiscoveryError, match=r"media1\.media\.test") as caught:
        discover_all([source], allow_empty=False, on_source_error="fail")
    assert "AAAA" in str(caught.value), caught.value


def test_dns_srv_weights_above_256_are_scaled(dns_port):
    servers, _warnings = discover_all(
        [
            {
                "type": "dns_srv",
                "record": "_heavy._tcp.media.test",
                "nameserver": "127.0.0.1",
                "nameserver_port": dns_port,
            }
        ],
        allow_empty=False,
        on_source_error="fail",
    )
    assert [(s.name, s.weight) for s in servers] == [("media1.media.test", 256), ("media2.media.test", 128)]


def _ecs_fleet(url: str) -> list[dict]:
    """A VPC, an ECS cluster and four awsvpc Fargate tasks, one of them stopped, in moto; the running ones."""
    kwargs = {"endpoint_url": url, "region_name": "eu-west-1", **_keys(AWS_ENV)}
    ec2, ecs = boto3.client("ec2", **kwargs), boto3.client("ecs", **kwargs)
    vpc = ec2.create_vpc(CidrBlock="10.80.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.80.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="rtmp", Description="rtmp", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName="live")
    ecs.register_task_definition(
        family="ingest",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "sidecar", "image": "x", "cpu": 64, "memory": 64},
            {"name": "nginx-rtmp", "image": "x", "cpu": 192, "memory": 448, "portMappings": [{"containerPort": 1935}]},
        ],
    )
    ecs.run_task(
        cluster="live",
        taskDefinition="ingest",
        count=4,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
    )
    arns = ecs.list_tasks(cluster="live")["taskArns"]
    ecs.stop_task(cluster="live", task=arns[0], reason="scaled in")  # not RUNNING any more: left out
    return ecs.describe_tasks(cluster="live", tasks=arns[1:])["tasks"]


def test_aws_ecs_running_tasks_from_moto(tmp_path, moto_url):
    tasks = _ecs_fleet(moto_url)
    config = {
        "sources": [
            {
                "type": "aws_ecs",
                "name": "fargate",
                "cluster": "live",
                "container_name": "nginx-rtmp",
                "region": "eu-west-1",
                "endpoint_url": moto_url,
                "maxconn": 1,
            }
        ],
        "groups": {"fargate_tasks": "rtmp_task_arn is defined"},
    }
    data = inventory(tmp_path, config, env=AWS_ENV)
    expected = {}
    for task in tasks:
        task_id = task["taskArn"].rsplit("/", 1)[-1]
        ip = next(d["value"] for a in task["attachments"] for d in a["details"] if d["name"] == "privateIPv4Address")
        expected[f"live-{task_id}"] = {
            **BASE_VARS,
            "ansible_host": ip,
            "rtmp_address": ip,
            "rtmp_maxconn": 1,
            "rtmp_source": "fargate",
            "rtmp_task_arn": task["taskArn"],
            "rtmp_availability_zone": task.get("availabilityZone", ""),  # moto leaves it out; ECS reports it
            "rtmp_task_definition": task["taskDefinitionArn"],
        }
    assert _hostvars(data) == expected
    assert sorted(data["fargate_tasks"]["hosts"]) == sorted(expected)
    assert len(expected) == 3


def test_aws_ec2_running_tagged_instances_from_moto_grouped_by_zone(tmp_path, moto_url):
    ec2 = boto3.client("ec2", endpoint_url=moto_url, region_name="eu-west-1", **_keys(AWS_ENV))
    image = ec2.describe_images()["Images"][0]["ImageId"]

    def launch(tags):
        tag_spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=tag_spec)["Instances"][0]

    media = launch({"Role": "rtmp-media", "RtmpPort": "1940", "Name": "media-a"})
    stopped = launch({"Role": "rtmp-media"})
    launch({"Role": "web"})
    ec2.stop_instances(InstanceIds=[stopped["InstanceId"]])
    data = inventory(
        tmp_path,
        {
            "sources": [
                {
                    "type": "aws_ec2",
                    "tags": {"Role": "rtmp-media"},
                    "port_tag": "RtmpPort",
                    "region": "eu-west-1",
                    "endpoint_url": moto_url,
                }
            ],
            "keyed_groups": [{"key": "rtmp_availability_zone", "prefix": "az"}],
        },
        env=AWS_ENV,
    )
    zone = media["Placement"]["AvailabilityZone"]
    assert data[f"az_{zone.replace('-', '_')}"]["hosts"] == [media["InstanceId"]]
    assert _hostvars(data) == {
        media["InstanceId"]: {
            **BASE_VARS,
            "ansible_host": media["PrivateIpAddress"],
            "rtmp_address": media["PrivateIpAddress"],
            "rtmp_port": 1940,
            "rtmp_source": "aws_ec2[0]",
            "rtmp_instance_id": media["InstanceId"],
            "rtmp_availability_zone": media["Placement"]["AvailabilityZone"],
            "rtmp_instance_name": "media-a",
        }
    }


@pytest.fixture
def docker_fleet():
    """Two labelled containers (and an unlabelled one) on a network of their own."""
    network = "rtmpedge-it-discovery"
    names = ["rtmpedge-it-media-a", "rtmpedge-it-media-b", "rtmpedge-it-other"]

    def cleanup():
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True, check=False)
        subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False)

    cleanup()
    subprocess.run(["docker", "network", "create", network], check=True, capture_output=True)
    for name, labels in zip(
        names, [["rtmpedge.it-role=media", "rtmpedge.weight=30"], ["rtmpedge.it-role=media"], []], strict=True
    ):
        args = [arg for label in labels for arg in ("--label", label)]
        subprocess.run(
            [
                "docker",
                "run",
                "-d",
                "--name",
                name,
                "--network",
                network,
                *args,
                "--entrypoint",
                "sleep",
                "rtmpedge/debian-systemd:bookworm",
                "infinity",
            ],
            check=True,
            capture_output=True,
        )
    yield {
        n: subprocess.run(
            ["docker", "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}', n],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        for n in names
    }
    cleanup()


def test_docker_labelled_containers_on_a_network(tmp_path, docker_fleet):
    data = inventory(
        tmp_path,
        {"sources": [{"type": "docker", "label": "rtmpedge.it-role=media", "network": "rtmpedge-it-discovery"}]},
    )
    hostvars = _hostvars(data)
    assert sorted(hostvars) == ["rtmpedge-it-media-a", "rtmpedge-it-media-b"]
    a = hostvars["rtmpedge-it-media-a"]
    assert a["rtmp_address"] == docker_fleet["rtmpedge-it-media-a"] and a["rtmp_weight"] == 30
    assert hostvars["rtmpedge-it-media-b"]["rtmp_weight"] == 10
    assert len(a["rtmp_container_id"]) == 12


class _VanishingEngine(http.server.BaseHTTPRequestHandler):
    """A Docker engine's API, as far as the docker source uses it, in which one listed container is
    removed before the SDK inspects it. A real engine cannot be made to lose a container in that
    instant on demand; the SDK inspects every listed container, so the listing must tolerate it."""

    LISTED = ("kept", "gone")

    def _answer(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path.endswith("/version"):
            self._answer(200, {"ApiVersion": "1.41", "Version": "20.10.24"})
        elif path.endswith("/containers/json"):
            self._answer(200, [{"Id": f"{name}{'0' * 60}", "Names": [f"/{name}"]} for name in self.LISTED])
        elif "/containers/kept" in path:
            networks = {"media": {"IPAddress": "10.61.0.5"}}
            self._answer(
                200,
                {
                    "Id": f"kept{'0' * 60}",
                    "Name": "/kept",
                    "Config": {"Labels": {"role": "media"}},
                    "State": {"Status": "running"},
                    "NetworkSettings": {"Networks": networks},
                },
            )
        else:
            self._answer(404, {"message": f"No such container: {path.split('/')[-2]}"})

    def log_message(self, *_args):
        pass


def test_docker_a_container_removed_while_listed_is_left_out(tmp_path):
    engine = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _VanishingEngine)
    threading.Thread(target=engine.serve_forever, daemon=True).start()
    try:
        source = {
            "type": "docker",
            "label": "role=media",
            "network": "media",
            "docker_host": f"tcp://127.0.0.1:{engine.server_address[1]}",
        }
        hostvars = _hostvars(inventory(tmp_path, {"sources": [source]}))
    finally:
        engine.shutdown()
    assert sorted(hostvars) == ["kept"]
    assert hostvars["kept"]["rtmp_address"] == "10.61.0.5"


def test_a_cache_hit_makes_no_network_call(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = {
        "sources": [{"type": "http_json", "url": f"http://127.0.0.1:{server.server_address[1]}/fleet"}],
        "cache": True,
        "cache_plugin": "ansible.builtin.jsonfile",
        "cache_connection": str(tmp_path / "cache"),
        "cache_timeout": 300,
    }
    first = inventory(tmp_path, config)
    server.shutdown()
    server.server_close()
    second = inventory(tmp_path, config)  # the source is gone: only the cache can answer
    assert second == first
    assert sorted(_hostvars(second)) == [item["id"] for item in FLEET]


def test_template_injection_in_outside_data_stays_inert(tmp_path, http_url):
    result = run_inventory(tmp_path, {"sources": [{"type": "http_json", "url": f"{http_url}/injection"}]})
    assert result.returncode == 0, result.stderr
    assert "uid=" not in result.stdout  # the lookup never ran
    assert "___lookup__pipe____id_____" in result.stdout  # the host name is made safe
    assert '"__ansible_unsafe"' in result.stdout  # ansible-core marks plugin strings untrusted


def test_template_text_from_outside_reaches_a_play_unrendered(tmp_path, moto_url):
    """A tag value holding a template (an EC2 Name anyone with ec2:CreateTags can set) is a plain,
    untrusted string in a play: ansible-core 2.19 renders only trusted text, so the plugin
    needs no unsafe wrapping, and a play that uses the variable sees the literal text."""
    ec2 = boto3.client("ec2", endpoint_url=moto_url, region_name="eu-west-1", **_keys(AWS_ENV))
    image = ec2.describe_images()["Images"][0]["ImageId"]
    canary = tmp_path / "rendered"
    name = "{{ lookup('ansible.builtin.pipe', 'touch " + str(canary) + "') }}{{ 6 * 7 }}"
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "Role", "Value": "inert"}, {"Key": "Name", "Value": name}]}]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=tags)["Instances"][0]
    config = tmp_path / "fleet.media_servers.yml"
    source = {"type": "aws_ec2", "tags": {"Role": "inert"}, "region": "eu-west-1", "endpoint_url": moto_url}
    config.write_text(yaml.safe_dump({"plugin": "rtmpedge.balancer.media_servers", "sources": [source]}))
    playbook = tmp_path / "show.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "ansible.builtin.copy": {
                                "content": "{{ hostvars[groups['media_servers'][0]]['rtmp_instance_name'] }}",
                                "dest": str(tmp_path / "seen"),
                                "mode": "0644",
                            }
                        }
                    ],
                }
            ]
        )
    )
    result = subprocess.run(
        [
            *("ansible-playbook", "-i", str(config), "-i", "localhost,", str(playbook), "-c", "local"),
            *("-e", f"ansible_python_interpreter={sys.executable}"),
        ],
        cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), **AWS_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "seen").read_text() == name, "the play saw the tag's text rendered"
    assert not canary.exists(), "the lookup in the tag ran"
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])


def test_an_error_reaches_ansible_inventory_naming_the_source(tmp_path, http_url):
    text = inventory_error(
        tmp_path, {"sources": [{"type": "http_json", "name": "fleet-api", "url": f"{http_url}/error"}]}
    )
    assert "media server source fleet-api: GET" in text and "answered HTTP 500" in text


# --- bad input: each case and the message it must give ------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bad_cases(http_url, dns_port, silent_dns_port, moto_url, moto_denied):
    denied_url, denied_keys = moto_denied
    dns = {"type": "dns_srv", "nameserver": "127.0.0.1", "nameserver_port": dns_port}
    return {
        "garbage_json": ({"type": "http_json", "url": f"{http_url}/garbage"}, "did not return JSON"),
        "object_not_list": (
            {"type": "http_json", "url": f"{http_url}/object"},
            "the JSON answer must be a list of servers, got dict",
        ),
        "wrong_type_port": (
            {"type": "http_json", "url": f"{http_url}/wrong-types"},
            "port must be an integer 1..65535, got 'rtmp'",
        ),
        "invalid_ip": (
            {"type": "http_json", "url": f"{http_url}/bad-ip"},
            "address '999.1.1.1' is not a usable IP address or host name",
        ),
        "port_out_of_range": (
            {"type": "http_json", "url": f"{http_url}/big-port"},
            "port must be an integer 1..65535, got 70000",
        ),
        "negative_weight": (
            {"type": "http_json", "url": f"{http_url}/negative-weight"},
            "weight must be an integer 0..256, got -3",
        ),
        "missing_address": (
            {"type": "http_json", "url": f"{http_url}/no-address"},
            "the JSON answer, item 0: must be a mapping with an 'address'",
        ),
        "http_500": ({"type": "http_json", "url": f"{http_url}/error"}, "answered HTTP 500"),
        "http_401": ({"type": "http_json", "url": f"{http_url}/auth"}, "answered HTTP 401"),
        "http_timeout": ({"type": "http_json", "url": f"{http_url}/slow", "timeout": 1}, "timed out"),
        "connection_refused": (
            {"type": "http_json", "url": f"http://127.0.0.1:{_closed_port()}/"},
            "Connection refused",
        ),
        "empty_result": ({"type": "http_json", "url": f"{http_url}/empty"}, "found no media servers"),
        "nxdomain": ({**dns, "record": "_nothing._tcp.media.test"}, "_nothing._tcp.media.test SRV: NXDOMAIN"),
        "no_srv_records": ({**dns, "record": "_empty._tcp.media.test"}, "_empty._tcp.media.test SRV: no SRV records"),
        "srv_target_without_address": ({**dns, "record": "_dangling._tcp.media.test"}, "ghost.media.test A: NXDOMAIN"),
        "dns_timeout": (
            {
                "type": "dns_srv",
                "record": "_rtmp._tcp.media.test",
                "nameserver": "127.0.0.1",
                "nameserver_port": silent_dns_port,
                "timeout": 1,
            },
            "timed out",
        ),
        "aws_access_denied": (
            {
                "type": "aws_ecs",
                "cluster": "live",
                "region": "eu-west-1",
                "endpoint_url": denied_url,
                "aws_access_key_id": denied_keys["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": denied_keys["AWS_SECRET_ACCESS_KEY"],
            },
            "AccessDenied",
        ),
        "ecs_cluster_missing": (
            {
                "type": "aws_ecs",
                "cluster": "nowhere",
                "region": "eu-west-1",
                "endpoint_url": moto_url,
                **_keys(AWS_ENV),
            },
            "ClusterNotFoundException",
        ),
        "aws_no_region": (
            {"type": "aws_ec2", "endpoint_url": moto_url, **_keys(AWS_ENV), "region": ""},
            "no AWS region",
        ),
        "docker_engine_unreachable": (
            {"type": "docker", "label": "a=b", "network": "n", "docker_host": "unix:///nonexistent/docker.sock"},
            "Docker engine",
        ),
        "unknown_type": ({"type": "consul_api"}, "unknown type 'consul_api'"),
        "static_not_a_list": (
            {"type": "static", "servers": "10.0.0.1"},
            "option 'servers' must be a list, not a str",
        ),
        "bad_state": (
            {"type": "static", "servers": [{"address": "10.0.0.1", "state": "paused"}]},
            "state must be one of ready, drain, maint",
        ),
    }


CASE_IDS = [
    "garbage_json",
    "object_not_list",
    "wrong_type_port",
    "invalid_ip",
    "port_out_of_range",
    "negative_weight",
    "missing_address",
    "http_500",
    "http_401",
    "http_timeout",
    "connection_refused",
    "empty_result",
    "nxdomain",
    "no_srv_records",
    "srv_target_without_address",
    "dns_timeout",
    "aws_access_denied",
    "ecs_cluster_missing",
    "aws_no_region",
    "docker_engine_unreachable",
    "unknown_type",
    "static_not_a_list",
    "bad_state",
]


@pytest.fixture
def services(http_url, dns_port, silent_dns_port, moto_url, moto_denied):
    return bad_cases(http_url, dns_port, silent_dns_port, moto_url, moto_denied)


@pytest.mark.parametrize("case", CASE_IDS)
def test_bad_input_is_a_clear_error_naming_source_and_cause(case, services, monkeypatch):
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    options, message = services[case]
    with pytest.raises(DiscoveryError) as caught:
        discover_all([{**options, "name": f"case-{case}"}], allow_empty=False, on_source_error="fail")
    assert str(caught.value).startswith(f"media server source case-{case}: ")
    assert message in str(caught.value)


def test_skip_leaves_out_a_failing_source_with_a_warning(http_url):
    servers, warnings = discover_all(
        [
            {"type": "http_json", "name": "broken", "url": f"{http_url}/error"},
            {"type": "http_json", "url": f"{http_url}/fleet"},
        ],
        allow_empty=False,
        on_source_error="skip",
    )
    assert [s.name for s in servers] == ["edge-a", "edge-b"]
    assert warnings == [
        f"media server source broken: GET {http_url}/error answered HTTP 500 Internal Server Error; "
        "skipped (on_source_error: skip)"
    ]


def test_allow_empty_accepts_an_empty_fleet(http_url):
    servers, warnings = discover_all(
        [{"type": "http_json", "url": f"{http_url}/empty"}], allow_empty=True, on_source_error="fail"
    )
    assert servers == [] and warnings == []


def test_a_large_static_fleet_from_a_json_file_beside_the_inventory(tmp_path):
    fleet = [{"name": f"edge-{i}", "address": f"10.90.{i // 250}.{i % 250 + 1}", "maxconn": 1} for i in range(500)]
    (tmp_path / "fleet.json").write_text(json.dumps({"servers": fleet}))
    data = inventory(tmp_path, {"sources": [{"type": "static", "servers_file": "fleet.json"}]})
    hostvars = _hostvars(data)
    assert len(hostvars) == 500
    assert hostvars["edge-499"]["rtmp_address"] == "10.90.1.250"
    assert hostvars["edge-0"]["rtmp_maxconn"] == 1

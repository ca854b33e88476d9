"""Hostile, malformed and slow discovery input, through every source type and the installed reconcile job.

Every case runs the reconcile job as the role installs it (plain Python, the collection's
module_utils, no Ansible) against a real HAProxy master-worker on loopback, twice. Each run
must end with exit 1 and one line naming the source and the cause, and leave haproxy.cfg,
the running servers and the workers as they were, with the run lock free. A subset also
goes through `ansible-inventory` with the shipped ansible.cfg, which must fail too.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
import yaml
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import backend_state, show_proc
from conftest import AWS_ENV, REPO, _keys, run_inventory
from harness.loopback import JOB_LAUNCHER, JobBalancer, Listener, free_port

# --- a hostile HTTP server: one behaviour per path -------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000


def _fleet(*servers: dict) -> bytes:
    return json.dumps(list(servers)).encode()


# path: the JSON body of a 200 answer; paths _Hostile.handle answers itself are not here.
ANSWERS = {
    "/deep": DEEP,
    "/null": b"null",
    "/string": b'"10.0.0.1"',
    "/servers-null": b'{"servers": null}',
    "/list-of-lists": b"[[1, 2]]",
    "/empty-body": b"",
    "/invalid-utf8": b"\xff\xfe[",
    "/maxconn-huge": _fleet({"address": "10.0.0.1", "maxconn": 10**20}),
    "/weight-fraction": _fleet({"address": "10.0.0.1", "weight": 1.5}),
    "/weight-nan": b'[{"address": "10.0.0.1", "weight": NaN}]',
    "/port-hex": _fleet({"address": "10.0.0.1", "port": "0x78f"}),
    "/address-huge": _fleet({"address": "a" * 300}),
    "/address-with-port": _fleet({"address": "10.0.0.1:1935"}),
    "/address-unspecified": _fleet({"address": "0.0.0.0"}),  # noqa: S104 - data a hostile source sends
    "/address-multicast": _fleet({"address": "239.1.1.1"}),
    "/state-wrong": _fleet({"address": "10.0.0.1", "state": "up"}),
    "/too-many": _fleet(*({"address": f"10.9.{i // 250}.{i % 250 + 1}"} for i in range(150))),
}


class _Hostile(socketserver.BaseRequestHandler):
    stop = threading.Event()

    def handle(self):
        self.request.settimeout(2)
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            data += chunk
        path = data.split(b" ", 2)[1].decode(errors="replace")
        send = self.request.sendall
        if path == "/ssh":
            send(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
        elif path == "/short":
            send(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: application/json\r\n\r\n[{"address"')
        elif path == "/announced-huge":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n[")
        elif path == "/big":
            send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + b" " * 5000 + b"[]")
        elif path == "/redirect-file":
            send(b"HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\n\r\n")
        elif path == "/reset":
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        elif path in ("/trickle-body", "/trickle-headers"):
            self._trickle(b"HTTP/1.1 200 OK\r\n\r\n" if path == "/trickle-body" else b"")
        else:
            body = ANSWERS.get(path, b"[]")
            send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/json\r\n\r\n" % len(body))
            send(body)

    def _trickle(self, head: bytes) -> None:
        """One byte every 0.2 s: every read succeeds, the answer never ends (bounded at 120 s)."""
        self.request.sendall(head)
        ends = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < ends:
            try:
                self.request.sendall(b" " if head else b"H")
            except OSError:
                return
            time.sleep(0.2)


@pytest.fixture(scope="module")
def hostile_url():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Hostile.stop.set()
    server.shutdown()
    server.server_close()


# --- a real HAProxy on loopback and the job as the role installs it --------------------------


class Balancer(JobBalancer):
    def __init__(self, tmp: Path, haproxy: str):
        self.media = [Listener(), Listener()]
        self.servers = [
            {"name": f"m{i}", "address": "127.0.0.1", "port": m.port, "weight": 10, "maxconn": 0, "state": "ready"}
            for i, m in enumerate(self.media)
        ]
        super().__init__(tmp, haproxy, self.servers)

    def good_sources(self) -> list[dict]:
        return [
            {
                "type": "static",
                "servers": [{"name": s["name"], "address": s["address"], "port": s["port"]} for s in self.servers],
            }
        ]

    def run_job(self, sources: list[dict], **config) -> subprocess.CompletedProcess:
        self.discovery.write_text(
            yaml.safe_dump({"plugin": "rtmpedge.balancer.media_servers", "sources": sources, **config})
        )
        return super().run_job(REPO / ".collections")

    def snapshot(self) -> dict:
        running = backend_state(self.admin, "rtmp_media")
        return {
            "config": hashlib.sha256(self.config.read_bytes()).hexdigest(),
            "servers": {n: (s["address"], s["port"], s["weight"], s["state"]) for n, s in running.items()},
            "workers": sorted(w["pid"] for w in show_proc(self.master)["workers"]),
        }

    def lock_is_free(self) -> bool:
        with open(self.tmp / "reconcile.lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(handle, fcntl.LOCK_UN)
            return True


@pytest.fixture(scope="module")
def balancer(tmp_path_factory):
    haproxy = "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.fail("haproxy is not installed; scripts/integration.sh installs it")
    lb = Balancer(tmp_path_factory.mktemp("hostile"), haproxy)
    first = lb.run_job(lb.good_sources())
    assert first.returncode == 0, first.stderr
    yield lb
    lb.close()


# --- the cases --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws_world(moto_url):
    """An ECS cluster with a service's tasks and an EC2 instance whose port tag is not a number."""
    kwargs = {"endpoint_url": moto_url, "region_name": "eu-west-1", **_keys(AWS_ENV)}
    ec2, ecs = boto3.client("ec2", **kwargs), boto3.client("ecs", **kwargs)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    tags = [
        {"ResourceType": "instance", "Tags": [{"Key": "Role", "Value": "hostile"}, {"Key": "Port", "Value": "rtmp"}]}
    ]
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=tags)
    ecs.create_cluster(clusterName="hostile")
    return moto_url


@pytest.fixture(scope="module")
def docker_hostile():
    """A running container whose weight label is not a number, and one on no network the source names."""
    name, network = "rtmpedge-hostile-weight", "rtmpedge-hostile-net"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False)
    subprocess.run(["docker", "network", "create", network], capture_output=True, check=True)
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--network", network, "--label", "rtmpedge.role=hostile",
         "--label", "rtmpedge.weight=heavy", "--entrypoint", "sleep", "rtmpedge/debian-systemd:bookworm", "infinity"],
        capture_output=True, check=True,
    )  # fmt: skip
    yield network
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False)


def hostile_cases(url: str, dns_port: int, silent_dns_port: int, moto_url: str, docker_network: str) -> dict:
    """case: (source options, what the one error line must say)."""
    dns = {"type": "dns_srv", "nameserver": "127.0.0.1", "nameserver_port": dns_port}
    aws = {"region": "eu-west-1", "endpoint_url": moto_url, **_keys(AWS_ENV)}
    closed = free_port()
    http = {"type": "http_json"}
    return {
        # http_json: not HTTP, broken HTTP, hostile JSON, slow and oversized answers
        "http_ssh_banner": ({**http, "url": f"{url}/ssh"}, "BadStatusLine"),
        "http_short_body": ({**http, "url": f"{url}/short"}, "bytes short of its length"),
        "http_deep_json": ({**http, "url": f"{url}/deep"}, "nested too deeply"),
        "http_trickled_body": ({**http, "url": f"{url}/trickle-body", "deadline": 2}, "deadline of 2s"),
        "http_trickled_headers": ({**http, "url": f"{url}/trickle-headers", "deadline": 2}, "deadline of 2s"),
        "http_body_over_cap": ({**http, "url": f"{url}/big", "max_bytes": 1000}, "more than max_bytes (1000)"),
        "http_announced_huge": ({**http, "url": f"{url}/announced-huge"}, "announced 1000000000000 bytes"),
        "http_redirect_to_file": ({**http, "url": f"{url}/redirect-file"}, "file:///etc/passwd"),
        "http_reset": ({**http, "url": f"{url}/reset"}, "failed"),
        "http_closed_port": ({**http, "url": f"http://127.0.0.1:{closed}/"}, "Connection refused"),
        "http_tls_to_plain": ({**http, "url": url.replace("http:", "https:") + "/null"}, "failed"),
        "http_not_a_url": ({**http, "url": "file:///etc/passwd"}, "must be an http:// or https:// URL"),
        "http_null": ({**http, "url": f"{url}/null"}, "must be a list of servers, got NoneType"),
        "http_string": ({**http, "url": f"{url}/string"}, "must be a list of servers, got str"),
        "http_servers_null": ({**http, "url": f"{url}/servers-null"}, "must be a list of servers, got NoneType"),
        "http_list_of_lists": ({**http, "url": f"{url}/list-of-lists"}, "item 0: must be a mapping"),
        "http_empty_body": ({**http, "url": f"{url}/empty-body"}, "did not return JSON"),
        "http_invalid_utf8": ({**http, "url": f"{url}/invalid-utf8"}, "did not return JSON"),
        "http_maxconn_huge": ({**http, "url": f"{url}/maxconn-huge"}, "maxconn must be an integer 0..1000000"),
        "http_weight_fraction": ({**http, "url": f"{url}/weight-fraction"}, "weight must be an integer 0..256"),
        "http_weight_nan": ({**http, "url": f"{url}/weight-nan"}, "weight must be an integer 0..256"),
        "http_port_hex": ({**http, "url": f"{url}/port-hex"}, "port must be an integer 1..65535"),
        "http_address_huge": ({**http, "url": f"{url}/address-huge"}, "not a usable IP address"),
        "http_address_with_port": ({**http, "url": f"{url}/address-with-port"}, "not a usable IP address"),
        "http_address_unspecified": ({**http, "url": f"{url}/address-unspecified"}, "'0.0.0.0' is not a usable"),
        "http_address_multicast": ({**http, "url": f"{url}/address-multicast"}, "'239.1.1.1' is not a usable"),
        "http_state_wrong": ({**http, "url": f"{url}/state-wrong"}, "state must be one of ready, drain, maint"),
        "http_too_many": ({**http, "url": f"{url}/too-many", "max_servers": 100}, "found 150 servers"),
        "http_unrendered_token": (
            {**http, "url": f"{url}/null", "bearer_token": "{{ lookup('env', 'TOKEN') }}"},
            "'bearer_token' still holds template text",
        ),
        "http_typo": ({**http, "uri": f"{url}/null"}, "unknown option 'uri' for type http_json"),
        "http_bad_bool": ({**http, "url": f"{url}/null", "validate_certs": "maybe"}, "must be true or false"),
        "http_bad_timeout": ({**http, "url": f"{url}/null", "timeout": "soon"}, "'timeout' must be a number"),
        # static
        "static_typo": (
            {"type": "static", "server": []},
            "unknown option 'server' for type static; did you mean 'servers'",
        ),
        "static_servers_mapping": ({"type": "static", "servers": {"a": 1}}, "'servers' must be a list, not a dict"),
        "static_servers_file_not_json": (
            {"type": "static", "servers_file": "/etc/hostname"},
            "servers_file /etc/hostname is not JSON",
        ),
        "static_servers_and_file": (
            {"type": "static", "servers": [], "servers_file": "/etc/hostname"},
            "give 'servers' or 'servers_file', not both",
        ),
        "static_port_zero": (
            {"type": "static", "servers": [{"address": "10.0.0.1", "port": 0}]},
            "port must be an integer 1..65535, got 0",
        ),
        "static_weight_word": (
            {"type": "static", "servers": [{"address": "10.0.0.1", "weight": "heavy"}]},
            "weight must be an integer 0..256, got 'heavy'",
        ),
        "static_default_weight_bool": (
            {"type": "static", "weight": True, "servers": [{"address": "10.0.0.1"}]},
            "option 'weight' must be a number, not True",
        ),
        # dns_srv against dnsmasq
        "dns_typo": (
            {**dns, "recrd": "_rtmp._tcp.media.test"},
            "unknown option 'recrd' for type dns_srv; did you mean 'record'",
        ),
        "dns_missing_record": (dict(dns), "option 'record' is required for type dns_srv"),
        "dns_bad_type": ({**dns, "record": "_rtmp._tcp.media.test", "address_type": "MX"}, "must be one of A, AAAA"),
        "dns_port_zero": ({**dns, "record": "_zero._tcp.media.test"}, "port must be an integer 1..65535, got 0"),
        "dns_target_unspecified": ({**dns, "record": "_loop._tcp.media.test"}, "'0.0.0.0' is not a usable"),
        "dns_silent_server": (
            {
                "type": "dns_srv",
                "record": "_rtmp._tcp.media.test",
                "nameserver": "127.0.0.1",
                "nameserver_port": silent_dns_port,
                "timeout": 30,
                "deadline": 2,
            },
            "deadline of 2s",
        ),
        # aws_ecs and aws_ec2 against moto
        "ecs_typo_services": (
            {"type": "aws_ecs", "cluster": "hostile", "services_": ["ingest"], **aws},
            "unknown option 'services_' for type aws_ecs; did you mean 'services'",
        ),
        "ecs_services_string": (
            {"type": "aws_ecs", "cluster": "hostile", "services": "ingest", **aws},
            "must be a list",
        ),
        "ecs_negative_timeout": ({"type": "aws_ecs", "cluster": "hostile", "timeout": -1, **aws}, "must be a positive"),
        "ecs_endpoint_down": (
            {
                "type": "aws_ecs",
                "cluster": "hostile",
                **aws,
                "endpoint_url": f"http://127.0.0.1:{closed}",
                "max_attempts": 1,
                "timeout": 2,
            },
            "Could not connect",
        ),
        "ecs_unrendered_key": (
            {"type": "aws_ecs", "cluster": "hostile", **aws, "aws_secret_access_key": "{{ vault_aws_secret }}"},
            "'aws_secret_access_key' still holds template text",
        ),
        "ec2_typo_tags": ({"type": "aws_ec2", "tag": {"Role": "hostile"}, **aws}, "did you mean 'tags'"),
        "ec2_tags_list": ({"type": "aws_ec2", "tags": ["Role"], **aws}, "'tags' must be a mapping, not a list"),
        "ec2_port_tag_word": (
            {"type": "aws_ec2", "tags": {"Role": "hostile"}, "port_tag": "Port", **aws},
            "port must be an integer 1..65535, got 'rtmp'",
        ),
        # docker
        "docker_typo": ({"type": "docker", "labels": "a=b", "network": "n"}, "did you mean 'label'"),
        "docker_weight_label_word": (
            {"type": "docker", "label": "rtmpedge.role=hostile", "network": docker_network},
            "weight must be an integer 0..256, got 'heavy'",
        ),
        "docker_wrong_network": (
            {"type": "docker", "label": "rtmpedge.role=hostile", "network": "rtmpedge-no-such-net"},
            "is not on network 'rtmpedge-no-such-net'",
        ),
    }


@pytest.fixture(scope="module")
def cases(hostile_url, dns_port, silent_dns_port, aws_world, docker_hostile):
    return hostile_cases(hostile_url, dns_port, silent_dns_port, aws_world, docker_hostile)


CASE_IDS = list(hostile_cases("http://x", 1, 1, "http://x", "n"))


def test_the_suite_drives_every_source_type_through_at_least_forty_cases():
    kinds = {options["type"] for options, _m in hostile_cases("http://x", 1, 1, "http://x", "n").values()}
    assert kinds == {"static", "dns_srv", "aws_ecs", "aws_ec2", "http_json", "docker"}
    assert len(CASE_IDS) >= 40


@pytest.mark.parametrize("case", CASE_IDS)
def test_the_job_refuses_hostile_input_and_changes_nothing(case, cases, balancer):
    options, message = cases[case]
    sources = [{**options, "name": f"case-{case}"}]
    before = balancer.snapshot()
    for attempt in (1, 2):  # a repeat of the same input changes nothing either
        started = time.monotonic()
        run = balancer.run_job(sources)
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 1, f"attempt {attempt}: exit {run.returncode}: {run.stdout} {run.stderr}"
        assert len(lines) == 1, f"attempt {attempt}: expected one line, got {lines}"
        assert lines[0].startswith(f"failed, nothing changed: media server source case-{case}: "), lines[0]
        assert message in lines[0], lines[0]
        assert "Traceback" not in run.stderr
        assert time.monotonic() - started < 60, f"the job took {time.monotonic() - started:.0f}s"
        assert balancer.snapshot() == before, f"attempt {attempt} changed HAProxy"
        assert balancer.lock_is_free(), f"attempt {attempt} left the run lock held"


def test_a_good_run_after_hostile_input_still_changes_nothing(balancer):
    before = balancer.snapshot()
    run = balancer.run_job(balancer.good_sources())
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("no change "), run.stdout
    assert balancer.snapshot() == before


def test_a_very_long_name_is_bounded_and_converges_without_reloads(balancer):
    long_name = "task-" + "x" * 5000
    sources = balancer.good_sources()
    sources[0]["servers"].append({"name": long_name, "address": "127.0.0.2", "port": balancer.media[0].port})
    workers = balancer.snapshot()["workers"]
    first = balancer.run_job(sources)
    assert first.returncode == 0, first.stderr
    assert "reload=no" in first.stdout, first.stdout
    names = set(balancer.snapshot()["servers"])
    added = names - {"m0", "m1"}
    assert len(added) == 1 and len(next(iter(added))) <= 64, names
    for _n in range(2):
        again = balancer.run_job(sources)
        assert again.stdout.startswith("no change "), again.stdout
    assert balancer.snapshot()["workers"] == workers
    # Back to the two servers (a scale-in of one of three is within the default limit).
    back = balancer.run_job(balancer.good_sources())
    assert back.returncode == 0, back.stderr


def test_the_largest_maxconn_converges(balancer):
    sources = balancer.good_sources()
    sources[0]["servers"][0]["maxconn"] = 1_000_000
    first = balancer.run_job(sources)
    assert first.returncode == 0 and "maxconn=m0" in first.stdout, first.stdout + first.stderr
    again = balancer.run_job(sources)
    assert again.stdout.startswith("no change "), again.stdout
    assert balancer.run_job(balancer.good_sources()).returncode == 0


# The plugin with the shipped ansible.cfg: a subset, one or more per source type.
PLUGIN_CASES = [
    "http_ssh_banner",
    "http_deep_json",
    "http_trickled_body",
    "static_typo",
    "dns_typo",
    "ecs_typo_services",
    "ec2_typo_tags",
    "docker_typo",
]


@pytest.mark.parametrize("case", PLUGIN_CASES)
def test_ansible_inventory_fails_naming_the_source_and_cause(case, cases, tmp_path):
    options, message = cases[case]
    result = run_inventory(tmp_path, {"sources": [{**options, "name": f"case-{case}"}]}, env=AWS_ENV)
    text = " ".join(result.stderr.split())
    assert result.returncode != 0, result.stdout[:500]
    assert f"media server source case-{case}: " in text
    assert message in text, text[:2000]


def test_the_plugin_renders_a_lookup_in_a_credential(tmp_path, http_url):
    # conftest's /auth answers 401 unless the bearer token is s3cret.
    config = {
        "sources": [
            {"type": "http_json", "url": f"{http_url}/auth", "bearer_token": "{{ lookup('env', 'FLEET_TOKEN') }}"}
        ]
    }
    good = run_inventory(tmp_path, config, env={"FLEET_TOKEN": "s3cret"})
    assert good.returncode == 0, good.stderr
    wrong = run_inventory(tmp_path, config, env={"FLEET_TOKEN": "nope"})
    assert wrong.returncode != 0
    assert "answered HTTP 401" in " ".join(wrong.stderr.split())


def test_a_missing_haproxy_fact_is_a_clear_error(balancer, tmp_path):
    job = json.loads(balancer.job.read_text())
    job["haproxy_fact"] = str(tmp_path / "absent.fact")
    (tmp_path / "job.json").write_text(json.dumps(job))
    run = subprocess.run(
        [sys.executable, "-c", JOB_LAUNCHER, str(REPO / ".collections"), "--config", str(tmp_path / "job.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    assert "run the haproxy role first" in run.stderr

"""Real services on loopback for the inventory plugin: dnsmasq, a moto server, an HTTP server, the Docker engine."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / ".collections"))
sys.path.insert(0, str(REPO / "tests"))  # the harness package

from harness.loopback import free_port  # noqa: E402


def wait_for_port(port: int, seconds: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Until a TCP connect to 127.0.0.1:port succeeds; fails early when `proc` exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{proc.args[0]} exited ({proc.returncode}) before listening on 127.0.0.1:{port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nothing listens on 127.0.0.1:{port} after {seconds:.0f}s")


def _unwrap(value):
    """ansible-inventory --list marks unsafe strings as {"__ansible_unsafe": ...}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def run_inventory(tmp_path: Path, config: dict, env: dict | None = None) -> subprocess.CompletedProcess:
    path = tmp_path / "fleet.media_servers.yml"
    path.write_text(yaml.safe_dump({"plugin": "rtmpedge.balancer.media_servers", **config}))
    return subprocess.run(
        ["ansible-inventory", "-i", str(path), "--list"],
        cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


def inventory(tmp_path: Path, config: dict, env: dict | None = None) -> dict:
    """The parsed `ansible-inventory --list` of a plugin configuration; fails on any error."""
    result = run_inventory(tmp_path, config, env)
    assert result.returncode == 0, result.stderr
    assert "Failed to parse" not in result.stderr, result.stderr
    return _unwrap(json.loads(result.stdout))


def inventory_error(tmp_path: Path, config: dict, env: dict | None = None) -> str:
    """The error text of a configuration that must fail."""
    result = run_inventory(tmp_path, config, env)
    text = " ".join(result.stderr.split())
    assert "Failed to parse" in text or result.returncode != 0, result.stdout
    return text


# --- HTTP ----------------------------------------------------------------------

FLEET = [
    {"id": "edge-a", "address": "10.60.0.1", "port": 1935, "weight": 5, "maxconn": 100},
    {"id": "edge-b", "address": "10.60.0.2", "state": "drain"},
]
ROUTES = {
    "/fleet": (200, json.dumps(FLEET)),
    "/wrapped": (200, json.dumps({"servers": FLEET})),
    "/garbage": (200, "{not json"),
    "/object": (200, json.dumps({"address": "10.60.0.1"})),
    "/empty": (200, "[]"),
    "/wrong-types": (200, json.dumps([{"address": "10.60.0.1", "port": "rtmp"}])),
    "/bad-ip": (200, json.dumps([{"address": "999.1.1.1"}])),
    "/big-port": (200, json.dumps([{"address": "10.60.0.1", "port": 70000}])),
    "/negative-weight": (200, json.dumps([{"address": "10.60.0.1", "weight": -3}])),
    "/no-address": (200, json.dumps([{"ip": "10.60.0.1"}])),
    "/injection": (200, json.dumps([{"id": "{{ lookup('pipe', 'id') }}", "address": "10.60.0.9", "state": "ready"}])),
    "/error": (500, "boom"),
    "/fleet6": (200, json.dumps([{"id": "edge-v6", "address": "2001:db8:60::2", "port": 1935}])),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(3)
        if self.path == "/auth" and self.headers.get("Authorization") != "Bearer s3cret":
            self.send_response(401)
            self.end_headers()
            return
        status, body = ROUTES.get(self.path, (200, json.dumps(FLEET)))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def http_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


# --- DNS -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def dns_port():
    binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    if not Path(binary).exists():
        pytest.fail("dnsmasq is missing; scripts/integration.sh installs dnsmasq-base")
    port = free_port()
    records = [
        "--srv-host=_rtmp._tcp.media.test,media1.media.test,1935,0,50",
        "--srv-host=_rtmp._tcp.media.test,media2.media.test,1936,0,0",
        "--host-record=media1.media.test,10.70.0.11",
        "--host-record=media2.media.test,10.70.0.12",
        # A dual-stack media server: an A and an AAAA record.
        "--srv-host=_rtmp6._tcp.media.test,media6.media.test,1935,0,10",
        "--host-record=media6.media.test,10.70.0.16,fd00:70::16",
        "--srv-host=_heavy._tcp.media.test,media1.media.test,1935,0,1000",
        "--srv-host=_heavy._tcp.media.test,media2.media.test,1935,0,500",
        "--srv-host=_dangling._tcp.media.test,ghost.media.test,1935,0,10",
        "--txt-record=_empty._tcp.media.test,nothing here",
        # Hostile answers: an SRV port 0, and a target whose A record is not a usable address.
        "--srv-host=_zero._tcp.media.test,media1.media.test,0,0,10",
        "--srv-host=_loop._tcp.media.test,loop.media.test,1935,0,10",
        "--host-record=loop.media.test,0.0.0.0",
    ]
    proc = subprocess.Popen(
        [
            binary,
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--log-facility=-",
            f"--port={port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--local=/media.test/",
            *records,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, proc=proc)  # dnsmasq answers DNS over TCP on the same port
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def silent_dns_port():
    """A UDP port that takes DNS queries and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


# --- AWS (moto server) -----------------------------------------------------------


def _moto(env_extra: dict | None = None):
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env_extra or {})},
    )
    wait_for_port(port)
    return proc, f"http://127.0.0.1:{port}"


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}


@pytest.fixture(scope="session")
def moto_url():
    proc, url = _moto()
    # moto walks an ECS task through its stop states on every describe; real tasks
    # stay RUNNING until stopped, so pin them there.
    pin = {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000}}
    request = urllib.request.Request(
        f"{url}/moto-api/state-manager/set-transition", data=json.dumps(pin).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=5).close()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_denied():
    """A moto server enforcing IAM: after two setup calls, a user without policies is refused."""
    proc, url = _moto({"INITIAL_NO_AUTH_ACTION_COUNT": "2"})
    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", **_keys(AWS_ENV))
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    yield url, {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    proc.terminate()
    proc.wait(timeout=10)


def _keys(env: dict) -> dict:
    return {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}

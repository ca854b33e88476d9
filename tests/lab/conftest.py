"""Fault tests on the running lab (`make lab`): real balancers, nginx-rtmp media servers, ffmpeg.

Run by scripts/lab.sh after `make lab`; by hand: `make lab && .venv/bin/pytest tests/lab`.
Measured times go to build/reliability.json (docs/reliability.md quotes them).
"""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))

import lab  # noqa: E402 - scripts/lab.py, the lab's one definition
from harness.wait import wait_until  # noqa: E402

FIGURES: dict = {}


def pytest_sessionfinish(session, exitstatus):
    if FIGURES:
        out = ROOT / "build" / "reliability.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(FIGURES, indent=2) + "\n")
        sys.stdout.write(f"\nmeasured: {json.dumps(FIGURES)}\n")


@pytest.fixture(scope="session")
def docker_client():
    client = lab.docker.from_env()
    running = {c.name for c in client.containers.list(filters={"label": f"{lab.LAB_LABEL}=1"})}
    wanted = {*lab.BALANCERS, lab.CLIENT, *(lab.media_name(i) for i in (1, 2, 3))}
    if not wanted <= running:
        pytest.fail(f"the lab is not up (missing {sorted(wanted - running)}): make lab")
    return client


@pytest.fixture
def figures():
    return FIGURES


def address(client, name: str, network: str) -> str:
    return lab.address(client, name, network)


def stats(client, lb: str) -> dict[tuple[str, str], dict]:
    return lab.balancer_stats(client, lb)


def health(client, lb: str) -> int:
    return lab.http_get(client, lb, 8000, "/")[0]


def wait_for(predicate, seconds: float, what: str) -> float:
    """Seconds until the predicate held (the fault tests report them); fails after `seconds`."""
    started = time.monotonic()
    wait_until(predicate, seconds, what)
    return time.monotonic() - started


def publish(client, lb: str, key: str, port: int = 1935) -> None:
    """An ffmpeg publisher in the lab's client container that streams until stop_publishers() (443: RTMPS)."""
    url = lab.publish_url(client, lb, port, key)
    lab.install_publisher(client)
    code, _out, err = lab.publisher(client, "start", f"{key}={url}")
    assert code == 0, f"the test publisher did not start: {err}"


def publisher_state(client, key: str) -> str:
    """running, stopped (by the test), cut (ended before the test stopped it) or failed."""
    _code, out, _err = lab.publisher(client, "status", key)
    return json.loads(out)[key]["state"]


def stop_publishers(client, *keys: str) -> dict[str, dict]:
    """Stop the publishers; how each ended: {key: {state, rc, ran_s, error}}."""
    _code, out, err = lab.publisher(client, "stop", *keys)
    assert out.strip(), f"the test publisher did not answer: {err}"
    return json.loads(out)


def live_streams(client) -> dict[str, tuple[str, str]]:
    return lab.streams(client)


def prometheus_api(client, path: str, **parameters) -> dict:
    """The lab's Prometheus HTTP API (docs/monitoring.md): the answer's data."""
    return lab.prometheus_api(client, path, **parameters)


def prometheus_query(client, query: str) -> list[dict]:
    """An instant query; the result vector."""
    return prometheus_api(client, "query", query=query)["result"]


def wait_for_alert(client, alert: str, instance: str, seconds: float = 90) -> float:
    """Seconds until Prometheus shows `alert` firing for the balancer `instance`."""
    query = f'ALERTS{{alertname="{alert}",alertstate="firing",instance="{instance}"}}'
    return wait_for(lambda: prometheus_query(client, query), seconds, f"{alert} firing for {instance} in Prometheus")


# Run in the client: the certificate a publisher gets on 443, verified with the client's system CAs.
PEER_CERTIFICATE = (
    "import base64, socket, ssl, sys; "
    "tls = ssl.create_default_context().wrap_socket("
    "socket.create_connection((sys.argv[1], 443), timeout=10), server_hostname=sys.argv[1]); "
    "print(base64.b64encode(tls.getpeercert(binary_form=True)).decode())"
)


def served_certificate(client, lb: str) -> bytes:
    """The DER certificate a new RTMPS session with the balancer gets, verified as a publisher verifies it."""
    host = address(client, lb, lab.PUBLIC)
    code, out, err = lab.run_in(client, lab.CLIENT, "python3", "-c", PEER_CERTIFICATE, host)
    assert code == 0, f"no verified TLS session with {lb}: {err or out}"
    return base64.b64decode(out.strip())

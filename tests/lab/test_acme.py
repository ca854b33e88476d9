"""RTMPS certificates from an ACME CA (docs/rtmps.md): Debian's pebble, HTTP-01 on port 80.

lb1 orders its certificate from pebble, which validates by fetching the challenge from lb1's
public address on port 80, where the RTMP listener hands it to HAProxy's own responder.
A renewal then reaches HAProxy through the runtime API under a live RTMPS stream: the same
workers before and after, the stream uncut, a new session presenting the new serial. At the
end lb1 is converged back to the lab's own certificate.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import urllib.request

import pytest
from conftest import (
    ROOT,
    address,
    lab,
    live_streams,
    publish,
    publisher_state,
    served_certificate,
    stop_publishers,
    wait_for,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from harness import pki
from harness.containers import dexec

LB = "rtmpedge-lb1"
ACME_DIR = lab.CLOUD_DIR / "acme"
PEBBLE_ROOT_IN_CONTAINERS = "/usr/local/share/ca-certificates/rtmpedge-pebble-root.crt"


def _served_certificate(client) -> x509.Certificate:
    return x509.load_der_x509_certificate(served_certificate(client, LB))


def _gateway(client) -> str:
    """The host's IPv4 address on the publishers' network: where pebble listens."""
    configs = client.networks.get(lab.PUBLIC).attrs["IPAM"]["Config"]
    return next(c["Gateway"] for c in configs if "." in c.get("Subnet", ""))


def _playbook_changes(output: str, host: str) -> int:
    found = re.search(rf"^{re.escape(host)}\s*:\s*ok=\d+\s+changed=(\d+)", output, re.MULTILINE)
    assert found, f"no play recap for {host}:\n{output[-2000:]}"
    return int(found.group(1))


def _run(*args: str) -> str:
    """A playbook run on lb1 (its output, which is also printed)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false"}
    result = subprocess.run(
        [str(ROOT / ".venv/bin/ansible-playbook"), "-i", "inventories/lab", "--limit", LB, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    print(result.stdout[-6000:], result.stderr[-3000:])
    assert result.returncode == 0, f"ansible-playbook {' '.join(args)} failed:\n{result.stdout[-4000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def pebble(docker_client):
    """Debian's pebble on the host, its API on the publishers' network, validating HTTP-01 on port 80."""
    subprocess.run([str(ROOT / "scripts/ensure-deb.sh"), "pebble", "pebble"], check=True)
    gateway = _gateway(docker_client)
    ACME_DIR.mkdir(parents=True, exist_ok=True)
    authority = pki.Authority.kept_in(lab.PKI_DIR, "rtmpedge lab CA", days=825)
    lab.trust(docker_client, LB, lab.CA_IN_CLIENT, authority.pem)  # as `make lab` does; cheap to make sure
    bundle, _leaf = authority.issue(pki.new_serial(), [gateway], days=2)
    served = ACME_DIR / "pebble.pem"  # Go reads the certificates and the key from the same file
    served.touch(mode=0o600)
    served.write_text(bundle)
    config = ACME_DIR / "pebble.json"
    config.write_text(json.dumps({"pebble": {
        "listenAddress": f"{gateway}:14000", "managementListenAddress": f"{gateway}:15000",
        "certificate": str(served), "privateKey": str(served),
        "httpPort": 80, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": False,
    }}))  # fmt: skip
    # Validate at once, accept every good nonce, and make every order prove control again.
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
    with open(ACME_DIR / "pebble.log", "ab") as log:
        process = subprocess.Popen(["pebble", "-config", str(config)], env=env, stdout=log, stderr=subprocess.STDOUT)
    context = ssl.create_default_context(cafile=str(lab.PKI_DIR / "ca.pem"))

    def get(url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            return response.read()

    try:
        wait_for(lambda: _answers(get, f"https://{gateway}:14000/dir"), 30, "pebble's ACME directory")
        root = get(f"https://{gateway}:15000/roots/0").decode()
        # Publishers trust the ACME CA's root, as they would trust a public CA's.
        lab.trust(docker_client, lab.CLIENT, PEBBLE_ROOT_IN_CONTAINERS, root)
        yield {"directory": f"https://{gateway}:14000/dir", "root": x509.load_pem_x509_certificate(root.encode())}
    finally:
        process.terminate()
        process.wait(timeout=10)
        lab.trust(docker_client, lab.CLIENT, PEBBLE_ROOT_IN_CONTAINERS, None)


def _answers(get, url: str) -> bool:
    try:
        return bool(json.loads(get(url)).get("newOrder"))
    except OSError:
        return False


@pytest.fixture(scope="module")
def acme_vars(docker_client, pebble):
    """lb1 ordering its certificate for its public address from pebble; converged back at the end."""
    extra = ACME_DIR / "acme-vars.json"
    extra.write_text(json.dumps({
        "haproxy_acme_enabled": True,
        "haproxy_acme_directory": pebble["directory"],
        "haproxy_acme_identifiers": [address(docker_client, LB, lab.PUBLIC)],
        "haproxy_acme_terms_agreed": True,
        "haproxy_rtmps_certificate": "",
    }))  # fmt: skip
    try:
        yield "@" + str(extra)
    finally:
        _run("site.yml", "--tags", "haproxy")  # the lab's own certificate and configuration again


def test_a_balancer_orders_its_certificate_and_renews_it_under_a_live_stream(docker_client, pebble, acme_vars, figures):
    before = _served_certificate(docker_client)
    _run("site.yml", "--tags", "haproxy", "-e", acme_vars)
    ordered = _served_certificate(docker_client)
    assert ordered.issuer != before.issuer, f"{LB} still serves a certificate from {before.issuer.rfc4514_string()}"
    lb_ip = address(docker_client, LB, lab.PUBLIC)
    assert lb_ip in pki.names_of(ordered.public_bytes(serialization.Encoding.PEM).decode()), ordered.extensions
    challenges = dexec(LB, "cat /etc/haproxy/acme-challenges.map").stdout
    assert challenges == "", f"challenge answers left behind: {challenges!r}"

    key = "acme-renewal"
    client_ip = address(docker_client, lab.CLIENT, lab.PUBLIC)
    publish(docker_client, LB, key, port=443)
    try:
        wait_for(
            lambda: live_streams(docker_client).get(key, ("", ""))[1] == client_ip,
            60,
            "the RTMPS stream, verified against the ACME CA's root, on a media server",
        )
        workers = lab.workers(docker_client.containers.get(LB))
        assert len(workers) == 1, workers
        # Due for renewal at once: more days wanted than any certificate has left.
        renewal = _run("playbooks/certificate.yml", "-e", acme_vars, "-e", "haproxy_acme_renew_days=100000")
        renewed = _served_certificate(docker_client)
        assert renewed.serial_number != ordered.serial_number, "a new session still gets the first serial"
        assert _playbook_changes(renewal, LB) > 0
        after = lab.workers(docker_client.containers.get(LB))
        assert after == workers, f"the renewal started a new worker: {workers} -> {after}"
        assert publisher_state(docker_client, key) == "running", "the renewal cut the live stream"
    finally:
        ended = stop_publishers(docker_client, key)
    assert ended[key]["state"] == "stopped", ended
    figures["acme_renewal"] = {"first_serial": hex(ordered.serial_number), "renewed_serial": hex(renewed.serial_number)}

    again = _run("playbooks/certificate.yml", "-e", acme_vars)
    assert _playbook_changes(again, LB) == 0, "a renewal run with days left changed something"
    assert _served_certificate(docker_client).serial_number == renewed.serial_number

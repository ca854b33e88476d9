"""rtmpedge.balancer.haproxy_certificate against a real HAProxy serving TLS on loopback.

A rotation under a live TLS stream: same worker before and after, the stream keeps
flowing, a new session gets the new serial. A bundle HAProxy refuses and content that is
no bundle change nothing; a file the worker does not serve asks for a reload.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import send_command, show_proc
from harness.loopback import LoopbackServer, start_master
from harness.pki import Authority, key_pem, other_key, serial_of
from loopback import free_port, wait_until
from run_module import run_module

NAME = "ingest.test"


class Echo(LoopbackServer):
    """A 'media server' that sends back every byte it receives."""

    def serve(self, peer):
        with peer:
            try:
                while data := peer.recv(65536):
                    peer.sendall(data)
            except OSError:
                return  # the client went away


class LiveStream(threading.Thread):
    """A TLS session through the balancer that sends a chunk every 20 ms and reads its echo back."""

    def __init__(self, context, port):
        super().__init__(daemon=True)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.tls = context.wrap_socket(raw, server_hostname=NAME)
        self.serial = serial_of(self.tls.getpeercert(binary_form=True))
        self.echoed = 0
        self.error: Exception | None = None
        self.stop = threading.Event()

    def run(self):
        chunk = b"\x09" * 4096
        try:
            while not self.stop.is_set():
                self.tls.sendall(chunk)
                got = 0
                while got < len(chunk):
                    data = self.tls.recv(len(chunk) - got)
                    if not data:
                        raise ConnectionError("the balancer closed the stream")
                    got += len(data)
                self.echoed += got
                time.sleep(0.02)
        except Exception as e:
            self.error = e
        finally:
            self.tls.close()


@pytest.fixture(scope="module")
def authority():
    return Authority()


@pytest.fixture
def tls_balancer(haproxy_bin, tmp_path, authority):
    """HAProxy master-worker with `bind ... ssl crt <dir>/rtmps.pem` in front of an echo server."""
    certs = tmp_path / "certs"
    certs.mkdir()
    bundle, _leaf = authority.issue(1001, [NAME])
    (certs / "rtmps.pem").write_text(bundle)
    port, echo, admin = free_port(), Echo(), tmp_path / "admin.sock"
    config = tmp_path / "haproxy.cfg"
    config.write_text(f"""global
    stats socket {admin} mode 600 level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 1m
    timeout server 1m
frontend rtmps
    bind 127.0.0.1:{port} ssl crt {certs}/rtmps.pem
    default_backend media
backend media
    server echo 127.0.0.1:{echo.port}
""")
    master = tmp_path / "master.sock"
    proc = start_master(haproxy_bin, config, master)
    context = ssl.create_default_context(cadata=authority.pem)
    try:
        wait_until(lambda: "/rtmps.pem" in send_command(str(admin), "show ssl cert", 1), what="HAProxy to serve TLS")
        yield {
            "port": port,
            "admin": str(admin),
            "master": str(master),
            "path": certs / "rtmps.pem",
            "context": context,
            "lock": str(tmp_path / "apply.lock"),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _serial_of_a_new_session(balancer) -> int:
    raw = socket.create_connection(("127.0.0.1", balancer["port"]), timeout=10)
    with balancer["context"].wrap_socket(raw, server_hostname=NAME) as tls:
        return serial_of(tls.getpeercert(binary_form=True))


def _rotate(tmp_path, balancer, content, **extra) -> dict:
    args = {
        "path": str(balancer["path"]),
        "content": content,
        "admin_socket": balancer["admin"],
        "lock_path": balancer["lock"],
        **extra,
    }
    return run_module(tmp_path, "rtmpedge.balancer.haproxy_certificate", args)


def test_a_rotation_under_a_live_stream_keeps_the_worker_and_the_stream(tmp_path, tls_balancer, authority):
    stream = LiveStream(tls_balancer["context"], tls_balancer["port"])
    stream.start()
    assert stream.serial == 1001
    wait_until(lambda: stream.echoed > 0 or stream.error, what="the stream to flow before the rotation")
    workers_before = show_proc(tls_balancer["master"])["workers"]

    new_bundle, _leaf = authority.issue(1002, [NAME])
    result = _rotate(tmp_path, tls_balancer, new_bundle, mode="0640")
    assert not result.get("failed"), result
    assert result["changed"] and result["rotated"] and result["loaded"], result
    assert not result["reload_required"], result
    assert int(result["running"]["serial"], 16) == 1002, result["running"]

    echoed_at_rotation = stream.echoed
    wait_until(
        lambda: stream.echoed > echoed_at_rotation + 40960 or stream.error,
        what="the live stream to carry 10 more chunks after the rotation",
    )
    assert stream.error is None, f"the live stream was cut: {stream.error}"
    assert stream.serial == 1001  # the live session keeps the certificate it started with
    assert _serial_of_a_new_session(tls_balancer) == 1002
    workers_after = show_proc(tls_balancer["master"])["workers"]
    assert [w["pid"] for w in workers_after] == [w["pid"] for w in workers_before], "a new worker started"
    stream.stop.set()
    stream.join(timeout=10)
    assert stream.error is None, f"the live stream failed: {stream.error}"

    on_disk = tls_balancer["path"]
    assert on_disk.read_text() == "".join(line + "\n" for line in new_bundle.splitlines() if line.strip())
    assert oct(os.stat(on_disk).st_mode & 0o777) == "0o640"

    again = _rotate(tmp_path, tls_balancer, new_bundle, mode="0640")
    assert not again["changed"] and not again["rotated"], again


def test_check_mode_reports_a_rotation_and_changes_nothing(tmp_path, tls_balancer, authority):
    before = tls_balancer["path"].read_text()
    new_bundle, _leaf = authority.issue(1005, [NAME])
    args = {
        "path": str(tls_balancer["path"]),
        "content": new_bundle,
        "admin_socket": tls_balancer["admin"],
        "lock_path": tls_balancer["lock"],
    }
    result = run_module(tmp_path, "rtmpedge.balancer.haproxy_certificate", args, check=True, diff=True)
    assert result["changed"] and result["rotated"], result
    assert result["diff"]["before"] != result["diff"]["after"]
    assert tls_balancer["path"].read_text() == before
    assert _serial_of_a_new_session(tls_balancer) == 1001


def test_a_bundle_haproxy_refuses_leaves_file_and_served_certificate_alone(tmp_path, tls_balancer, authority):
    before = tls_balancer["path"].read_text()
    # A good certificate with somebody else's key: HAProxy finds the two do not match.
    mismatched = authority.issue(1003, [NAME])[1] + authority.pem + key_pem(other_key())
    result = _rotate(tmp_path, tls_balancer, mismatched)
    assert result.get("failed"), result
    assert str(tls_balancer["path"]) in result["msg"] and "HAProxy refused" in result["msg"], result["msg"]
    assert tls_balancer["path"].read_text() == before
    assert _serial_of_a_new_session(tls_balancer) == 1001
    # The refused transaction was aborted: the next good bundle goes through.
    good, _leaf = authority.issue(1006, [NAME])
    assert _rotate(tmp_path, tls_balancer, good)["rotated"]
    assert _serial_of_a_new_session(tls_balancer) == 1006


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        ("not a certificate\n", "no -----BEGIN CERTIFICATE----- block"),
        ("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "not valid base64"),
        ("cert-only", "0 private key blocks"),
    ],
)
def test_content_that_is_no_bundle_fails_before_touching_anything(tmp_path, tls_balancer, authority, content, cause):
    if content == "cert-only":
        content = authority.issue(1007, [NAME])[1]
    before = tls_balancer["path"].read_text()
    result = _rotate(tmp_path, tls_balancer, content)
    assert result.get("failed") and cause in result["msg"], result
    assert str(tls_balancer["path"]) in result["msg"]
    assert tls_balancer["path"].read_text() == before
    assert _serial_of_a_new_session(tls_balancer) == 1001


def test_a_file_the_worker_does_not_serve_is_written_and_asks_for_a_reload(tmp_path, tls_balancer, authority):
    other = Path(tls_balancer["path"]).with_name("next.pem")
    bundle, _leaf = authority.issue(1008, [NAME])
    result = run_module(
        tmp_path,
        "rtmpedge.balancer.haproxy_certificate",
        {
            "path": str(other),
            "content": bundle,
            "admin_socket": tls_balancer["admin"],
            "lock_path": tls_balancer["lock"],
        },
    )
    assert result["changed"] and result["reload_required"] and not result["loaded"] and not result["rotated"], result
    assert oct(os.stat(other).st_mode & 0o777) == "0o600"  # a new key file is the owner's only
    assert _serial_of_a_new_session(tls_balancer) == 1001

"""RTMPS on the lab's balancers (docs/rtmps.md): HAProxy 2.6 on lb1, 3.0 on lb2.

A renewed certificate reaches both through the runtime API under live RTMPS streams: the
same workers before and after, the streams uncut, a new session presenting the new serial.
Inside TLS the protocol check still refuses what is not RTMP.
"""

from __future__ import annotations

import socket
import ssl

from conftest import (
    ROOT,
    address,
    lab,
    live_streams,
    publish,
    publisher_state,
    served_certificate,
    stats,
    stop_publishers,
    wait_for,
)
from harness import pki


def _served_serial(client, lb: str) -> int:
    return pki.serial_of(served_certificate(client, lb))


def test_a_renewed_certificate_reaches_both_balancers_under_live_rtmps_streams(docker_client):
    keys = {lb: f"rtmps-rotation-{lb.removeprefix('rtmpedge-')}" for lb in lab.BALANCERS}
    client_ip = address(docker_client, lab.CLIENT, lab.PUBLIC)
    for lb, key in keys.items():
        publish(docker_client, lb, key, port=443)
    try:
        wait_for(
            lambda: all(live_streams(docker_client).get(k, ("", ""))[1] == client_ip for k in keys.values()),
            60,
            "both RTMPS streams on a media server, with the client's own address",
        )
        old_serial = {lb: _served_serial(docker_client, lb) for lb in lab.BALANCERS}
        workers = {lb: lab.workers(docker_client.containers.get(lb)) for lb in lab.BALANCERS}
        assert all(len(w) == 1 for w in workers.values()), workers

        authority = pki.Authority.kept_in(lab.PKI_DIR, "rtmpedge lab CA", days=825)
        bundle_file = lab.PKI_DIR / "rtmps.pem"
        names = sorted(pki.names_of(bundle_file.read_text()))
        new_serial = pki.new_serial()
        bundle, _leaf = authority.issue(new_serial, names, days=90)
        bundle_file.write_text(bundle)
        lab.ansible_playbook(str(ROOT / "playbooks/certificate.yml"), inventory=lab.inventory_dir(docker_client))

        for lb in lab.BALANCERS:
            assert _served_serial(docker_client, lb) == new_serial != old_serial[lb], f"{lb} serves the old serial"
            after = lab.workers(docker_client.containers.get(lb))
            assert after == workers[lb], f"{lb} started a new worker: {workers[lb]} -> {after}"
        for key in keys.values():
            assert publisher_state(docker_client, key) == "running", f"{key} was cut by the rotation"
    finally:
        ended = stop_publishers(docker_client, *keys.values())
    assert all(v["state"] == "stopped" for v in ended.values()), ended


def test_inside_tls_what_is_not_rtmp_is_refused_before_any_media_server(docker_client):
    lb = "rtmpedge-lb1"
    host = address(docker_client, lb, lab.PUBLIC)
    context = ssl.create_default_context(cafile=str(lab.PKI_DIR / "ca.pem"))
    before = int(stats(docker_client, lb)[("rtmp_media", "BACKEND")]["stot"])
    raw = socket.create_connection((host, 443), timeout=10)
    with context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: ingest.lab\r\n\r\n")
        try:
            answer = tls.recv(1)
        except (ConnectionResetError, ssl.SSLError):
            answer = b""
    assert answer == b"", f"HAProxy answered an HTTP request on 443: {answer!r}"
    assert int(stats(docker_client, lb)[("rtmp_media", "BACKEND")]["stot"]) == before, "it reached a media server"

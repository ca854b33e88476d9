"""Encoders other than ffmpeg through the lab's balancers (docs/encoders.md).

GStreamer from Debian publishes with its native rtmp2sink and with rtmpsink, built on librtmp
(the stack OBS's RTMP output descends from), through both balancers on 1935, 80 and RTMPS on
443; each stream reaches a media server with the client's own address and ends when the test
stops it. How long each client takes from its connect to a complete C0+C1 is measured and
must stay far inside the protocol check's default handshake timeout.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from conftest import ROOT, address, lab, live_streams, stop_publishers, wait_for

GSTREAMER = ["gst-rtmp2", "gst-librtmp"]
# librtmp's RTMPS fails over TLS 1.3: it publishes to the lab's RTMPS listener capped at TLS 1.2.
LISTENERS = {"gst-rtmp2": [1935, 80, 443], "gst-librtmp": [1935, 80, lab.RTMPS_TLS12_PORT]}


def _default_handshake_timeout_s() -> float:
    defaults = yaml.safe_load((ROOT / "roles/haproxy/defaults/main.yml").read_text())
    value = str(defaults["haproxy_rtmp_handshake_timeout"])
    number, unit = re.fullmatch(r"(\d+)(ms|s)?", value).groups()
    return int(number) / (1000 if unit == "ms" else 1)


@pytest.mark.parametrize("encoder", GSTREAMER)
def test_gstreamer_publishes_through_both_balancers_on_every_listener(docker_client, encoder):
    client_ip = address(docker_client, lab.CLIENT, lab.PUBLIC)
    targets = {
        f"{encoder}-{lb.removeprefix('rtmpedge-')}-{port}": (lb, port)
        for lb in lab.BALANCERS
        for port in LISTENERS[encoder]
    }
    wanted = {key: lab.publish_url(docker_client, lb, port, key) for key, (lb, port) in targets.items()}
    urls = [f"{key}={url}" for key, url in wanted.items()]
    lab.install_publisher(docker_client)
    code, _out, err = lab.publisher(docker_client, "start", "--client", encoder, *urls)
    assert code == 0, f"the {encoder} publishers did not start: {err}"
    try:
        wait_for(
            lambda: all(live_streams(docker_client).get(k, ("", ""))[1] == client_ip for k in wanted),
            90,
            f"every {encoder} stream on a media server with the client's own address",
        )
    finally:
        ended = stop_publishers(docker_client, *wanted)
    assert {k: v["state"] for k, v in ended.items()} == dict.fromkeys(wanted, "stopped"), ended


def test_every_clients_handshake_is_far_inside_the_default_timeout(docker_client, figures):
    lab.install_publisher(docker_client)
    measured = {}
    for encoder in ["ffmpeg", *GSTREAMER]:
        code, out, err = lab.publisher(docker_client, "handshake", "--runs", "5", encoder)
        assert code == 0, f"{encoder}'s handshake could not be timed: {err}"
        measured[encoder] = max(json.loads(out)["connect_to_c0c1_s"])
    figures["connect_to_c0c1_max_s"] = measured
    timeout = _default_handshake_timeout_s()
    slow = {encoder: s for encoder, s in measured.items() if s > timeout / 10}
    assert not slow, f"C0+C1 took more than a tenth of haproxy_rtmp_handshake_timeout ({timeout:g} s): {slow}"


def test_ffmpeg_and_rtmp2sink_refuse_an_rtmps_certificate_no_trusted_ca_signed(docker_client, figures):
    lab.install_publisher(docker_client)
    published = {}
    for encoder in ["ffmpeg", *GSTREAMER]:
        code, out, err = lab.publisher(docker_client, "untrusted-tls", encoder)
        assert code == 0, f"{encoder} could not be tried against an untrusted certificate: {err}"
        published[encoder] = json.loads(out)["published"]
    # librtmp checks no certificate (docs/encoders.md): measured, not required.
    figures["published_to_an_untrusted_rtmps_certificate"] = published
    assert not published["ffmpeg"] and not published["gst-rtmp2"], published

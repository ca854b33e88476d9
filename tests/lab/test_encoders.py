"""Encoders other than ffmpeg through the lab's balancers (docs/encoders.md).

GStreamer from Debian publishes with its native rtmp2sink and with rtmpsink, built on librtmp
(the stack OBS's RTMP output descends from), through both balancers on 1935, 80 and RTMPS on
443; each stream reaches a media server with the client's own address and ends when the test
stops it. How long each client takes from its connect to a complete C0+C1 is measured and
must stay far inside the protocol check's default handshake timeout. An HEVC publish in
enhanced RTMP (ffmpeg 9) reaches the media server byte for byte: passive captures on both
sides of each balancer hash the same bytes.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from conftest import ROOT, address, lab, live_streams, stop_publishers, wait_for

GSTREAMER = ["gst-rtmp2", "gst-librtmp"]
# librtmp's RTMPS fails over TLS 1.3: it publishes to the lab's RTMPS listener capped at TLS 1.2.
# Enhanced RTMP's video tags name their codec by FourCC: HEVC is "hvc1".
ENHANCED_FOURCC = "hvc1"
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


def _captured(client, container: str, *markers: str) -> dict[str, list[dict]]:
    code, out, err = lab.capture(client, container, "stop", "--wait", "30", *markers)
    assert code == 0, f"the capture in {container} failed: {err}"
    return json.loads(out)


def test_an_hevc_publish_in_enhanced_rtmp_passes_each_balancer_byte_for_byte(docker_client, figures):
    """What ffmpeg 9 sent (HEVC, FLV's enhanced header) is what the media server received, hash for hash."""
    client_ip = address(docker_client, lab.CLIENT, lab.PUBLIC)
    media = [c.name for c in lab.media_containers(docker_client) if c.status == "running"]
    lab.install_publisher(docker_client)
    lab.install_enhanced_ffmpeg(docker_client)
    # Passive captures: in the client, what it sent to 1935; on every media server, what came from the client.
    for name, source in [(lab.CLIENT, []), *((m, ["--src", client_ip]) for m in media)]:
        lab.install_capture(docker_client, name)
        code, _out, err = lab.capture(docker_client, name, "start", "--port", "1935", *source)
        assert code == 0, f"no capture in {name}: {err}"
    wanted = {f"hevc-{lb.removeprefix('rtmpedge-')}": lb for lb in lab.BALANCERS}
    urls = [f"{key}={lab.publish_url(docker_client, lb, 1935, key)}" for key, lb in wanted.items()]
    try:
        code, _out, err = lab.publisher(docker_client, "start", "--client", "ffmpeg-hevc", *urls)
        assert code == 0, f"the HEVC publishers did not start: {err}"
        try:
            wait_for(
                lambda: all(live_streams(docker_client).get(k, ("", ""))[1] == client_ip for k in wanted),
                120,
                "every HEVC stream on a media server with the client's own address",
            )
            # More than one loop of the clip: keyframes, coded frames, and the loop's jump in time.
            clip = lab.publisher_clip_size(docker_client, "clip-hevc.flv")
            wait_for(
                lambda: min(json.loads(lab.capture(docker_client, lab.CLIENT, "peek", *wanted)[1]).values()) > clip,
                120,
                f"every HEVC stream past a whole loop of its clip ({clip} bytes)",
            )
        finally:
            ended = stop_publishers(docker_client, *wanted)
    finally:
        sent = _captured(docker_client, lab.CLIENT, *wanted, ENHANCED_FOURCC)
        received = {m: _captured(docker_client, m, *wanted, ENHANCED_FOURCC) for m in media}
    assert {k: v["state"] for k, v in ended.items()} == dict.fromkeys(wanted, "stopped"), ended
    proof = {}
    for key in wanted:
        out = sent[key]
        arrived = [c for by_marker in received.values() for c in by_marker[key]]
        assert len(out) == 1 and len(arrived) == 1, f"{key}: one connection each way expected: {out} / {arrived}"
        assert out[0]["complete"] and arrived[0]["complete"], f"{key}: a capture missed bytes: {out} / {arrived}"
        assert ENHANCED_FOURCC in out[0]["markers"], f"{key}: the client sent no enhanced-RTMP HEVC: {out}"
        proof[key] = {"bytes": out[0]["bytes"], "sent": out[0]["sha256"], "received": arrived[0]["sha256"]}
    figures["hevc_byte_for_byte"] = proof
    differ = {k: v for k, v in proof.items() if v["sent"] != v["received"]}
    assert not differ, f"the media server received other bytes than the client sent: {differ}"

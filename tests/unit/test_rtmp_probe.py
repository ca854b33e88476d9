"""rtmp_probe's handshake against servers on loopback that answer as a media server would, or do not."""

from __future__ import annotations

import socket
import threading

import pytest
from ansible_collections.rtmpedge.balancer.plugins.modules.rtmp_probe import HANDSHAKE_BYTES, handshake


def _server(answer: bytes) -> int:
    """A one-connection server: reads C0+C1, sends `answer`, closes. Returns its port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        peer, _address = listener.accept()
        with peer:
            received = b""
            while len(received) < 1 + HANDSHAKE_BYTES:
                chunk = peer.recv(65536)
                if not chunk:
                    break
                received += chunk
            if received[:1] == b"\x03":
                peer.sendall(answer)
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def test_a_media_server_s_s0_and_s1_complete_the_probe():
    port = _server(b"\x03" + bytes(HANDSHAKE_BYTES) + bytes(HANDSHAKE_BYTES))
    assert 0 < handshake("127.0.0.1", port, timeout=5) < 5


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "closed before any answer"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "not RTMP: first byte 0x48"),
        (b"\x03" + bytes(100), "S1 ended after 100 of 1536 bytes"),
    ],
)
def test_a_refusal_or_a_wrong_answer_says_what_went_wrong(answer, message):
    with pytest.raises(ValueError, match=message):
        handshake("127.0.0.1", _server(answer), timeout=5)


def test_nothing_listening_is_an_os_error():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        handshake("127.0.0.1", port, timeout=5)

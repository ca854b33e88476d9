"""The lab's byte-for-byte proof rests on tests/harness/tcp_capture.py: what it hashes must be
exactly what a connection carried, and a capture that missed bytes must say so."""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket

import pytest
from harness import loopback, tcp_capture
from harness.tcp_capture import FIN, SYN, Flow
from harness.wait import wait_until

ISN = 2**32 - 5  # the sequence numbers wrap inside the first segment


def test_segments_out_of_order_and_retransmitted_are_put_back_in_order_once():
    flow = Flow()
    flow.add(ISN, SYN, b"")
    flow.add((ISN + 1 + 4) % 2**32, 0, b"efgh")
    flow.add(ISN + 1, 0, b"abcd")
    flow.add((ISN + 1 + 2) % 2**32, 0, b"cdef")  # a retransmission across both segments
    flow.add((ISN + 1 + 4) % 2**32, 0, b"ef")  # a shorter copy of one already seen
    flow.add((ISN + 1 + 8) % 2**32, FIN, b"ij")
    assert flow.data() == (b"abcdefghij", True)


def test_a_missing_segment_makes_the_capture_incomplete():
    flow = Flow()
    flow.add(100, SYN, b"")
    flow.add(101, 0, b"abcd")
    flow.add(109, FIN, b"ij")
    assert flow.data() == (b"abcd", False)


def test_a_connection_whose_syn_was_not_seen_is_incomplete():
    flow = Flow()
    flow.add(101, FIN, b"abcd")
    assert flow.data() == (b"", False)


class Sink(loopback.LoopbackServer):
    """Keeps everything each connection sends until it closes."""

    def __init__(self):
        self.received: list[bytes] = []
        super().__init__()

    def serve(self, peer: socket.socket) -> None:
        chunks = []
        with peer:
            while chunk := peer.recv(65536):
                chunks.append(chunk)
        self.received.append(b"".join(chunks))


@pytest.mark.skipif(os.geteuid() != 0, reason="AF_PACKET capture needs root")
def test_a_captured_connection_hashes_to_what_the_client_sent(tmp_path, capsys):
    sink = Sink()
    directory = str(tmp_path / "capture")
    assert tcp_capture.main(["--dir", directory, "start", "--port", str(sink.port), "--src", "127.0.0.1"]) == 0
    payload = b"MARKER" + random.randbytes(3 << 20)  # noqa: S311 - test data
    with socket.create_connection(("127.0.0.1", sink.port)) as conn:
        view = memoryview(payload)
        while view:
            size = random.randint(1, 70000)  # noqa: S311 - chunk sizes
            conn.sendall(view[:size])
            view = view[size:]
    capsys.readouterr()
    assert tcp_capture.main(["--dir", directory, "stop", "--wait", "60", "MARKER", "absent"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["absent"] == []
    [connection] = found["MARKER"]
    assert connection["complete"], connection
    assert connection["bytes"] == len(payload)
    assert connection["sha256"] == hashlib.sha256(payload).hexdigest()
    wait_until(lambda: sink.received, 30, "the sink to see the connection close")
    assert sink.received == [payload]

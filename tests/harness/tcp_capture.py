"""The bytes a TCP connection carried in one direction, taken off the wire and hashed.

A proxy that passes a stream "byte for byte" is proved by capturing what the client
sent (in the client's network namespace) and what the media server received (in
the server's), and comparing the two digests. The capture is passive: neither end
runs anything in the stream's path.

Runs where the packets are (a lab container), as root, with the standard library only:

  tcp_capture.py [--dir D] start --port P [--src IP]   capture TCP segments to port P (from IP) in the background
  tcp_capture.py [--dir D] peek MARKER ...             JSON: {MARKER: bytes so far of the connection carrying it}
  tcp_capture.py [--dir D] stop [--wait S] MARKER ...  stop once every connection carrying a MARKER was closed
                                                       (or S seconds passed); JSON: {MARKER: [connection, ...]}

A connection is {"from": "ip:port", "to": "ip:port", "bytes": N, "sha256": hex,
"complete": whether every byte from the SYN to the FIN was seen, "markers": the
MARKERs found in the bytes}.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DIR = "/tmp/rtmpedge-capture"
ETH_P_ALL, ETH_P_IP, ETH_P_IPV6 = 0x0003, 0x0800, 0x86DD
SYN, FIN = 0x02, 0x01
SEQ_SPACE = 1 << 32


def tcp_segment(packet: bytes, protocol: int):
    """(src, dst, TCP header and payload) of an IPv4 or IPv6 TCP packet, or None."""
    if protocol == ETH_P_IP and len(packet) >= 20 and packet[9] == 6:
        header, total = (packet[0] & 0x0F) * 4, struct.unpack("!H", packet[2:4])[0]
        return ipaddress.ip_address(packet[12:16]), ipaddress.ip_address(packet[16:20]), packet[header:total]
    if protocol == ETH_P_IPV6 and len(packet) >= 40 and packet[6] == 6:  # no extension headers in the lab
        total = 40 + struct.unpack("!H", packet[4:6])[0]
        return ipaddress.ip_address(packet[8:24]), ipaddress.ip_address(packet[24:40]), packet[40:total]
    return None


class Flow:
    """One direction of one connection: its first sequence number, its segments, whether it ended."""

    def __init__(self):
        self.isn: int | None = None
        self.segments: dict[int, bytes] = {}  # sequence number -> payload (the longest seen there)
        self.fin = False

    def add(self, seq: int, flags: int, payload: bytes) -> None:
        if flags & SYN:
            self.isn = seq
        if payload and len(payload) > len(self.segments.get(seq, b"")):
            self.segments[seq] = payload
        self.fin |= bool(flags & FIN)

    def data(self) -> tuple[bytes, bool]:
        """The bytes after the SYN in order (retransmissions counted once), and whether none is missing."""
        if self.isn is None:
            return b"", False
        cursor, out = 0, bytearray()
        for offset, payload in sorted(((seq - self.isn - 1) % SEQ_SPACE, p) for seq, p in self.segments.items()):
            if offset > cursor:
                return bytes(out), False  # a gap: the capture missed a segment
            out += payload[cursor - offset :]
            cursor = max(cursor, offset + len(payload))
        return bytes(out), self.fin


def write_connections(flows: dict, path: Path) -> None:
    """Every connection captured so far, with its bytes (hex), written atomically to `path`."""
    connections = []
    for (source, sport, destination, dport), flow in flows.items():
        data, complete = flow.data()
        connections.append(
            {
                "from": f"{source}:{sport}",
                "to": f"{destination}:{dport}",
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "complete": complete,
                "data": data.hex(),
            }
        )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(connections))
    tmp.replace(path)


def capture(directory: Path, port: int, src: str | None) -> None:
    """Record segments to `port` until SIGTERM, then write them to capture.json (SIGUSR1: a snapshot)."""
    flows: dict[tuple, Flow] = {}
    asked: dict[str, bool] = {}
    signal.signal(signal.SIGTERM, lambda *_: asked.update(stop=True))
    signal.signal(signal.SIGUSR1, lambda *_: asked.update(snapshot=True))
    with socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        sock.settimeout(0.2)
        (directory / "capture.ready").touch()
        while not asked.get("stop"):
            if asked.pop("snapshot", False):
                write_connections(flows, directory / "capture.snapshot.json")
            try:
                packet, (_ifname, protocol, *_rest) = sock.recvfrom(262144)
            except (TimeoutError, InterruptedError):
                continue
            found = tcp_segment(packet, protocol)
            if not found or len(found[2]) < 20:
                continue
            source, destination, tcp = found
            sport, dport, seq = struct.unpack("!HHI", tcp[:8])
            if dport != port or (src and str(source) != src):
                continue
            key = (str(source), sport, str(destination), dport)
            flows.setdefault(key, Flow()).add(seq, tcp[13], tcp[(tcp[12] >> 4) * 4 :])
    write_connections(flows, directory / "capture.json")


def start(args) -> int:
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in ("capture.json", "capture.ready", "capture.pid"):
        (directory / stale).unlink(missing_ok=True)
    with open(directory / "capture.err", "wb") as err:
        process = subprocess.Popen(
            [sys.executable, __file__, "--dir", args.dir, "_capture", str(args.port), args.src or ""],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            start_new_session=True,  # outlives the docker exec that started it
        )  # fmt: skip
    (directory / "capture.pid").write_text(str(process.pid))
    deadline = time.monotonic() + 30
    while not (directory / "capture.ready").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            error = (directory / "capture.err").read_text(errors="replace").strip()
            raise SystemExit(f"tcp_capture: the capture did not start: {error or 'no socket within 30 s'}")
        time.sleep(0.05)
    print(json.dumps({"capturing": args.port, "src": args.src}))
    return 0


def stop(args) -> int:
    directory = Path(args.dir)
    pid = int((directory / "capture.pid").read_text())
    markers = [m.encode() for m in args.markers]
    deadline = time.monotonic() + args.wait
    # The FIN of a connection that just ended may still be on its way: give it until the deadline.
    while time.monotonic() < deadline and not _marked_flows_closed(directory, markers):
        time.sleep(0.2)
    os.kill(pid, signal.SIGTERM)
    while not (directory / "capture.json").exists():
        if time.monotonic() > deadline + 30:
            raise SystemExit("tcp_capture: the capture wrote no result within 30 s of its stop")
        time.sleep(0.05)
    connections = json.loads((directory / "capture.json").read_text())
    found = {m.decode(): [] for m in markers}
    for connection in connections:
        data = bytes.fromhex(connection.pop("data"))
        connection["markers"] = [m.decode() for m in markers if m in data]
        for marker in connection["markers"]:
            found[marker].append(connection)
    print(json.dumps(found, sort_keys=True))
    return 0


def snapshot(directory: Path) -> list[tuple[bytes, bool]]:
    """Each connection's bytes so far and whether it ended, from the running capture (SIGUSR1 asks)."""
    path = directory / "capture.snapshot.json"
    path.unlink(missing_ok=True)
    os.kill(int((directory / "capture.pid").read_text()), signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit("tcp_capture: the capture wrote no snapshot within 10 s")
        time.sleep(0.05)
    return [(bytes.fromhex(c["data"]), c["complete"]) for c in json.loads(path.read_text())]


def _marked_flows_closed(directory: Path, markers: list[bytes]) -> bool:
    return all(done for data, done in snapshot(directory) if any(m in data for m in markers))


def peek(args) -> int:
    connections = snapshot(Path(args.dir))
    carried = {m: max([len(d) for d, _done in connections if m.encode() in d], default=0) for m in args.markers}
    print(json.dumps(carried, sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=DEFAULT_DIR)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("start")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--src")
    p = commands.add_parser("stop")
    p.add_argument("--wait", type=float, default=30)
    p.add_argument("markers", nargs="+")
    p = commands.add_parser("peek")
    p.add_argument("markers", nargs="+")
    p = commands.add_parser("_capture")
    p.add_argument("port", type=int)
    p.add_argument("src")
    args = parser.parse_args(argv)
    if args.command == "_capture":
        capture(Path(args.dir), args.port, args.src or None)
        return 0
    return {"start": start, "peek": peek, "stop": stop}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

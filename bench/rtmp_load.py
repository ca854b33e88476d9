"""Synthetic RTMP-like traffic for `make bench`: a sink, long-lived publishers, probes, bulk.

Every connection starts with a real RTMP handshake (C0 = 0x03 + C1, S0+S1+S2, C2), so
HAProxy's rtmp health check and any protocol check see what a publisher sends; after
it, bytes stand in for the media. The sink also reads a PROXY protocol v1/v2 header.

  rtmp_load.py sink --port 1935 --stats FILE        count bytes per connection (several may share the port)
  rtmp_load.py streams --target H:P --count N --bitrate BPS --seconds S --stats FILE
  rtmp_load.py bulk --target H:P --seconds S         one connection, as fast as it goes
  rtmp_load.py probe --target H:P --count N          handshake round trips (latency)
  rtmp_load.py storm --target H:P --seconds S --concurrency C   new sessions per second
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import struct
import sys
import time

C0 = b"\x03"
HANDSHAKE_SIZE = 1536
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
NO_LINGER = struct.pack("ii", 1, 0)


def c1() -> bytes:
    return int(time.time()).to_bytes(4, "big") + bytes(4) + os.urandom(HANDSHAKE_SIZE - 8)


def split(target: str) -> tuple[str, int]:
    host, _sep, port = target.rpartition(":")
    return host, int(port)


# --- client side (blocking: probes and bulk) ------------------------------------------


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} handshake bytes")
        data += chunk
    return bytes(data)


def handshake(sock: socket.socket) -> None:
    """Client side of the RTMP handshake; raises if the peer is not an RTMP server."""
    sock.sendall(C0 + c1())
    answer = recv_exactly(sock, 1 + 2 * HANDSHAKE_SIZE)
    if answer[:1] != C0:
        raise ConnectionError(f"S0 is {answer[:1]!r}, not 0x03")
    sock.sendall(answer[1 : 1 + HANDSHAKE_SIZE])  # C2 echoes S1


def probe_once(target: tuple[str, int], timeout: float = 2.0) -> float:
    """Seconds from connect() to a completed handshake; raises OSError/ConnectionError."""
    started = time.perf_counter()
    with socket.create_connection(target, timeout=timeout) as sock:
        # Close with a reset: hundreds of probes a second would otherwise fill the
        # client's ports with TIME_WAIT sockets within a minute.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, NO_LINGER)
        sock.settimeout(timeout)
        handshake(sock)
    return time.perf_counter() - started


def probe(args) -> dict:
    target = split(args.target)
    samples, failures = [], 0
    for _n in range(args.count):
        try:
            samples.append(probe_once(target))
        except OSError:
            failures += 1
    samples.sort()
    return {
        "samples": len(samples),
        "failures": failures,
        "median_ms": 1000 * statistics.median(samples) if samples else None,
        "p99_ms": 1000 * samples[int(0.99 * (len(samples) - 1))] if samples else None,
    }


def bulk(args) -> dict:
    """One stream after a handshake, sending as fast as the path takes it."""
    block = memoryview(os.urandom(1 << 20))
    sent = 0
    with socket.create_connection(split(args.target), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        handshake(sock)
        started = time.perf_counter()
        deadline = started + args.seconds
        while time.perf_counter() < deadline:
            sock.sendall(block)
            sent += len(block)
        elapsed = time.perf_counter() - started
    return {"bytes": sent, "seconds": elapsed, "gbit_s": sent * 8 / elapsed / 1e9}


# --- long-lived streams (asyncio) -------------------------------------------------------


async def one_stream(target, bitrate: int, until: float, ready: asyncio.Event, record: dict) -> None:
    tick = 0.1
    chunk = os.urandom(max(1, int(bitrate / 8 * tick)))
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*target), 10)
        writer.write(C0 + c1())
        answer = await asyncio.wait_for(reader.readexactly(1 + 2 * HANDSHAKE_SIZE), 10)
        if answer[:1] != C0:
            raise ConnectionError("not an RTMP server")
        writer.write(answer[1 : 1 + HANDSHAKE_SIZE])
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ConnectionError) as e:
        record["failed"] = f"{type(e).__name__}: {e}"
        return
    record["connected"] = True
    await ready.wait()
    try:
        next_at = time.monotonic()
        while next_at < until:
            writer.write(chunk)
            record["queued"] = writer.transport.get_write_buffer_size()
            next_at += tick
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        writer.close()
    except OSError as e:
        record["failed"] = f"{type(e).__name__}: {e}"


async def streams_main(args) -> dict:
    target = split(args.target)
    ready = asyncio.Event()
    records = [{"connected": False, "queued": 0} for _n in range(args.count)]
    until = time.monotonic() + args.ramp + args.seconds
    tasks = []
    for record in records:
        tasks.append(asyncio.create_task(one_stream(target, args.bitrate, until, ready, record)))
        await asyncio.sleep(args.ramp / max(1, args.count) / 2)  # spread the connects over the ramp
    await asyncio.sleep(max(0.0, until - args.seconds - time.monotonic()))
    ready.set()
    await asyncio.gather(*tasks)
    failures = [r["failed"] for r in records if "failed" in r]
    return {
        "count": args.count,
        "connected": sum(r["connected"] for r in records),
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "backlogged": sum(r["queued"] > args.bitrate / 8 for r in records),  # > 1 s of media queued
    }


# --- reconnect storm (asyncio) ----------------------------------------------------------


async def storm_loop(target, until: float, c1_bytes: bytes, counts: dict) -> None:
    """New sessions back to back: connect, C0+C1, S0+S1+S2 back, C2, reset."""
    while time.monotonic() < until:
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*target), 5)
            # A reset, not a FIN: thousands of sessions a second would fill the ports with TIME_WAIT.
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, NO_LINGER)
            writer.write(C0 + c1_bytes)
            answer = await asyncio.wait_for(reader.readexactly(1 + 2 * HANDSHAKE_SIZE), 5)
            if answer[:1] != C0:
                raise ConnectionError(f"S0 is {answer[:1]!r}")
            writer.write(answer[1 : 1 + HANDSHAKE_SIZE])
            if time.monotonic() < until:
                counts["sessions"] += 1
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ConnectionError) as e:
            counts["errors"][type(e).__name__] = counts["errors"].get(type(e).__name__, 0) + 1
        finally:
            if writer is not None:
                writer.transport.abort()


async def storm_main(args) -> dict:
    target = split(args.target)
    counts: dict = {"sessions": 0, "errors": {}}
    started = time.monotonic()
    until = started + args.seconds
    c1_bytes = c1()  # the same C1 each time: the generator's CPU goes to connections, not randomness
    await asyncio.gather(*(storm_loop(target, until, c1_bytes, counts) for _n in range(args.concurrency)))
    return {
        "sessions": counts["sessions"],
        "failures": sum(counts["errors"].values()),
        "errors": counts["errors"],
        "seconds": args.seconds,
        "per_second": counts["sessions"] / args.seconds,
    }


# --- the sink ---------------------------------------------------------------------------


class Sink:
    """Accepts RTMP handshakes (and a PROXY header first), then counts bytes per connection."""

    def __init__(self, stats_path: str):
        self.stats_path = stats_path
        self.received: dict[int, int] = {}
        self.handshakes = 0
        self.next_id = 0

    async def read_proxy_header(self, reader: asyncio.StreamReader) -> None:
        head = await reader.readexactly(1)
        if head == b"P":  # v1: "PROXY TCP4 ...\r\n"
            await reader.readuntil(b"\r\n")
        elif head == b"\r":  # v2: 12-byte signature, version/command, family, length
            rest = await reader.readexactly(15)
            if (head + rest)[:12] != PROXY_V2_SIGNATURE:
                raise ConnectionError("bad PROXY v2 signature")
            await reader.readexactly(int.from_bytes(rest[13:15], "big"))
        elif head != C0:
            raise ConnectionError(f"first byte {head!r} is neither C0 nor a PROXY header")
        else:
            return
        if await reader.readexactly(1) != C0:
            raise ConnectionError("no C0 after the PROXY header")

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ident = self.next_id
        self.next_id += 1
        try:
            await self.read_proxy_header(reader)
            c1_bytes = await reader.readexactly(HANDSHAKE_SIZE)
            writer.write(C0 + c1() + c1_bytes)  # S0, S1, S2 (echo of C1)
            await reader.readexactly(HANDSHAKE_SIZE)  # C2
            self.handshakes += 1
            self.received[ident] = 0
            while chunk := await reader.read(1 << 16):
                self.received[ident] += len(chunk)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # health checks and probes leave after S0
        finally:
            writer.close()

    async def report(self) -> None:
        while True:
            # On the half second of the clock, so the snapshots of several sink processes line up.
            await asyncio.sleep(0.5 - time.time() % 0.5)
            snapshot = {"time": time.time(), "handshakes": self.handshakes}
            snapshot["received"] = {str(k): v for k, v in self.received.items()}
            with open(self.stats_path + ".tmp", "w") as handle:
                json.dump(snapshot, handle)
            os.replace(self.stats_path + ".tmp", self.stats_path)


async def sink_main(args) -> None:
    sink = Sink(args.stats)
    # reuse_port: several sink processes share the port, the kernel spreads the connections.
    server = await asyncio.start_server(
        sink.serve, args.address, args.port, backlog=4096, reuse_address=True, reuse_port=True
    )
    reporter = asyncio.create_task(sink.report())
    async with server:
        await server.serve_forever()
    reporter.cancel()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    sink = commands.add_parser("sink")
    sink.add_argument("--address", default="0.0.0.0")  # noqa: S104 - inside a bench network namespace
    sink.add_argument("--port", type=int, default=1935)
    sink.add_argument("--stats", required=True)
    streams = commands.add_parser("streams")
    streams.add_argument("--target", required=True)
    streams.add_argument("--count", type=int, required=True)
    streams.add_argument("--bitrate", type=int, default=1_000_000, help="bits per second per stream")
    streams.add_argument("--ramp", type=float, default=3.0)
    streams.add_argument("--seconds", type=float, default=8.0)
    bulk_parser = commands.add_parser("bulk")
    bulk_parser.add_argument("--target", required=True)
    bulk_parser.add_argument("--seconds", type=float, default=5.0)
    probe_parser = commands.add_parser("probe")
    probe_parser.add_argument("--target", required=True)
    probe_parser.add_argument("--count", type=int, default=200)
    storm = commands.add_parser("storm")
    storm.add_argument("--target", required=True)
    storm.add_argument("--seconds", type=float, default=5.0)
    storm.add_argument("--concurrency", type=int, default=32, help="sessions in flight at once")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # thousands of streams
    if args.command == "sink":
        asyncio.run(sink_main(args))
        return 0
    if args.command == "streams":
        result = asyncio.run(streams_main(args))
    elif args.command == "storm":
        result = asyncio.run(storm_main(args))
    else:
        result = bulk(args) if args.command == "bulk" else probe(args)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Test publishers that stream until the test stops them, and say how each one ended.

A stream that must outlive a step (a reload, a drain, a failed converge) cannot be
given a fixed length: on a slow machine the step outlasts it and the stream ends
before the step it was meant to cross. So each publisher here streams until the
test asks it to stop, and then reports whether it was stopped by the test
("stopped") or had ended before that ("cut").

Runs where the publisher runs (a test container or the lab's client), with the
standard library only:

  publisher.py [--dir D] start [--max-seconds S] [--client C] NAME=URL [NAME=URL ...]
  publisher.py [--dir D] status NAME ...          JSON: NAME -> {state, rc, ran_s, error}
  publisher.py [--dir D] alive NAME ...           exit 1 naming those no longer streaming
  publisher.py [--dir D] stop [--wait S] NAME ... stop them; exit 1 naming those cut or failing
  publisher.py [--dir D] handshake [--runs N] C   JSON: how long client C takes from connect to C0+C1
  publisher.py [--dir D] untrusted-tls C          JSON: whether client C publishes over RTMPS to a
                                                  certificate no trusted CA signed, for another name

Clients (--client): "ffmpeg" (the default: a clip looped with stream copy), "ffmpeg-hevc"
(the same with an HEVC clip, from an ffmpeg that sends enhanced RTMP), "gst-rtmp2"
(GStreamer's native rtmp2sink) and "gst-librtmp" (GStreamer's rtmpsink, on librtmp, the
stack OBS's RTMP output descends from); both GStreamer ones encode a test picture and tone.

States: "running"; "stopped" (asked to stop and the client closed the stream cleanly);
"cut" (the client ended before the test asked it to); "failed" (asked to stop, but
the client could not close the stream cleanly: the connection had gone).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DIR = "/tmp/rtmpedge-publishers"
# Bounds every stream even when a test dies before stopping it.
DEFAULT_MAX_SECONDS = 1800
QUIT_GRACE = 15.0  # ffmpeg's own clean stop ('q': trailer written, connection closed)


CLIP_SECONDS = 10
# An ffmpeg new enough for enhanced RTMP (6.1+), put in the lab's client by tests/lab (docs/encoders.md).
ENHANCED_FFMPEG = "/usr/local/bin/ffmpeg-enhanced"
# clip name -> (ffmpeg, video encoder): H.264 for every client, HEVC for the enhanced-RTMP publisher.
CLIPS = {"clip.flv": ("ffmpeg", "libx264"), "clip-hevc.flv": (ENHANCED_FFMPEG, "libx265")}


def ensure_clip(directory: str, name: str = "clip.flv") -> Path:
    """A short clip encoded once per directory, that every publisher there loops.

    Encoding live costs each ffmpeg a share of a core; twenty publishers on a busy
    2-core machine then starve the system under test. Looping an encoded clip with
    stream copy sends the same kind of stream (H.264 or HEVC, and AAC, in FLV, at its own rate).
    """
    binary, video = CLIPS[name]
    clip = Path(directory) / name
    with open(clip.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # publishers started together encode it once
        if not clip.exists():
            tmp = clip.with_suffix(".tmp.flv")
            subprocess.run(
                [
                    binary, "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc=size=320x240:rate=25:duration={CLIP_SECONDS}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={CLIP_SECONDS}",
                    # 4:2:0 as encoders send it (the test picture is RGB: 4:4:4 otherwise).
                    "-c:v", video, "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-threads", "1", "-g", "50",
                    *(["-x265-params", "log-level=error:pools=1"] if video == "libx265" else []),
                    "-c:a", "aac", "-shortest", "-f", "flv", str(tmp),
                ],
                check=True, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            tmp.replace(clip)
    return clip


def ffmpeg_argv(url: str, max_seconds: int, clip: Path, binary: str = "ffmpeg") -> list[str]:
    """The clip in a loop at its own rate (picture and tone), as an encoder sends it."""
    return [
        binary, "-hide_banner", "-loglevel", "error",
        "-re", "-stream_loop", "-1", "-i", str(clip),
        "-t", str(max_seconds), "-c", "copy", "-f", "flv",
        # RTMPS: the balancer's certificate is checked against the system's CAs and the URL's host.
        *(["-tls_verify", "1"] if url.startswith("rtmps://") else []),
        url,
    ]  # fmt: skip


def gstreamer_argv(element: str, url: str) -> list[str]:
    """A live test picture (H.264, openh264) and tone (AAC) in FLV, to GStreamer's RTMP sink `element`."""
    location = f"{url} live=1" if element == "rtmpsink" else url  # librtmp's option syntax
    return [
        "gst-launch-1.0", "-q", "-e",
        "videotestsrc", "is-live=true", "!", "video/x-raw,width=320,height=240,framerate=25/1", "!",
        "openh264enc", "!", "h264parse", "!", "flvmux", "name=mux", "streamable=true", "!",
        element, f"location={location}",
        "audiotestsrc", "is-live=true", "!", "voaacenc", "!", "aacparse", "!", "mux.",
    ]  # fmt: skip


CLIENTS = ("ffmpeg", "ffmpeg-hevc", "gst-rtmp2", "gst-librtmp")


def client_argv(client: str, url: str, max_seconds: int, directory: str) -> list[str]:
    if client == "ffmpeg":
        return ffmpeg_argv(url, max_seconds, ensure_clip(directory))
    if client == "ffmpeg-hevc":  # FLV's enhanced header: the video tags carry the FourCC hvc1
        return ffmpeg_argv(url, max_seconds, ensure_clip(directory, "clip-hevc.flv"), ENHANCED_FFMPEG)
    return gstreamer_argv({"gst-rtmp2": "rtmp2sink", "gst-librtmp": "rtmpsink"}[client], url)


def ask_to_stop(client: str, proc: subprocess.Popen) -> None:
    """The client's own clean stop: ffmpeg's interactive 'q', gst-launch's -e (end of stream on SIGINT)."""
    try:
        if client.startswith("ffmpeg"):
            proc.stdin.write(b"q")
            proc.stdin.flush()
        else:
            proc.send_signal(signal.SIGINT)
    except OSError:
        pass


@contextlib.contextmanager
def connected_client(client: str, scheme: str, directory: str, timeout: float):
    """The client publishing to a loopback listener: yields its accepted connection, then kills it."""
    import socket  # noqa: PLC0415

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(timeout)
        url = f"{scheme}://127.0.0.1:{listener.getsockname()[1]}/live/probe"
        proc = subprocess.Popen(
            client_argv(client, url, 60, directory), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            conn, _peer = listener.accept()
            with conn:
                conn.settimeout(timeout)
                yield conn
        finally:
            proc.kill()
            proc.wait()


def handshake_seconds(client: str, directory: str, timeout: float = 30) -> float:
    """Seconds from the client's TCP connect to its complete C0+C1 (1537 bytes)."""
    with connected_client(client, "rtmp", directory, timeout) as conn:
        connected, received = time.monotonic(), b""
        while len(received) < 1537:
            chunk = conn.recv(1537 - len(received))
            if not chunk:
                raise SystemExit(f"publisher: {client} closed after {len(received)} bytes of C0+C1")
            received += chunk
        seconds = time.monotonic() - connected
    if received[:1] != b"\x03":
        raise SystemExit(f"publisher: {client} sent C0 {received[:1]!r}, not 0x03")
    return seconds


def untrusted_tls_accepted(client: str, directory: str, timeout: float = 30) -> bool:
    """Whether the client sends its C0 over RTMPS to a self-signed certificate for another name."""
    import ssl  # noqa: PLC0415

    key, cert = Path(directory) / "untrusted.key", Path(directory) / "untrusted.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=untrusted.invalid",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with connected_client(client, "rtmps", directory, timeout) as conn:
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                return tls.recv(1) == b"\x03"
        except (ssl.SSLError, OSError):
            return False  # the client ended the handshake: it refused the certificate


class Files:
    """Where one publisher keeps its state: NAME.pid, NAME.err, NAME.result."""

    def __init__(self, directory: str, name: str):
        if not name or "/" in name or name.startswith("."):
            raise SystemExit(f"publisher: bad name {name!r}")
        base = Path(directory) / name
        self.pid, self.err, self.result = (base.with_suffix(s) for s in (".pid", ".err", ".result"))

    def write_result(self, data: dict) -> None:
        tmp = self.result.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.result)


def supervise(directory: str, name: str, url: str, max_seconds: int, client: str = "ffmpeg") -> int:
    """Run one client; on SIGTERM ask it to stop cleanly; record how it ended."""
    files = Files(directory, name)
    started = time.monotonic()
    with open(files.err, "wb") as err:
        try:
            argv = client_argv(client, url, max_seconds, directory)
        except (OSError, subprocess.CalledProcessError) as e:
            err.write(f"publisher: the clip could not be encoded: {e}\n".encode())
            files.write_result({"state": "cut", "rc": None, "ran_s": 0.0})
            files.pid.write_text(str(os.getpid()))  # start() waits for it
            return 1
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=err)
    asked: list[float] = []

    def on_stop(_signum, _frame):
        if not asked:
            asked.append(time.monotonic())
            ask_to_stop(client, proc)

    signal.signal(signal.SIGTERM, on_stop)
    files.pid.write_text(str(os.getpid()))
    over = False
    while True:
        try:
            rc = proc.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if asked and time.monotonic() - asked[0] > QUIT_GRACE:
                proc.kill()
            if not over and time.monotonic() - started > max_seconds:  # ffmpeg has its own -t
                over = True
                ask_to_stop(client, proc)
    state = ("stopped" if rc == 0 else "failed") if asked else "cut"
    files.write_result({"state": state, "rc": rc, "ran_s": round(time.monotonic() - started, 1)})
    return 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def status_of(directory: str, name: str) -> dict:
    files = Files(directory, name)
    if files.result.exists():
        data = json.loads(files.result.read_text())
    elif files.pid.exists() and pid_alive(int(files.pid.read_text())):
        return {"state": "running"}
    elif files.pid.exists():
        data = {"state": "cut", "rc": None, "note": "its supervisor died"}
    else:
        return {"state": "unknown", "note": "never started here"}
    if data["state"] != "stopped" and files.err.exists():
        data["error"] = " | ".join(files.err.read_text(errors="replace").strip().splitlines()[-3:])
    return data


def start(args) -> int:
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    for spec in args.streams:
        name, sep, url = spec.partition("=")
        if not sep or not url.startswith(("rtmp://", "rtmps://")):
            raise SystemExit(f"publisher: expected NAME=rtmp://..., got {spec!r}")
        files = Files(args.dir, name)
        for stale in (files.pid, files.err, files.result):
            stale.unlink(missing_ok=True)  # an earlier run's verdict must not count
        subprocess.Popen(
            [sys.executable, __file__, "_supervise", args.dir, name, url, str(args.max_seconds), args.client],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives the command (ansible, docker exec) that started it
        )  # fmt: skip
    # Started means supervised: wait (bounded) for every supervisor's pid file.
    deadline = time.monotonic() + 30
    names = [s.partition("=")[0] for s in args.streams]
    while not all(Files(args.dir, n).pid.exists() or Files(args.dir, n).result.exists() for n in names):
        if time.monotonic() > deadline:
            raise SystemExit(f"publisher: supervisors did not start within 30 s: {names}")
        time.sleep(0.05)
    print(json.dumps({"started": names}))
    return 0


def status(args) -> int:
    print(json.dumps({n: status_of(args.dir, n) for n in args.names}, sort_keys=True))
    return 0


def alive(args) -> int:
    states = {n: status_of(args.dir, n) for n in args.names}
    print(json.dumps(states, sort_keys=True))
    gone = {n: s for n, s in states.items() if s["state"] != "running"}
    if gone:
        print(f"publisher: no longer streaming: {json.dumps(gone, sort_keys=True)}", file=sys.stderr)
        return 1
    return 0


def stop(args) -> int:
    before = {n: status_of(args.dir, n) for n in args.names}
    for name, state in before.items():
        if state["state"] == "running":
            with contextlib.suppress(ProcessLookupError):  # it ended just now; its result says how
                os.kill(int(Files(args.dir, name).pid.read_text()), signal.SIGTERM)
    deadline = time.monotonic() + args.wait
    while True:
        after = {n: status_of(args.dir, n) for n in args.names}
        if all(s["state"] != "running" for s in after.values()):
            break
        if time.monotonic() > deadline:
            print(f"publisher: still running {args.wait:.0f} s after the stop: {json.dumps(after)}", file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(json.dumps(after, sort_keys=True))
    bad = {n: s for n, s in after.items() if s["state"] != "stopped"}
    if bad:
        print(
            f"publisher: streams cut before the test stopped them: {json.dumps(bad, sort_keys=True)}", file=sys.stderr
        )
        return 1
    return 0


def handshake(args) -> int:
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    runs = [round(handshake_seconds(args.client, args.dir), 4) for _n in range(args.runs)]
    print(json.dumps({"client": args.client, "connect_to_c0c1_s": runs}))
    return 0


def untrusted_tls(args) -> int:
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    print(json.dumps({"client": args.client, "published": untrusted_tls_accepted(args.client, args.dir)}))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["_supervise"]:
        directory, name, url, max_seconds, client = argv[1:6]
        return supervise(directory, name, url, int(max_seconds), client)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=DEFAULT_DIR)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("start")
    p.add_argument("--max-seconds", type=int, default=DEFAULT_MAX_SECONDS)
    p.add_argument("--client", choices=CLIENTS, default="ffmpeg")
    p.add_argument("streams", nargs="+", metavar="NAME=URL")
    p.set_defaults(run=start)
    p = commands.add_parser("handshake")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("client", choices=CLIENTS)
    p.set_defaults(run=handshake)
    p = commands.add_parser("untrusted-tls")
    p.add_argument("client", choices=CLIENTS)
    p.set_defaults(run=untrusted_tls)
    for verb, run in (("status", status), ("alive", alive), ("stop", stop)):
        p = commands.add_parser(verb)
        p.add_argument("names", nargs="+", metavar="NAME")
        if verb == "stop":
            p.add_argument("--wait", type=float, default=60.0)
        p.set_defaults(run=run)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Test publishers that stream until the test stops them, and say how each one ended.

A stream that must outlive a step (a reload, a drain, a failed converge) cannot be
given a fixed length: on a slow machine the step outlasts it and the stream ends
before the step it was meant to cross. So each publisher here streams until the
test asks it to stop, and then reports whether it was stopped by the test
("stopped") or had ended before that ("cut").

Runs where the publisher runs (a test container or the lab's client), with the
standard library only:

  publisher.py [--dir D] start [--max-seconds S] NAME=URL [NAME=URL ...]
  publisher.py [--dir D] status NAME ...          JSON: NAME -> {state, rc, ran_s, error}
  publisher.py [--dir D] alive NAME ...           exit 1 naming those no longer streaming
  publisher.py [--dir D] stop [--wait S] NAME ... stop them; exit 1 naming those cut or failing

States: "running"; "stopped" (asked to stop and ffmpeg closed the stream cleanly);
"cut" (ffmpeg ended before the test asked it to); "failed" (asked to stop, but
ffmpeg could not close the stream cleanly: the connection had gone).
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


def ensure_clip(directory: str) -> Path:
    """A short clip encoded once per directory, that every publisher there loops.

    Encoding live costs each ffmpeg a share of a core; twenty publishers on a busy
    2-core machine then starve the system under test. Looping an encoded clip with
    stream copy sends the same kind of stream (H.264 and AAC in FLV, at its own rate).
    """
    clip = Path(directory) / "clip.flv"
    with open(Path(directory) / "clip.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # publishers started together encode it once
        if not clip.exists():
            tmp = clip.with_suffix(".tmp.flv")
            subprocess.run(
                [
                    "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc=size=320x240:rate=25:duration={CLIP_SECONDS}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={CLIP_SECONDS}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-threads", "1", "-g", "50",
                    "-c:a", "aac", "-shortest", "-f", "flv", str(tmp),
                ],
                check=True, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            tmp.replace(clip)
    return clip


def ffmpeg_argv(url: str, max_seconds: int, clip: Path) -> list[str]:
    """The clip in a loop at its own rate (picture and tone), as an encoder sends it."""
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error",
        "-re", "-stream_loop", "-1", "-i", str(clip),
        "-t", str(max_seconds), "-c", "copy", "-f", "flv",
        # RTMPS: the balancer's certificate is checked against the system's CAs and the URL's host.
        *(["-tls_verify", "1"] if url.startswith("rtmps://") else []),
        url,
    ]  # fmt: skip


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


def supervise(directory: str, name: str, url: str, max_seconds: int) -> int:
    """Run one ffmpeg; on SIGTERM ask it to stop cleanly; record how it ended."""
    files = Files(directory, name)
    started = time.monotonic()
    with open(files.err, "wb") as err:
        try:
            clip = ensure_clip(directory)
        except (OSError, subprocess.CalledProcessError) as e:
            err.write(f"publisher: the clip could not be encoded: {e}\n".encode())
            files.write_result({"state": "cut", "rc": None, "ran_s": 0.0})
            files.pid.write_text(str(os.getpid()))  # start() waits for it
            return 1
        proc = subprocess.Popen(ffmpeg_argv(url, max_seconds, clip), stdin=subprocess.PIPE, stderr=err)
    asked: list[float] = []

    def on_stop(_signum, _frame):
        if asked:
            return
        asked.append(time.monotonic())
        try:  # ffmpeg's interactive 'q': finish the stream and close it properly
            proc.stdin.write(b"q")
            proc.stdin.flush()
        except OSError:
            pass

    signal.signal(signal.SIGTERM, on_stop)
    files.pid.write_text(str(os.getpid()))
    while True:
        try:
            rc = proc.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if asked and time.monotonic() - asked[0] > QUIT_GRACE:
                proc.kill()
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
            [sys.executable, __file__, "_supervise", args.dir, name, url, str(args.max_seconds)],
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


def main(argv: list[str]) -> int:
    if argv[:1] == ["_supervise"]:
        directory, name, url, max_seconds = argv[1:5]
        return supervise(directory, name, url, int(max_seconds))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=DEFAULT_DIR)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("start")
    p.add_argument("--max-seconds", type=int, default=DEFAULT_MAX_SECONDS)
    p.add_argument("streams", nargs="+", metavar="NAME=URL")
    p.set_defaults(run=start)
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

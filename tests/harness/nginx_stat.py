"""Which nginx-rtmp media server carries which live stream, and from which client address.

As a module: publishers_in(xml) reads one stat page (rtmp_stat all). As a script, copied
into a test container (standard library only):

  nginx_stat.py [--expect KEY,KEY --wait SECONDS] NAME=STAT_URL [NAME=STAT_URL ...]

prints JSON {"STREAM": [{"server": NAME, "publisher": ADDRESS}, ...], ...}; with --expect
it polls until every expected stream is seen (exit 1 naming the missing ones after --wait).
A stream seen on two servers lists both: the tests assert there is exactly one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET


def publishers_in(page: bytes) -> dict[str, str | None]:
    """{stream name: the publishing client's address (None if none publishes)} of one stat page."""
    root = ET.fromstring(page)  # noqa: S314 - the test's own media servers
    found = {}
    for stream in root.iter("stream"):
        publishers = [c.findtext("address") for c in stream.iter("client") if c.find("publishing") is not None]
        found[stream.findtext("name")] = publishers[0] if publishers else None
    return found


def stat_page(url: str, timeout: float = 5) -> bytes:
    # Only the test's own media servers' stat pages (http URLs built by the test).
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def snapshot(pages: list[str]) -> dict:
    seen: dict = {}
    for arg in pages:
        name, _sep, url = arg.partition("=")
        for stream, publisher in publishers_in(stat_page(url)).items():
            seen.setdefault(stream, []).append({"server": name, "publisher": publisher})
    return seen


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--expect", default="")
    parser.add_argument("--wait", type=float, default=20.0)
    parser.add_argument("pages", nargs="+")
    args = parser.parse_args()
    expected = {key for key in args.expect.split(",") if key}
    deadline = time.monotonic() + args.wait
    while True:
        seen = snapshot(args.pages)
        if expected <= seen.keys() or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(json.dumps(seen, sort_keys=True))
    missing = sorted(expected - seen.keys())
    if missing:
        print(f"streams not seen within {args.wait:g}s: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

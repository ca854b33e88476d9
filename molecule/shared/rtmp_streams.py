"""Which media server carries which live stream, and from which client address.

Usage: rtmp_streams.py [--expect KEY,KEY --wait SECONDS] NAME=STAT_URL [NAME=STAT_URL ...]
Reads each nginx-rtmp stat page (rtmp_stat all) and prints JSON:
{"STREAM": [{"server": NAME, "publisher": ADDRESS}, ...], ...}
With --expect, polls until every expected stream is seen (exit 1 after --wait).
A stream seen on two servers lists both: the tests assert there is exactly one.
"""

import argparse
import json
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET


def streams_of(name, url):
    # Only the test's own media servers' stat pages (http URLs built by the playbook).
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
        root = ET.fromstring(response.read())  # noqa: S314
    for stream in root.iter("stream"):
        publishers = [c.findtext("address") for c in stream.iter("client") if c.find("publishing") is not None]
        yield stream.findtext("name"), {"server": name, "publisher": publishers[0] if publishers else None}


def snapshot(pages):
    seen = {}
    for arg in pages:
        name, _sep, url = arg.partition("=")
        for stream, where in streams_of(name, url):
            seen.setdefault(stream, []).append(where)
    return seen


def main():
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
        print(f"streams not seen within {args.wait}s: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

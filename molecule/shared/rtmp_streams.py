"""Which media server carries which live stream, and from which client address.

Usage: rtmp_streams.py NAME=STAT_URL [NAME=STAT_URL ...]
Reads each nginx-rtmp stat page (rtmp_stat all) and prints JSON:
{"STREAM": [{"server": NAME, "publisher": ADDRESS}, ...], ...}
A stream seen on two servers lists both: the tests assert there is exactly one.
"""

import json
import sys
import urllib.request
import xml.etree.ElementTree as ET


def streams_of(name, url):
    # Only the test's own media servers' stat pages (http URLs built by the playbook).
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
        root = ET.fromstring(response.read())  # noqa: S314
    for stream in root.iter("stream"):
        publishers = [c.findtext("address") for c in stream.iter("client") if c.find("publishing") is not None]
        yield stream.findtext("name"), {"server": name, "publisher": publishers[0] if publishers else None}


def main(args):
    seen = {}
    for arg in args:
        name, _sep, url = arg.partition("=")
        for stream, where in streams_of(name, url):
            seen.setdefault(stream, []).append(where)
    print(json.dumps(seen, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])

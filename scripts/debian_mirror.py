"""Print the Debian archive mirror this machine's apt is configured with.

The image builder uses it so that no mirror host is ever written into the repo.
Set DEBIAN_MIRROR to override. Reads deb822 files (*.sources) and one-line
sources.list entries; skips security and third-party archives.

With --security, the security archive instead (DEBIAN_SECURITY_MIRROR overrides):
the lab's upgrade test installs a newer HAProxy from it.
"""

from __future__ import annotations

import glob
import os
import re
import sys

SOURCES_GLOBS = ("/etc/apt/sources.list.d/*.sources",)
_OPTIONS = re.compile(r"\[[^\]]*\]")  # "[arch=amd64 signed-by=...]" in one-line entries
LIST_GLOBS = ("/etc/apt/sources.list", "/etc/apt/sources.list.d/*.list")


def _is_archive(uri: str, suites: list[str], security: bool = False) -> bool:
    if not uri.startswith(("http://", "https://")):
        return False
    is_security = uri.rstrip("/").endswith("-security") or any(s.endswith("-security") for s in suites)
    if is_security != security:
        return False
    return uri.rstrip("/").endswith("/debian-security" if security else "/debian")


def _from_deb822(text: str, security: bool = False) -> list[str]:
    found = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _sep, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        suites = fields.get("suites", "").split()
        found += [u for u in fields.get("uris", "").split() if _is_archive(u, suites, security)]
    return found


def _from_one_line(text: str, security: bool = False) -> list[str]:
    found = []
    for line in text.splitlines():
        words = _OPTIONS.sub(" ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb" and _is_archive(words[1], words[2:3], security):
            found.append(words[1])
    return found


def find_mirror(security: bool = False) -> str | None:
    override = os.environ.get("DEBIAN_SECURITY_MIRROR" if security else "DEBIAN_MIRROR")
    if override:
        return override
    readers = [(pattern, _from_deb822) for pattern in SOURCES_GLOBS]
    readers += [(pattern, _from_one_line) for pattern in LIST_GLOBS]
    for pattern, parse in readers:
        for path in sorted(glob.glob(pattern)):
            with open(path, encoding="utf-8") as handle:
                mirrors = parse(handle.read(), security)
            if mirrors:
                return mirrors[0]
    return None


def main() -> int:
    security = sys.argv[1:] == ["--security"]
    mirror = find_mirror(security)
    if not mirror:
        what = "security archive" if security else "mirror"
        variable = "DEBIAN_SECURITY_MIRROR" if security else "DEBIAN_MIRROR"
        print(f"no Debian {what} found in /etc/apt sources; set {variable}", file=sys.stderr)
        return 1
    print(mirror)
    return 0


if __name__ == "__main__":
    sys.exit(main())

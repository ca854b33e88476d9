# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PEM bundle HAProxy's `crt` reads (certificate, chain, private key), checked without OpenSSL bindings.

The balancer may have no Python cryptography package; the leaf's SHA-1 fingerprint is what
HAProxy's `show ssl cert` prints, so comparing it needs only base64 and hashlib.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.S)


class BundleError(ValueError):
    """The text is not a PEM bundle HAProxy can serve."""


def blocks(pem: str) -> list[tuple[str, bytes]]:
    """The bundle's (label, DER) blocks in order; BundleError names the first one that does not decode."""
    found = []
    for label, body in _BLOCK.findall(pem):
        try:
            found.append((label, base64.b64decode("".join(body.split()), validate=True)))
        except binascii.Error as e:
            raise BundleError(f"the {label} block #{len(found) + 1} is not valid base64: {e}") from e
    return found


def check(pem: str) -> list[tuple[str, bytes]]:
    """The blocks of a bundle with a certificate first and one private key; BundleError says what is missing."""
    found = blocks(pem)
    labels = [label for label, _der in found]
    if "CERTIFICATE" not in labels:
        raise BundleError("no -----BEGIN CERTIFICATE----- block")
    keys = [label for label in labels if label.endswith("PRIVATE KEY")]
    if len(keys) != 1:
        raise BundleError(f"{len(keys)} private key blocks; the bundle needs exactly one, the certificate's")
    return found


def leaf_fingerprint(pem: str) -> str:
    """SHA-1 of the first certificate's DER, upper-case hex, as HAProxy's `show ssl cert` prints it."""
    der = next(der for label, der in check(pem) if label == "CERTIFICATE")
    return hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - a fingerprint, not a signature


def normalize(pem: str) -> str:
    """The bundle without empty lines (HAProxy's runtime payload ends at the first one), newline-terminated."""
    return "".join(line.strip() + "\n" for line in pem.splitlines() if line.strip())

"""A throwaway certificate authority for tests: a CA and server bundles with chosen serials."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def key_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


class Authority:
    """A self-signed CA that issues server certificates (leaf + CA chain + key, as HAProxy's `crt` reads)."""

    def __init__(self, name: str = "rtmpedge test CA", days: int = 2):
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(1)
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    @classmethod
    def kept_in(cls, directory: Path, name: str, days: int) -> Authority:
        """The CA whose ca.pem and ca.key are in `directory`; a new one (saved there) when absent."""
        cert_file, key_file = directory / "ca.pem", directory / "ca.key"
        if cert_file.exists() and key_file.exists():
            authority = cls.__new__(cls)
            authority.cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
            authority.key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            return authority
        authority = cls(name, days)
        directory.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(key_pem(authority.key))
        cert_file.write_text(authority.pem)
        return authority

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, serial: int, names: list[str], key=None, days: int = 1) -> tuple[str, str]:
        """(bundle, leaf PEM) for a server certificate with this serial; `key` defaults to a new one.

        `names` are DNS names or IP addresses (the first is the subject's CN).
        """
        key = key or ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        leaf_pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
        return leaf_pem + self.pem + key_pem(key), leaf_pem


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def names_of(pem: str) -> set[str]:
    """The DNS names and IP addresses a PEM certificate (the first in the text) is valid for."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n.value) for n in san}


def days_left(pem: str) -> float:
    """Days until the first certificate in the PEM text expires."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    return (cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)).total_seconds() / 86400


def new_serial() -> int:
    return x509.random_serial_number()


def serial_of(der: bytes) -> int:
    """The serial number of a DER certificate (what a TLS client received)."""
    return x509.load_der_x509_certificate(der).serial_number


def other_key():
    return ec.generate_private_key(ec.SECP256R1())

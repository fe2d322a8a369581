"""The TLS folder, ``<dir>/tls/``: certificates, keys, ACME accounts and challenge answers.

Layout (every node sharing the data folder sees the same files)::

    tls/certs/<first domain>.pem      key + full chain of an ACME certificate (one file: replaced atomically)
    tls/dev/localhost.pem             key + self-signed certificate of ``--dev-tls``
    tls/acme/<host>-<hash>/           the ACME account of one directory URL: account.key, account.json
    tls/challenges/<token>            HTTP-01 answers, served on the plain-HTTP listener of every node
    tls/renew.lock                    held (flock) by the one node obtaining or renewing a certificate

Private material is written with mode 0600 through a temporary file and ``os.replace``, so a reader
(another node, or this one after a crash) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

RENEW_MARGIN = dt.timedelta(days=30)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class StoredCert:
    """A key and certificate chain in one PEM blob, with the leaf certificate parsed."""

    pem: bytes
    leaf: x509.Certificate

    @classmethod
    def parse(cls, pem: bytes) -> StoredCert:
        certs = x509.load_pem_x509_certificates(pem)  # ValueError when there is none
        serialization.load_pem_private_key(_key_block(pem), password=None)
        return cls(pem, certs[0])

    @property
    def names(self) -> list[str]:
        try:
            san = self.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return []
        return [n.lower() for n in san.get_values_for_type(x509.DNSName)]

    @property
    def not_after(self) -> dt.datetime:
        return self.leaf.not_valid_after_utc

    @property
    def serial(self) -> str:
        return format(self.leaf.serial_number, "x")

    def covers(self, domains: Sequence[str]) -> bool:
        return set(domains) <= set(self.names)

    def renew_at(self) -> dt.datetime:
        """When to renew: 30 days before expiry, or with a third of the lifetime left if that is shorter
        (a 90-day certificate at 60 days, a 6-day one at 4 days)."""
        lifetime = self.not_after - self.leaf.not_valid_before_utc
        return self.not_after - min(RENEW_MARGIN, lifetime / 3)

    def usable(self, domains: Sequence[str], at: dt.datetime | None = None) -> bool:
        """Covers DOMAINS and is valid for at least another minute."""
        return self.covers(domains) and self.not_after > (at or now()) + dt.timedelta(minutes=1)


def _key_block(pem: bytes) -> bytes:
    match = re.search(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", pem, re.S)
    if match is None:
        raise ValueError("no private key in the file")
    return match.group(0)


def read_cert(path: Path) -> StoredCert | None:
    """The stored certificate, or None when the file is missing or unreadable (it is then replaced)."""
    try:
        return StoredCert.parse(path.read_bytes())
    except (OSError, ValueError, TypeError):
        return None


def write_private(path: Path, data: bytes) -> None:
    """Write DATA to PATH with mode 0600, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_csr(key: ec.EllipticCurvePrivateKey, domains: Sequence[str]) -> bytes:
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domains[0])]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in domains]), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


def self_signed(names: Sequence[str], days: int = 365) -> bytes:
    """Key + a self-signed certificate for NAMES (DNS names or IP addresses), as one PEM blob."""
    key = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"keepbase development ({names[0]})")])
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    start = now() - dt.timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    return key_pem(key) + cert.public_bytes(serialization.Encoding.PEM)


class TlsFolder:
    """Paths under ``<dir>/tls/``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "tls"

    def cert_path(self, domains: Sequence[str]) -> Path:
        return self.root / "certs" / f"{domains[0]}.pem"

    @property
    def dev_path(self) -> Path:
        return self.root / "dev" / "localhost.pem"

    @property
    def challenges(self) -> Path:
        return self.root / "challenges"

    @property
    def lock_path(self) -> Path:
        return self.root / "renew.lock"

    def account_dir(self, directory_url: str) -> Path:
        """One account per ACME directory (Let's Encrypt's production and staging are different CAs)."""
        host = re.sub(r"[^a-z0-9.-]", "_", (urlsplit(directory_url).hostname or "acme").lower())
        digest = hashlib.sha256(directory_url.encode()).hexdigest()[:10]
        return self.root / "acme" / f"{host}-{digest}"

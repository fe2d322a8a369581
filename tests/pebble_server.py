"""A throwaway ACME CA for the tests: Debian's ``pebble`` (from ``scripts/install``) on loopback.

``PebbleServer()`` runs two processes on free 127.0.0.1 ports:

* ``pebble-challtestsrv`` as a mock DNS server answering 127.0.0.1 for every name, so certificates can
  be ordered for names like ``kb.test`` and pebble's validation reaches the server under test;
* ``pebble`` itself, validating HTTP-01 on ``http_port`` (its ``httpPort`` setting), without the
  artificial validation sleep, nonce rejections or authorization reuse (PEBBLE_VA_NOSLEEP=1,
  PEBBLE_WFE_NONCEREJECT=0, PEBBLE_AUTHZREUSE=0), so every order is validated for real and quickly.

Debian's package does not ship pebble's test certificates (``test/certs/``), so the HTTPS certificate
of pebble's own listener comes from a CA made here: ``ca_bundle`` is that CA's file, to be trusted
for the ACME directory connection only. ``root_pem()`` is the root pebble signs certificates with
(new at every launch). Nothing here imports pytest.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

INSTALL_HINT = "run `scripts/install` (it installs Debian's `pebble` package)"


def free_port() -> int:
    """A port free for TCP and UDP on 127.0.0.1 (the mock DNS listens on both)."""
    for _ in range(50):
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def issue(ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], names: list[str],
          not_before: dt.datetime, not_after: dt.datetime) -> bytes:
    """Key + certificate for NAMES (DNS names or IPs) signed by CA, as one PEM blob."""
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return _pem_key(key) + cert.public_bytes(serialization.Encoding.PEM)


class PebbleServer:
    def __init__(self) -> None:
        pebble, dns = shutil.which("pebble"), shutil.which("pebble-challtestsrv")
        if pebble is None or dns is None:
            raise RuntimeError(f"pebble not found: {INSTALL_HINT}")
        self.root = Path(tempfile.mkdtemp(prefix="kb-pebble-"))
        self.port, self.mgmt_port, self.dns_port = free_port(), free_port(), free_port()
        self.http_port, tls_port, dns_mgmt = free_port(), free_port(), free_port()
        ca = make_ca("keepbase test CA for pebble's listener")
        now = dt.datetime.now(dt.UTC)
        (self.root / "listener.pem").write_bytes(issue(ca, ["127.0.0.1", "localhost"], now - dt.timedelta(minutes=5),
                                                       now + dt.timedelta(days=1)))
        self.ca_bundle = self.root / "ca.pem"
        self.ca_bundle.write_bytes(ca[1].public_bytes(serialization.Encoding.PEM))
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}", "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
            "certificate": str(self.root / "listener.pem"), "privateKey": str(self.root / "listener.pem"),
            "httpPort": self.http_port, "tlsPort": tls_port, "ocspResponderURL": "",
            "externalAccountBindingRequired": False}}
        (self.root / "pebble.json").write_text(json.dumps(config))
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
        self.log = self.root / "pebble.log"
        with open(self.log, "ab") as out:
            self.dns = subprocess.Popen(
                [dns, "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "", "-tlsalpn01", "",
                 "-management", f"127.0.0.1:{dns_mgmt}", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            self.proc = subprocess.Popen(
                [pebble, "-config", str(self.root / "pebble.json"), "-dnsserver", f"127.0.0.1:{self.dns_port}"],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_bundle))

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for p in (self.proc, self.dns):
                if p.poll() is not None:
                    raise RuntimeError(f"pebble exited with {p.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.directory, verify=self._trust(), timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"pebble did not answer within {timeout} s:\n{self.log.read_text()}")
            time.sleep(0.1)

    def root_pem(self) -> bytes:
        """The root every certificate issued by this pebble chains to."""
        r = httpx.get(f"https://127.0.0.1:{self.mgmt_port}/roots/0", verify=self._trust(), timeout=10)
        r.raise_for_status()
        return r.content

    def stop(self) -> None:
        for p in (self.proc, self.dns):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

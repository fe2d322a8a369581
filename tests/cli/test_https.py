"""``keepbase serve`` over HTTPS in real processes: certificates from a real ACME CA (Debian's pebble on
loopback, tests/pebble_server.py) through the HTTP-01 challenge, reused at restart, renewed in the
background and swapped in without a restart; one node waiting for another's certificate; a failed
challenge as one line; your own certificate files (reloaded when replaced) and --dev-tls; TLS 1.2+
only, HSTS, and the plain-HTTP listener's redirect."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509

from keepbase.cli import main
from tests.pebble_server import PebbleServer, free_port, issue, make_ca
from tests.server_process import ServerProcess


@pytest.fixture(scope="module")
def pebble() -> Iterator[PebbleServer]:
    server = PebbleServer()
    yield server
    server.stop()


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        s.kill()


def _acme_args(pebble: PebbleServer, https_port: int, *domains: str) -> list[str]:
    return [*domains, "--https", f"127.0.0.1:{https_port}", "--http", f"127.0.0.1:{pebble.http_port}",
            "--acme-directory", pebble.directory, "--acme-ca-bundle", str(pebble.ca_bundle)]


def _start(servers: list[ServerProcess], tmp_path: Path, args: list[str], name: str = "serve") -> ServerProcess:
    server = ServerProcess.start(tmp_path, *args, name=name)
    servers.append(server)
    return server


def _wait_started(server: ServerProcess, timeout: float = 60) -> str:
    """The announced base URL, once the server is up."""
    deadline = time.monotonic() + timeout
    while not (m := re.search(r"started at (https://\S+)", server.output())):
        if server.proc.poll() is not None:
            raise AssertionError(f"keepbase exited with {server.proc.returncode}:\n{server.output()}")
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    return m.group(1)


def _client_context(root_pem: bytes | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=root_pem.decode()) if root_pem else ssl.create_default_context()
    if root_pem is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _served(port: int, sni: str | None, root_pem: bytes | None = None) -> tuple[x509.Certificate, str]:
    """The certificate the server presents for SNI (verified against ROOT_PEM when given), and the TLS version."""
    ctx = _client_context(root_pem)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, \
            ctx.wrap_socket(sock, server_hostname=sni) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der), str(tls.version())


def _names(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)}


def _get(port: int, path: str) -> httpx.Response:
    ctx = _client_context(None)  # the certificate is checked in _served; here the HTTP answer
    return httpx.get(f"https://127.0.0.1:{port}{path}", verify=ctx, timeout=10)


def test_certificate_over_acme_tls12_hsts_redirect_and_reuse_at_restart(
        tmp_path: Path, pebble: PebbleServer, servers: list[ServerProcess]) -> None:
    port = free_port()
    args = _acme_args(pebble, port, "kb.test", "WWW.kb.test")
    server = _start(servers, tmp_path, args)
    assert _wait_started(server) == f"https://kb.test:{port}"
    root = pebble.root_pem()

    # issued by the CA for both names, verified against its root, TLS 1.2 or newer
    cert, version = _served(port, "www.kb.test", root)
    assert _names(cert) == {"kb.test", "www.kb.test"}
    assert version in ("TLSv1.2", "TLSv1.3")
    stored = tmp_path / "data" / "tls" / "certs" / "kb.test.pem"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert x509.load_pem_x509_certificates(stored.read_bytes())[0].serial_number == cert.serial_number

    # TLS 1.1 is refused by the server, TLS 1.2 accepted. The client does offer TLS 1.1 (at security level 0;
    # otherwise OpenSSL fails before sending with "no protocols available"): the server answers with a
    # protocol-version alert, or, through asyncio's TLS layer, by closing the connection.
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # naming TLS 1.1 is deprecated, which is the point
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with pytest.raises(ssl.SSLError, match="(?i)protocol.version|EOF occurred"):
            old.wrap_socket(sock, server_hostname="kb.test")
    tls12 = _client_context(root)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, \
            tls12.wrap_socket(sock, server_hostname="kb.test") as tls:
        assert tls.version() == "TLSv1.2"

    # HSTS on HTTPS answers
    health = _get(port, "/api/health")
    assert health.status_code == 200
    assert health.headers["strict-transport-security"] == "max-age=15552000"

    # the plain-HTTP listener redirects, keeping path and query, only ever to a configured name
    plain = f"http://127.0.0.1:{pebble.http_port}"
    r = httpx.get(f"{plain}/api/collections/x/records?filter=%28a%3D1%29&page=2", headers={"host": "www.kb.test"})
    assert r.status_code == 301
    assert r.headers["location"] == f"https://www.kb.test:{port}/api/collections/x/records?filter=%28a%3D1%29&page=2"
    r = httpx.post(f"{plain}/api/batch", headers={"host": "evil.example"}, content=b"{}")
    assert (r.status_code, r.headers["location"]) == (308, f"https://kb.test:{port}/api/batch")
    assert "strict-transport-security" not in r.headers  # HSTS means nothing over plain HTTP
    assert httpx.get(f"{plain}/.well-known/acme-challenge/nope").status_code == 404

    # a restart reuses the stored certificate: same serial, the CA not asked
    assert server.stop() == 0
    again = _start(servers, tmp_path, args, name="again")
    _wait_started(again)
    assert _served(port, "kb.test", root)[0].serial_number == cert.serial_number
    assert "reusing the stored one" in again.output() and "asking" not in again.output()
    assert again.stop() == 0


def test_a_certificate_near_expiry_is_renewed_in_the_background_and_swapped_in(
        tmp_path: Path, pebble: PebbleServer, servers: list[ServerProcess]) -> None:
    # a stored certificate still valid for a day, of an 11-day lifetime: past its renewal date
    now = dt.datetime.now(dt.UTC)
    old_pem = issue(make_ca("an earlier CA"), ["renew.test"], now - dt.timedelta(days=10), now + dt.timedelta(days=1))
    stored = tmp_path / "data" / "tls" / "certs" / "renew.test.pem"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(old_pem)
    old_serial = x509.load_pem_x509_certificates(old_pem)[0].serial_number
    port = free_port()
    server = _start(servers, tmp_path, _acme_args(pebble, port, "renew.test"))
    _wait_started(server)
    assert "reusing the stored one" in server.output()  # serving at once, not waiting for the CA

    root = pebble.root_pem()
    deadline = time.monotonic() + 45
    while True:  # the same process starts presenting the renewed certificate
        cert, _ = _served(port, "renew.test")
        if cert.serial_number != old_serial:
            break
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.2)
    assert server.proc.poll() is None
    assert _served(port, "renew.test", root)[0].serial_number == cert.serial_number  # verifies: pebble's
    assert x509.load_pem_x509_certificates(stored.read_bytes())[0].serial_number == cert.serial_number
    while "renewed and in use without a restart" not in server.output():  # logged just after the swap
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    assert server.stop() == 0


def test_a_node_waits_for_the_certificate_another_node_is_obtaining(
        tmp_path: Path, pebble: PebbleServer, servers: list[ServerProcess]) -> None:
    tls_dir = tmp_path / "data" / "tls"
    tls_dir.mkdir(parents=True)
    fd = os.open(tls_dir / "renew.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # "another node" holds the renewal lock
        port = free_port()
        server = _start(servers, tmp_path, _acme_args(pebble, port, "shared.test"))
        deadline = time.monotonic() + 30
        while "another node is obtaining" not in server.output():
            assert server.proc.poll() is None and time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        now = dt.datetime.now(dt.UTC)
        theirs = issue(make_ca("the other node's CA"), ["shared.test"], now, now + dt.timedelta(days=90))
        (tls_dir / "certs").mkdir()
        (tls_dir / "certs" / "shared.test.pem").write_bytes(theirs)
    finally:
        os.close(fd)  # releases the lock
    _wait_started(server)
    served, _ = _served(port, "shared.test")
    assert served.serial_number == x509.load_pem_x509_certificates(theirs)[0].serial_number
    assert "asking" not in server.output()
    assert server.stop() == 0


def test_a_failed_challenge_is_one_clear_line(tmp_path: Path, pebble: PebbleServer,
                                              servers: list[ServerProcess]) -> None:
    # the plain-HTTP listener is not on the port the CA validates: nothing answers there
    elsewhere = free_port()
    args = [*_acme_args(pebble, free_port(), "fail.test"), "--http", f"127.0.0.1:{elsewhere}"]
    server = _start(servers, tmp_path, args)
    assert server.wait_exit(60) == 1
    out = server.output()
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, out
    assert "cannot obtain a TLS certificate for fail.test: HTTP-01 challenge failed: fail.test:" in errors[0]
    assert "refused" in errors[0].lower()
    assert f"the plain-HTTP listener is on 127.0.0.1:{elsewhere}" in errors[0]
    assert "Traceback" not in out and "started at" not in out


def test_own_certificate_files_are_served_and_reloaded_when_replaced(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    ca = make_ca("my CA")
    now = dt.datetime.now(dt.UTC)
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"

    def install(pem: bytes) -> int:
        key, _, chain = pem.partition(b"-----BEGIN CERTIFICATE-----")
        key_file.write_bytes(key)
        cert_file.write_bytes(b"-----BEGIN CERTIFICATE-----" + chain)
        return x509.load_pem_x509_certificates(pem)[0].serial_number

    first = install(issue(ca, ["app.test"], now, now + dt.timedelta(days=30)))
    port = free_port()
    server = _start(servers, tmp_path, ["--https", f"127.0.0.1:{port}", "--tls-cert", str(cert_file), "--tls-key",
                                        str(key_file), "--hsts-max-age", "0", "--tls-check-interval", "0.2"])
    assert _wait_started(server) == f"https://127.0.0.1:{port}"
    assert _served(port, "app.test")[0].serial_number == first
    assert "strict-transport-security" not in _get(port, "/api/health").headers  # --hsts-max-age 0

    # replaced files (certbot renewed them, say) are served without a restart
    second = install(issue(ca, ["app.test"], now, now + dt.timedelta(days=60)))
    deadline = time.monotonic() + 20
    while _served(port, "app.test")[0].serial_number != second:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)
    assert "reloaded" in server.output()
    assert server.stop() == 0


def test_dev_tls_keeps_a_self_signed_certificate_in_the_data_folder(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    port = free_port()
    server = _start(servers, tmp_path, ["--dev-tls", "--https", f"127.0.0.1:{port}"])
    assert _wait_started(server) == f"https://127.0.0.1:{port}"
    cert, _ = _served(port, None)
    assert {"localhost", "127.0.0.1"} <= _names(cert)
    assert cert.issuer == cert.subject
    stored = tmp_path / "data" / "tls" / "dev" / "localhost.pem"
    assert x509.load_pem_x509_certificates(stored.read_bytes())[0].serial_number == cert.serial_number
    assert _get(port, "/api/health").headers["strict-transport-security"] == "max-age=15552000"
    # without domains, the plain-HTTP listener (--http, given by ServerProcess) redirects to the Host asked for
    r = httpx.get(f"http://127.0.0.1:{server.port}/_/?a=1")
    assert (r.status_code, r.headers["location"]) == (301, f"https://127.0.0.1:{port}/_/?a=1")
    assert server.stop() == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--https", "127.0.0.1:8443"], "--https needs domain names"),
    (["*.kb.test"], "wildcard names need the DNS-01 challenge"),
    (["kb.test", "--dev-tls"], "choose one source of certificates"),
])
def test_options_that_do_not_fit_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--dir", str(tmp_path / "data"), *args])
    assert result.exit_code == 2
    out = result.output.strip()
    assert out.startswith("Error: ") and "\n" not in out and message in out, out
    assert not (tmp_path / "data").exists()  # stopped before touching anything

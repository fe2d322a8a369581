"""The egress guard against real servers on loopback: address classification in every
spelling, pinning with the original Host and SNI, redirects re-checked hop by hop, size and
time caps. The servers are canaries: a refused fetch must leave them untouched."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keepbase.security.egress import Egress, EgressError, EgressRefused, classify, literal_address
from tests.security.canary import Canary, running_canary


@pytest.fixture
def canary() -> Iterator[Canary]:
    with running_canary() as c:
        yield c


@pytest.fixture
def canary6() -> Iterator[Canary]:
    with running_canary("::1") as c:
        yield c


@pytest.fixture
def allowed() -> Iterator[Canary]:
    """A second server that the guard is told to allow (standing in for a public host)."""
    with running_canary() as c:
        yield c


def guard_allowing(*servers: Canary, **kwargs: object) -> Egress:
    return Egress(allow=frozenset((s.address, s.port) for s in servers), **kwargs)  # type: ignore[arg-type]


# --- classification ---

@pytest.mark.parametrize(("host", "address", "reason"), [
    ("127.0.0.1", "127.0.0.1", "loopback"),
    ("127.53.0.9", "127.53.0.9", "loopback"),
    ("2130706433", "127.0.0.1", "loopback"),  # decimal
    ("0177.0.0.1", "127.0.0.1", "loopback"),  # octal
    ("0x7f.1", "127.0.0.1", "loopback"),  # hex, short form
    ("0x7f000001", "127.0.0.1", "loopback"),
    ("127.1", "127.0.0.1", "loopback"),
    ("017700000001", "127.0.0.1", "loopback"),
    ("::1", "::1", "loopback"),
    ("[::1]", "::1", "loopback"),
    ("::ffff:127.0.0.1", "::ffff:7f00:1", "loopback"),  # IPv4-mapped IPv6
    ("::ffff:7f00:1", "::ffff:7f00:1", "loopback"),
    ("::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "cloud metadata"),
    ("64:ff9b::7f00:1", "64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("::127.0.0.1", "::7f00:1", "reserved"),  # IPv4-compatible
    ("10.1.2.3", "10.1.2.3", "private"),
    ("172.16.0.1", "172.16.0.1", "private"),
    ("172.31.255.255", "172.31.255.255", "private"),
    ("192.168.1.1", "192.168.1.1", "private"),
    ("0xc0.0xa8.1.1", "192.168.1.1", "private"),
    ("100.64.0.1", "100.64.0.1", "cgnat"),
    ("100.127.255.254", "100.127.255.254", "cgnat"),
    ("fc00::1", "fc00::1", "ula"),
    ("fdff::1", "fdff::1", "ula"),
    ("169.254.0.1", "169.254.0.1", "link-local"),
    ("fe80::1", "fe80::1", "link-local"),
    ("169.254.169.254", "169.254.169.254", "cloud metadata"),
    ("2852039166", "169.254.169.254", "cloud metadata"),
    ("fd00:ec2::254", "fd00:ec2::254", "cloud metadata"),
    ("100.100.100.200", "100.100.100.200", "cloud metadata"),
    ("224.0.0.1", "224.0.0.1", "multicast"),
    ("239.255.255.250", "239.255.255.250", "multicast"),
    ("ff02::1", "ff02::1", "multicast"),
    ("0.0.0.0", "0.0.0.0", "unspecified"),
    ("0", "0.0.0.0", "unspecified"),
    ("::", "::", "unspecified"),
    ("255.255.255.255", "255.255.255.255", "reserved"),
    ("240.0.0.1", "240.0.0.1", "reserved"),
    ("192.0.2.1", "192.0.2.1", "documentation"),
    ("2001:db8::1", "2001:db8::1", "documentation"),
    ("198.18.0.1", "198.18.0.1", "benchmark"),
    ("2002:7f00:1::1", "2002:7f00:1::1", "reserved"),  # 6to4 of 127.0.0.1
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "reserved"),  # Teredo
])
def test_non_public_addresses_are_classified(host: str, address: str, reason: str) -> None:
    parsed = literal_address(host)
    assert parsed == ipaddress.ip_address(address)
    assert classify(parsed) == reason


@pytest.mark.parametrize("host", ["8.8.8.8", "1.1.1.1", "134744072", "2606:4700:4700::1111",
                                  "::ffff:8.8.8.8", "64:ff9b::808:808", "100.63.255.255", "172.32.0.1"])
def test_public_addresses_pass(host: str) -> None:
    parsed = literal_address(host)
    assert parsed is not None
    assert classify(parsed) is None


def test_names_are_not_literals() -> None:
    assert literal_address("example.com") is None
    assert literal_address("0x7f.example") is None
    for bad in ("999999999999", "127.0.0.1.", "1.2.3.4.5", "0x1ffffffff", "256.256.256.256"):
        with pytest.raises(EgressRefused, match="malformed numeric host"):
            literal_address(bad)


# --- refusals before any connection ---

def loopback_forms(port: int) -> list[str]:
    return [f"http://127.0.0.1:{port}/a.png", f"http://2130706433:{port}/", f"http://0177.0.0.1:{port}/",
            f"http://0x7f.1:{port}/", f"http://0x7f000001:{port}/", f"http://127.1:{port}/",
            f"http://[::ffff:127.0.0.1]:{port}/", f"http://[::ffff:7f00:1]:{port}/", f"http://localhost:{port}/",
            f"HTTP://LOCALHOST:{port}/", f"http://127.0.0.1.nip.invalid:{port}/"]


def test_every_loopback_spelling_is_refused_and_never_connects(canary: Canary, canary6: Canary) -> None:
    guard = Egress()
    refused = 0
    for url in [*loopback_forms(canary.port), f"http://[::1]:{canary6.port}/", f"http://[0:0:0:0:0:0:0:1]:{canary6.port}/"]:
        with pytest.raises(EgressError) as info:
            guard.get(url, timeout=5)
        refused += isinstance(info.value, EgressRefused)
    assert refused >= 12  # all but the unresolvable name are refused by rule, not by accident
    assert canary.hits == [] and canary6.hits == []


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/", "http://10.0.0.1/", "http://192.168.0.1/", "http://100.64.0.1/",
    "http://[fc00::1]/", "http://[fe80::1]/", "http://[fe80::1%25lo]/", "http://224.0.0.1/", "http://0.0.0.0/",
    "http://0/", "http://255.255.255.255/", "http://[::]/",
])
def test_internal_destinations_are_refused_without_waiting(url: str) -> None:
    started = time.monotonic()
    with pytest.raises(EgressRefused):
        Egress().get(url, timeout=10)
    assert time.monotonic() - started < 1  # refused by rule, not after a connect timeout


@pytest.mark.parametrize(("url", "message"), [
    ("file:///etc/passwd", "scheme"), ("gopher://127.0.0.1:70/", "scheme"), ("//127.0.0.1/", "scheme"),
    ("ftp://example.com/", "scheme"), ("http://user:pw@example.com/", "user info"),
    ("http://example.com@127.0.0.1/", "user info"), ("http://exa mple.com/", "control"),
    ("http://example.com/\r\nHost: x", "control"), ("http:///path", "no host"), ("http://[::1/", "malformed"),
    ("http://example.com:99999/", "malformed"),
])
def test_malformed_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(EgressRefused, match=message):
        Egress().check_url(url)


# --- the allow-list, pinning ---

def test_allow_list_opens_exactly_one_address_and_port(canary: Canary, allowed: Canary) -> None:
    guard = guard_allowing(allowed)
    res = guard.get(f"{allowed.origin}/avatar.png")
    assert (res.status, res.content[:4]) == (200, b"\x89PNG")
    assert [h.path for h in allowed.hits] == ["/avatar.png"]
    with pytest.raises(EgressRefused, match="loopback"):  # same address, another port
        guard.get(f"{canary.origin}/")
    assert canary.hits == []


def test_the_resolved_address_is_pinned_and_the_host_header_kept(allowed: Canary) -> None:
    guard = guard_allowing(allowed)
    target = guard.check_url(f"http://localhost:{allowed.port}/p?q=1")
    assert (target.address, target.host, target.request_target) == ("127.0.0.1", "localhost", "/p?q=1")
    guard.get(f"http://localhost:{allowed.port}/p?q=1")
    assert [(h.path, h.host) for h in allowed.hits] == [("/p?q=1", f"localhost:{allowed.port}")]


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx, str(cert_path)


def test_https_is_pinned_with_the_original_sni_and_certificate_name(tmp_path: Path) -> None:
    ctx, ca = _self_signed(tmp_path)
    with running_canary(tls=ctx) as server:
        guard = guard_allowing(server, ca_certs=ca)
        res = guard.get(f"https://localhost:{server.port}/a.png")
        assert res.status == 200 and res.content.startswith(b"\x89PNG")
        assert server.sni == ["localhost"]  # connected to 127.0.0.1, still asked for localhost
        assert server.hits[0].host == f"localhost:{server.port}"
        # the certificate is for "localhost": the same server reached by address fails verification
        with pytest.raises(EgressError):
            guard.get(f"https://127.0.0.1:{server.port}/a.png")
        assert len(server.hits) == 1
        with pytest.raises(EgressError):  # and without the test CA nothing is trusted
            guard_allowing(server).get(f"https://localhost:{server.port}/a.png")
        assert len(server.hits) == 1


# --- redirects ---

@pytest.mark.parametrize("form", range(len(loopback_forms(1))))
def test_redirect_from_an_allowed_host_to_loopback_is_refused(form: int, canary: Canary, allowed: Canary) -> None:
    to = loopback_forms(canary.port)[form]
    with pytest.raises(EgressError):
        guard_allowing(allowed).get(f"{allowed.origin}/redirect?to={to}")
    assert [h.path.split("?")[0] for h in allowed.hits] == ["/redirect"]
    assert canary.hits == []


@pytest.mark.parametrize("to", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
                                "file:///etc/passwd", "http://[::1]/"])
def test_redirect_to_internal_or_other_schemes_is_refused(to: str, allowed: Canary) -> None:
    with pytest.raises(EgressRefused):
        guard_allowing(allowed).get(f"{allowed.origin}/redirect?to={to}", timeout=10)


def test_redirects_are_followed_a_few_times_only(allowed: Canary) -> None:
    guard = guard_allowing(allowed)
    res = guard.get(f"{allowed.origin}/redirect-n?n=2")  # n=2, 1, 0, then /final.png: 3 redirects
    assert res.status == 200 and res.url == f"{allowed.origin}/final.png"
    assert len(allowed.hits) == 4
    with pytest.raises(EgressRefused, match="redirects"):
        guard.get(f"{allowed.origin}/redirect-n?n=3")
    assert len(allowed.hits) == 8  # 4 hops, then it stops instead of following the fifth


def test_redirect_to_another_allowed_server_is_followed(canary: Canary, allowed: Canary) -> None:
    res = guard_allowing(allowed, canary).get(f"{allowed.origin}/redirect?to={canary.origin}/x.png")
    assert res.status == 200 and [h.path for h in canary.hits] == ["/x.png"]


# --- caps ---

@pytest.mark.parametrize("path", ["big", "big-chunked"])
def test_size_cap(path: str, allowed: Canary) -> None:
    guard = guard_allowing(allowed)
    assert len(guard.get(f"{allowed.origin}/{path}?size=1000", max_bytes=1000).content) == 1000
    with pytest.raises(EgressError, match="larger than 1000 bytes"):
        guard.get(f"{allowed.origin}/{path}?size=1001", max_bytes=1000)
    with pytest.raises(EgressError, match="larger than"):
        guard.get(f"{allowed.origin}/{path}?size=3000000", max_bytes=1 << 20)


def test_total_time_cap(allowed: Canary) -> None:
    started = time.monotonic()
    with pytest.raises(EgressError, match="timed out"):
        guard_allowing(allowed).get(f"{allowed.origin}/slow?seconds=6", timeout=1.0)
    assert time.monotonic() - started < 2

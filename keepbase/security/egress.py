"""The egress guard: the one way keepbase fetches a URL that a user or a third party chose.

Such a URL (an OAuth2 provider's avatar URL, for example) must not make the server reach
its own network: loopback services, the database, an admin panel on a private address, or a
cloud metadata service handing out credentials. ``Egress.get`` is therefore strict:

* **Resolve once, then pin.** The host is resolved a single time; every address it resolves
  to must be public, and the connection goes to that vetted address while the request still
  carries the original ``Host`` header and TLS SNI / certificate name. A DNS answer that
  changes between the check and the connect (DNS rebinding) cannot move the connection.
* **Refuse every non-public address**, whatever its spelling: loopback, RFC 1918 private,
  CGNAT 100.64/10, ULA fc00::/7, link-local, multicast, unspecified, reserved, broadcast,
  documentation and benchmark ranges, the cloud metadata addresses, IPv4-mapped and NAT64
  IPv6 forms of any of these, and the numeric IPv4 forms a resolver accepts (``2130706433``,
  ``0177.0.0.1``, ``0x7f.1``, ``127.1``) - those are parsed here exactly as ``inet_aton``
  reads them, so the address checked is the one a connect would use.
* **Redirects are followed by hand**, at most ``max_redirects`` of them, and each hop goes
  through the same resolution and check: a public host may not bounce the fetch inward.
* **Caps**: the body is read up to ``max_bytes`` (more fails the fetch, it is never
  truncated), and the whole fetch, redirects included, must finish within ``timeout``
  seconds. Responses are requested without content coding, so the cap counts real bytes and
  no decompression bomb is inflated.
* No proxy settings from the environment apply (a proxy would do the resolving instead of
  us), no credentials are sent, and URLs with user info, control characters or a scheme
  other than http(s) are refused.

``allow`` is an explicit list of ``(address, port)`` pairs that may be reached although they
are not public - an operator's intranet service, or a test server on loopback. It is empty by
default and widens exactly those pairs, nothing else.

The error tree::

    EgressError            the fetch failed: network error, too large, too slow
    └── EgressRefused      the guard refused the destination (``.reason`` says why)
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_TIMEOUT = 15.0
DEFAULT_MAX_BYTES = 5 << 20
DEFAULT_MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "keepbase"


class EgressError(Exception):
    """An outbound fetch failed (network error, response too large, too slow, bad URL)."""


class EgressRefused(EgressError):
    """The guard refused to connect: ``reason`` names the rule (e.g. ``loopback``)."""

    def __init__(self, reason: str, target: str = "") -> None:
        super().__init__(f"refused to fetch {target or 'the URL'}: {reason}")
        self.reason = reason


def _net(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr)


# Cloud instance metadata services; most sit inside a blocked range already, but they are
# named so that a refusal says what it protected.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, OpenStack...
    "169.254.170.2",  # AWS ECS task metadata
    "fd00:ec2::254",  # AWS over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",  # Oracle Cloud
))

# Ranges that are never a destination, named for the refusal message. ``is_global`` is also
# required afterwards, so a range the standard library knows about and this list forgets is
# still refused.
BLOCKED_NETWORKS: tuple[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network], ...] = tuple(
    (name, _net(cidr)) for name, cidr in (
        ("unspecified", "0.0.0.0/8"),
        ("private", "10.0.0.0/8"),
        ("cgnat", "100.64.0.0/10"),
        ("loopback", "127.0.0.0/8"),
        ("link-local", "169.254.0.0/16"),
        ("private", "172.16.0.0/12"),
        ("reserved", "192.0.0.0/24"),
        ("documentation", "192.0.2.0/24"),
        ("reserved", "192.88.99.0/24"),
        ("private", "192.168.0.0/16"),
        ("benchmark", "198.18.0.0/15"),
        ("documentation", "198.51.100.0/24"),
        ("documentation", "203.0.113.0/24"),
        ("multicast", "224.0.0.0/4"),
        ("reserved", "240.0.0.0/4"),  # includes the broadcast address 255.255.255.255
        ("unspecified", "::/128"),
        ("loopback", "::1/128"),
        ("reserved", "::/8"),  # IPv4-compatible and other deprecated forms
        ("reserved", "64:ff9b:1::/48"),
        ("reserved", "100::/64"),
        ("reserved", "2001::/23"),  # IETF protocol assignments, Teredo included
        ("documentation", "2001:db8::/32"),
        ("reserved", "2002::/16"),  # 6to4 tunnels to an arbitrary IPv4 address
        ("documentation", "3fff::/20"),
        ("ula", "fc00::/7"),
        ("link-local", "fe80::/10"),
        ("site-local", "fec0::/10"),
        ("multicast", "ff00::/8"),
    ))

_NAT64 = _net("64:ff9b::/96")
# A host made only of dot-separated decimal, octal or hex numbers: a resolver reads 1 to 4 such
# parts as an IPv4 address, and anything else of this shape is refused rather than looked up.
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+))*\.?", re.IGNORECASE)


def classify(address: IPAddress) -> str | None:
    """Why ``address`` may not be fetched from (``"loopback"``, ``"private"``...), or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "scoped"
        mapped = address.ipv4_mapped
        if mapped is not None:
            return classify(mapped)
        if address in _NAT64:  # DNS64: a public IPv4 address reached over IPv6
            return classify(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    for name, network in BLOCKED_NETWORKS:
        if address.version == network.version and address in network:
            return name
    if not address.is_global:
        return "non-global"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` names literally (an IP in any form a resolver accepts), else None.

    Raises ``EgressRefused`` for a numeric host no resolver would read the same way twice.
    """
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host):
        try:  # inet_aton reads 2130706433, 0177.0.0.1, 0x7f.1 and 127.1 as the C resolver does
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise EgressRefused("malformed numeric host", host) from None
    return None


def _resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


@dataclass(frozen=True)
class Target:
    """A vetted destination: where to connect (``address``) and what to ask for."""

    scheme: str
    host: str  # ASCII (IDNA) host name or the literal address, for Host/SNI/certificate checks
    port: int
    address: str
    request_target: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class Fetched:
    """A response read in full (within the caps). ``url`` is the last hop's URL."""

    url: str
    status: int
    headers: dict[str, str]
    content: bytes


@dataclass(frozen=True)
class Egress:
    """The guard. ``Egress().get(url)`` fetches a public URL; see the module docstring.

    ``Egress(allow=frozenset({("10.0.0.5", 443)}))`` may also reach that one intranet service.
    """

    allow: frozenset[tuple[str, int]] = frozenset()
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    ca_certs: str | None = None  # a CA bundle for https; certifi's by default

    def check_url(self, url: str) -> Target:
        """Parse ``url``, resolve its host once and vet every address; the pinned ``Target``."""
        if any(c <= " " or c == "\x7f" for c in url):
            raise EgressRefused("control character or space in the URL")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise EgressRefused(f"malformed URL ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise EgressRefused(f"scheme {scheme or '(none)'!r} is not http(s)")
        if parts.username is not None or parts.password is not None:
            raise EgressRefused("user info in the URL")
        hostname = parts.hostname or ""
        if not hostname:
            raise EgressRefused("no host in the URL")
        port = port or (443 if scheme == "https" else 80)
        literal = literal_address(hostname)
        if literal is not None:
            host, addresses = str(literal), [literal]
        else:
            try:
                host = hostname.encode("idna").decode("ascii")
            except UnicodeError:
                raise EgressRefused("invalid host name", hostname) from None
            try:
                resolved = _resolve(host, port)
            except OSError as exc:
                raise EgressError(f"cannot resolve {host}: {exc}") from exc
            addresses = [ipaddress.ip_address(a) for a in resolved]
            if not addresses:
                raise EgressError(f"cannot resolve {host}")
        # every address must pass: a name resolving to one public and one private address is
        # refused rather than trusting which one a connect would have picked
        for address in addresses:
            reason = classify(address)
            if reason is not None and (str(address), port) not in self.allow:
                raise EgressRefused(reason, f"{hostname} ({address})")
        pinned = addresses[0]
        if isinstance(pinned, ipaddress.IPv6Address) and pinned.ipv4_mapped is not None:
            pinned = pinned.ipv4_mapped
        path = parts.path or "/"
        return Target(scheme, host, port, str(pinned), path + (f"?{parts.query}" if parts.query else ""))

    def get(self, url: str, *, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = DEFAULT_TIMEOUT) -> Fetched:
        """GET ``url`` through the guard, following redirects by hand; raises ``EgressError``."""
        deadline = time.monotonic() + timeout
        for _ in range(self.max_redirects + 1):
            target = self.check_url(url)
            status, headers, content = self._fetch_one(target, max_bytes, deadline)
            if status in REDIRECT_STATUSES:
                location = headers.get("location", "")
                if not location:
                    raise EgressError(f"redirect without a Location from {url}")
                url = urljoin(url, location)
                continue
            return Fetched(url, status, headers, content)
        raise EgressRefused(f"more than {self.max_redirects} redirects", url)

    def _fetch_one(self, target: Target, max_bytes: int, deadline: float) -> tuple[int, dict[str, str], bytes]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise EgressError("timed out")
        timeout = urllib3.Timeout(connect=remaining, read=remaining)
        pool: urllib3.HTTPConnectionPool
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                target.address, target.port, timeout=timeout, retries=False, cert_reqs="CERT_REQUIRED",
                ca_certs=self.ca_certs or certifi.where(), server_hostname=target.host, assert_hostname=target.host)
        else:
            pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False)
        try:
            res = pool.urlopen(
                "GET", target.request_target, redirect=False, retries=False, assert_same_host=False,
                preload_content=False, decode_content=False,
                headers={"Host": target.host_header, "User-Agent": USER_AGENT, "Accept": "*/*",
                         "Accept-Encoding": "identity"})
            try:
                headers = {k.lower(): v for k, v in res.headers.items()}
                if res.status in REDIRECT_STATUSES:
                    return res.status, headers, b""
                length = headers.get("content-length", "")
                if length.isdigit() and int(length) > max_bytes:
                    raise EgressError(f"response larger than {max_bytes} bytes")
                return res.status, headers, _read_capped(res, max_bytes, deadline)
            finally:
                res.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise EgressError(f"fetching {target.host_header} failed: {exc}") from exc
        finally:
            pool.close()


def _read_capped(res: urllib3.BaseHTTPResponse, max_bytes: int, deadline: float) -> bytes:
    """The body, failing past ``max_bytes`` or ``deadline``. ``read1`` returns whatever has
    arrived, and the socket's timeout shrinks to what is left, so a server dripping a byte at a
    time cannot stretch the fetch past the deadline."""
    data = bytearray()
    sock = getattr(res.connection, "sock", None)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise EgressError("timed out")
        if sock is not None:
            sock.settimeout(left)
        chunk = res.read1(64 * 1024)
        if not chunk:
            return bytes(data)
        data.extend(chunk)
        if len(data) > max_bytes:
            raise EgressError(f"response larger than {max_bytes} bytes")

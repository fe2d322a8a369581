"""A canary HTTP server for egress tests: it records every request it receives.

It listens on a loopback address (IPv4 or IPv6) on a free port, in a thread. Paths:

* ``/redirect?to=<url>`` answers 302 to ``url``; ``/redirect-n?n=<k>`` redirects to itself k times
* ``/big?size=<n>`` answers n bytes (with a Content-Length), ``/big-chunked?size=<n>`` without one
* ``/slow?seconds=<s>`` drips one byte every 0.1 s for ``s`` seconds
* anything else answers a 1x1 PNG
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201e2213fbc0000000049454e44ae426082")


@dataclass
class Hit:
    path: str
    host: str


@dataclass
class Canary:
    address: str
    port: int
    hits: list[Hit] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    @property
    def origin(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up early is expected
            super().handle_error(request, client_address)


def _handler(canary: Canary) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            canary.hits.append(Hit(self.path, self.headers.get("Host", "")))
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/redirect":
                self._redirect(query["to"])
            elif parts.path == "/redirect-n":
                n = int(query["n"])
                self._redirect(f"/redirect-n?n={n - 1}" if n > 0 else "/final.png")
            elif parts.path == "/big":
                self._send(b"x" * int(query["size"]))
            elif parts.path == "/big-chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                left = int(query["size"])
                while left > 0:
                    n = min(left, 65536)
                    self.wfile.write(b"%x\r\n" % n + b"y" * n + b"\r\n")
                    left -= n
                self.wfile.write(b"0\r\n\r\n")
            elif parts.path == "/slow":
                self.send_response(200)
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                deadline = time.monotonic() + float(query["seconds"])
                try:
                    while time.monotonic() < deadline:
                        self.wfile.write(b"z")
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    pass  # the client gave up, as it should
            else:
                self._send(PNG, "image/png")

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _send(self, body: bytes, media_type: str = "application/octet-stream") -> None:
            self.send_response(200)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def running_canary(address: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Iterator[Canary]:
    """A canary listening on ``address`` (a loopback address) on a free port; https with ``tls``."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    server_class = type("Server", (_Server,), {"address_family": family})
    canary = Canary(address, 0)
    server = server_class((address, 0), _handler(canary))
    canary.port = int(server.server_address[1])
    if tls is not None:
        tls.sni_callback = lambda sock, name, ctx: canary.sni.append(name)  # type: ignore[assignment,misc]
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield canary
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

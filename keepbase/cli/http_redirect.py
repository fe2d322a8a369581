"""The two small ASGI pieces of HTTPS: the plain-HTTP listener and the HSTS header.

``PlainHttpApp`` answers on the plain-HTTP address (port 80) while HTTPS is on: ACME HTTP-01
challenges from ``tls/challenges/``, and a redirect to HTTPS for everything else, keeping path and
query. The redirect goes to the Host the client asked for only when it is one of the configured
domains (or, without domains, a plausible host name): the listener never becomes an open redirect.

``Hsts`` adds ``Strict-Transport-Security`` to every HTTPS response.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")


async def _respond(send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class PlainHttpApp:
    def __init__(self, challenges: Path, domains: Sequence[str], https_port: int) -> None:
        self.challenges = challenges
        self.domains = list(domains)
        self.https_port = https_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # run with lifespan="off"; no websockets here
            return
        path: str = scope["path"]
        if path.startswith(CHALLENGE_PREFIX):
            await self._challenge(path[len(CHALLENGE_PREFIX):], send)
            return
        host = self._target_host(scope)
        if host is None:
            await _respond(send, 400, b"HTTPS only; this address answers ACME challenges and redirects\n")
            return
        port = "" if self.https_port == 443 else f":{self.https_port}"
        target = f"https://{host}{port}".encode() + (scope.get("raw_path") or path.encode())
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        # 301 lets clients turn a POST into a GET; 308 keeps method and body
        status = 301 if scope["method"] in ("GET", "HEAD") else 308
        await _respond(send, status, b"", [(b"location", target)])

    async def _challenge(self, token: str, send: Send) -> None:
        answer = None
        if _TOKEN.match(token):
            try:
                answer = (self.challenges / token).read_bytes()
            except OSError:
                pass
        if answer is None:
            await _respond(send, 404, b"unknown challenge\n")
        else:
            await _respond(send, 200, answer)

    def _target_host(self, scope: Scope) -> str | None:
        raw = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
        host = raw.rsplit(":", 1)[0] if raw.count(":") == 1 else raw  # drop a port; leave IPv6 alone
        host = host.lower().rstrip(".")
        if self.domains:
            return host if host in self.domains else self.domains[0]
        if raw.startswith("[") or not _HOST.match(host):
            return None
        return host


class Hsts:
    """Adds ``Strict-Transport-Security: max-age=N`` to HTTPS responses (unless the app set one)."""

    def __init__(self, app: ASGIApp, max_age: int) -> None:
        self.app = app
        self.header = (b"strict-transport-security", f"max-age={max_age}".encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"strict-transport-security" for k, _ in headers):
                    headers.append(self.header)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_hsts)

"""One ``_logs`` row per HTTP request, as PocketBase's activity logger writes them.

The middleware only notes what it needs while the request runs (start time, status, the body of
an error response) and, once the response is sent, queues a callable on the log writer. Building
the row — the URL, redaction, the auth record, IPs, the error details — happens later on the
writer's thread (``store.logs``), so a request pays a ``deque.append``.

As PocketBase: failed requests (status >= 400) are level 8 (error) with ``error`` (the envelope's
message) and ``details`` (validation errors as ``{"field": "raw message"}``, else null); successful
ones are level 0. Successful requests to ``/api/logs*``, realtime connections, the OAuth2 redirect
and the dashboard (``/_/``) are not logged; failed ones are. CORS preflights never reach here.

Differences (docs/compatibility.md): query values of sensitive keys (``token``, ``password``,
``code``, ...) are replaced by ``[redacted]`` in ``url``, ``referer`` and the message;
``details`` is null for non-validation errors (PocketBase puts the raw internal error there).
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.types import AuthInfo
from ..store.logs import LEVEL_ERROR, LEVEL_INFO, LogEntry
from .client_ip import client_ip

if TYPE_CHECKING:
    from ..app import App

SENSITIVE_KEYS = frozenset({
    "token", "password", "passwordconfirm", "oldpassword", "secret", "code", "state", "access_token",
    "refresh_token", "accesstoken", "refreshtoken", "client_secret", "apikey", "api_key",
})
REDACTED = "[redacted]"
_MAX_ERROR_BODY = 64 * 1024
_NOT_RESOLVED = object()


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, kb: App) -> None:
        self.app = app
        self.kb = kb

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        error_body: list[bytes] | None = None

        async def watch(message: Message) -> None:
            nonlocal status, error_body
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if status >= 400:
                    error_body = []
            elif error_body is not None and sum(map(len, error_body)) < _MAX_ERROR_BODY:
                error_body.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            # only what the row needs, not the scope: a queued entry must keep little alive
            seen = _Seen(scope["method"], scope["path"], scope.get("raw_path"), scope.get("query_string", b""),
                         scope.get("headers", ()), scope.get("client"), scope.get("kb_auth", _NOT_RESOLVED),
                         scope.get("kb_client_ip"), status or 500, time.time(),
                         (time.perf_counter() - started) * 1000, b"".join(error_body) if error_body else b"")
            self.kb.logs.writer.add(partial(request_entry, self.kb, seen))


def _skip_success(method: str, path: str) -> bool:
    return (path == "/api/logs" or path.startswith(("/api/logs/", "/_/")) or path == "/_"
            or path == "/api/oauth2-redirect" or (path == "/api/realtime" and method == "GET"))


class _Seen(NamedTuple):
    method: str
    path: str
    raw_path: bytes | None
    query: bytes
    headers: Any
    client: Any
    auth: Any  # AuthInfo | None as resolved by the routes, or _NOT_RESOLVED
    ip: str | None
    status: int
    ended: float
    elapsed: float
    error_body: bytes


def request_entry(kb: App, seen: _Seen, logs: dict[str, Any]) -> LogEntry | None:
    """The log row of one finished request (runs on the log writer's thread)."""
    method = seen.method.upper()[:50]
    status = seen.status
    failed = status >= 400
    if not failed and _skip_success(method, seen.path):
        return None
    url = (seen.raw_path or seen.path.encode()).decode("latin-1")
    if seen.query:
        url += "?" + redact_query(seen.query.decode("latin-1"))
    url = _cut(url, 3000)
    referer = user_agent = authorization = b""
    for k, v in seen.headers:
        if k == b"user-agent":
            user_agent = v
        elif k == b"referer":
            referer = v
        elif k == b"authorization":
            authorization = v
    data: dict[str, Any] = {
        "type": "request", "execTime": seen.elapsed, "url": url, "method": method, "status": status,
        "referer": _cut(redact_url(referer.decode("latin-1")), 2000) if referer else "",
        "userAgent": _cut(user_agent.decode("latin-1"), 2000),
    }
    if failed:
        data["error"], data["details"] = _error_of(seen.error_body)
    auth = _auth_of(kb, seen.auth, authorization)
    data["auth"] = auth.collection_name if auth is not None else ""
    if auth is not None and logs.get("logAuthId"):
        data["authId"] = auth.id
    if logs.get("logIP", True):
        data["remoteIP"] = str(seen.client[0]) if seen.client else ""
        data["userIP"] = seen.ip or client_ip({"headers": seen.headers, "client": seen.client}, kb.settings.get())
    return LogEntry(seen.ended, LEVEL_ERROR if failed else LEVEL_INFO,
                    f"{method} {unquote(url) if '%' in url else url}", data)


def _auth_of(kb: App, cached: Any, header: bytes) -> AuthInfo | None:
    """The request's auth record: as resolved while serving it, else from its token (routes that
    never looked at the token, such as public record lists)."""
    if cached is not _NOT_RESOLVED and cached is not False:
        return cached  # type: ignore[no-any-return]
    if not header:
        return None
    try:
        return kb.auth_from_token(header.decode("latin-1"))
    except Exception:  # a bad token is a guest
        return None


def _error_of(body: bytes) -> tuple[str, Any]:
    try:
        envelope = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        envelope = None
    if not isinstance(envelope, dict):
        return "", None
    data = envelope.get("data")
    return str(envelope.get("message", "")), (raw_details(data) if data else None)


def raw_details(data: Any) -> Any:
    """Validation errors as PocketBase logs them (ozzo-validation's raw text): ``{"name":
    "cannot be blank"}`` for ``{"name": {"code": ..., "message": "Cannot be blank."}}``."""
    if isinstance(data, dict):
        if isinstance(data.get("code"), str) and isinstance(data.get("message"), str):
            msg = data["message"].rstrip(".")
            return msg[:1].lower() + msg[1:]
        return {k: raw_details(v) for k, v in data.items()}
    return data


def redact_query(query: str) -> str:
    """Replace the values of sensitive keys (``token=...``) in a raw query string."""
    if "=" not in query:
        return query
    parts = query.split("&")
    for i, part in enumerate(parts):
        key, eq, _value = part.partition("=")
        if eq and unquote(key.replace("+", " ")).strip().lower().replace("-", "") in SENSITIVE_KEYS:
            parts[i] = f"{key}={REDACTED}"
    return "&".join(parts)


def redact_url(url: str) -> str:
    base, sep, rest = url.partition("?")
    if not sep:
        return url
    query, hsep, fragment = rest.partition("#")
    return f"{base}?{redact_query(query)}{hsep}{fragment}"


def _cut(s: str, limit: int) -> str:
    return s[:limit] + "..." if len(s) > limit else s

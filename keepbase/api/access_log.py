"""The access log: one line per request on stdout, and the request metrics.

Text (``log_format = "text"``)::

    2025-05-01T12:00:00.123Z 203.0.113.7 GET /api/files/posts/x1/a.png?token=[redacted] 200 1.42ms

JSON (``log_format = "json"``), one object per line for log shippers::

    {"time":"2025-05-01T12:00:00.123Z","log":"access","ip":"203.0.113.7","method":"GET",
     "path":"/api/files/posts/x1/a.png?token=[redacted]","status":200,"durationMs":1.42}

The path is the raw (still percent-encoded) request target, so a line never holds a decoded
newline; the values of secret-looking query keys (``token``, ``password``, ``otp``, ``secret``,
``code``, ... see ``is_secret_key``) are replaced by ``[redacted]``. ``ip`` is the client's real IP
as rate limits and ``_logs`` see it (``settings.trustedProxy``). A realtime stream is logged when
it ends, with its whole duration; a client that went away before a response started is 499 (as
nginx logs it), a request that failed before answering is 500.

The middleware sits outermost in ``api.routes.build_asgi``. It is on the hot path, so a line is
one f-string (or one ``orjson.dumps``) appended to a buffer, written with one ``write`` when it
holds 64 KiB or 0.2 s after its first line, not through ``logging`` (whose record and formatter
machinery would cost more than many requests).
"""

from __future__ import annotations

import asyncio
import atexit
import sys
import time
import weakref
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .client_ip import client_ip
from .request_log import REDACTED, SENSITIVE_KEYS

if TYPE_CHECKING:
    from ..app import App
    from .metrics import Metrics

FLUSH_BYTES = 64 * 1024
FLUSH_DELAY = 0.2  # seconds a line may wait in the buffer
CLIENT_GONE = 499
_SECRET_PARTS = ("token", "password", "passwd", "secret", "otp", "apikey", "api_key", "signature")


def is_secret_key(key: str) -> bool:
    k = key.strip().lower().replace("-", "")
    return k in SENSITIVE_KEYS or any(part in k for part in _SECRET_PARTS)


def safe_target(path: str, query: bytes) -> str:
    """``path?query`` with the values of secret query keys redacted."""
    if not query:
        return path
    raw = query.decode("latin-1")
    if "=" in raw:
        parts = raw.split("&")
        for i, part in enumerate(parts):
            key, eq, _value = part.partition("=")
            if eq and is_secret_key(_unquote_key(key)):
                parts[i] = f"{key}={REDACTED}"
        raw = "&".join(parts)
    return f"{path}?{raw}"


def _unquote_key(key: str) -> str:
    if "%" in key or "+" in key:
        from urllib.parse import unquote_plus

        return unquote_plus(key)
    return key


_MILLIS = tuple(f".{i:03d}Z" for i in range(1000))


class _Clock:
    """ISO-8601 UTC timestamps with milliseconds; the part up to the second is cached."""

    __slots__ = ("prefix", "second")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def stamp(self, now: float) -> str:
        second, millis = divmod(int(now * 1000), 1000)
        if second != self.second:
            self.second = second
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return self.prefix + _MILLIS[millis]


class LineWriter:
    """Buffered lines to stdout: written when 64 KiB are waiting, or FLUSH_DELAY seconds after
    the first waiting line (on the event loop), and at interpreter exit. ``sys.stdout`` is looked
    up at each write, so a redirected stdout (pytest's capture, say) is honoured."""

    def __init__(self) -> None:
        self._lines: list[bytes] = []
        self._size = 0
        self._scheduled = False
        _WRITERS.add(self)
        _register_atexit()

    def write(self, line: bytes) -> None:
        self._lines.append(line)
        self._size += len(line)
        if self._size >= FLUSH_BYTES:
            self.flush()
        elif not self._scheduled:
            try:
                asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)
                self._scheduled = True
            except RuntimeError:  # not on an event loop: no timer to wait for
                self.flush()

    def flush(self) -> None:
        self._scheduled = False
        if not self._lines:
            return
        data = b"".join(self._lines)
        self._lines.clear()
        self._size = 0
        out = sys.stdout
        try:
            buffer = getattr(out, "buffer", None)
            if buffer is not None:
                out.flush()  # whatever was printed before these lines goes first
                buffer.write(data)
                buffer.flush()
            else:
                out.write(data.decode("utf-8", "replace"))
                out.flush()
        except (OSError, ValueError):  # stdout closed or gone: the access log is best-effort
            pass


_WRITERS: weakref.WeakSet[LineWriter] = weakref.WeakSet()
_ATEXIT = False


def _register_atexit() -> None:
    global _ATEXIT
    if not _ATEXIT:
        _ATEXIT = True
        atexit.register(flush_all)


def flush_all() -> None:
    """Write every buffered access-log line now (tests, shutdown)."""
    for writer in list(_WRITERS):
        writer.flush()


class AccessLogMiddleware:
    """Times every HTTP request once, for the access-log line and the request metrics."""

    def __init__(self, app: ASGIApp, kb: App, metrics: Metrics | None = None) -> None:
        self.app = app
        self.kb = kb
        self.metrics = metrics
        self.enabled = bool(kb.config.access_log)
        self.json = kb.config.log_format == "json"
        self.writer = LineWriter()
        self.clock = _Clock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (not self.enabled and self.metrics is None):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except asyncio.CancelledError:
            status = status or CLIENT_GONE
            raise
        except BaseException:
            status = status or 500
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._done(scope, status or 500, elapsed)

    def _done(self, scope: Scope, status: int, elapsed: float) -> None:
        method: str = scope["method"]
        if self.metrics is not None:
            self.metrics.observe(method, self.metrics.route_of(scope), status, elapsed)
        if not self.enabled:
            return
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        target = safe_target(path, scope.get("query_string", b""))
        ip = scope.get("kb_client_ip")
        if ip is None:
            ip = self._ip(scope)
        stamp = self.clock.stamp(time.time())
        if self.json:
            line = orjson.dumps({"time": stamp, "log": "access", "ip": ip, "method": method, "path": target,
                                 "status": status, "durationMs": int(elapsed * 100_000) / 100}) + b"\n"
        else:
            line = f"{stamp} {ip or '-'} {method} {target} {status} {elapsed * 1000:.2f}ms\n".encode("utf-8", "replace")
        self.writer.write(line)

    def _ip(self, scope: Scope) -> str:
        """The real IP for requests answered before the rate-limit middleware worked it out
        (CORS preflights); falls back to the TCP peer if the settings cannot be read."""
        try:
            settings: dict[str, Any] = self.kb.settings.get()
        except Exception:
            settings = {}
        return client_ip(scope, settings)

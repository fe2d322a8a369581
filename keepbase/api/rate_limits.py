"""Rate limiting, as an ASGI middleware in front of the routes.

**Settings rules** (PocketBase's, docs 10; only when ``settings.rateLimits.enabled``). A request
is matched against candidate labels, first hit wins: ``<collection>:<tag>`` for each of the
route's action tags, then ``*:<tag>``, then ``<METHOD> <path>``, then ``<path>``; for each
candidate an exact label match is tried first, then the prefix rules (labels ending in ``/``)
against ``<candidate>/``. Rules whose audience doesn't fit (``@guest``/``@auth``) are skipped.
Superusers and ``excludedIPs`` are never limited. Counters are per client IP, keyed like
PocketBase's: collection id + route pattern + tags + audience for collection routes, label +
audience otherwise. Exceeding → ``429 Too Many Requests.`` without extra headers.

**Brute-force limits** (keepbase addition, always on, whatever the settings): per client IP
and per identity (the ``identity``, ``email``, ``otpId`` or ``mfaId`` in the body) on the
sign-in and "send me a mail" endpoints. Sign-in attempts count only when they fail (a 200, or
a 401 asking for the second MFA factor, gives the token back); mail requests always count.
Exceeding → 429 with ``Retry-After`` (seconds).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import anyio.to_thread
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.errors import ServiceUnavailableError, TooManyRequestsError
from ..core.types import AuthInfo
from ..security.rate_limiter import MemoryRateLimiter
from .client_ip import client_ip, ip_in
from .errors import error_response

log = logging.getLogger("keepbase.ratelimits")
#: seconds a client is asked to wait when the counters' store (Redis, PostgreSQL) is unreachable
UNAVAILABLE_RETRY = 5

if TYPE_CHECKING:
    from ..app import App

_C = r"/api/collections/(?P<c>[^/]+)"


@dataclass(frozen=True)
class RouteTags:
    method: str
    regex: re.Pattern[str]
    pattern: str  # the route pattern, part of the counter key (as PocketBase's e.Request.Pattern)
    tags: tuple[str, ...]


def _route(method: str, path_re: str, pattern: str, *tags: str) -> RouteTags:
    return RouteTags(method, re.compile("^" + path_re + "$"), f"{method} {pattern}", tags)


_CP = "/api/collections/{collection}"
ROUTE_TAGS = [
    _route("GET", _C + "/records", _CP + "/records", "list"),
    _route("POST", _C + "/records", _CP + "/records", "create"),
    _route("GET", _C + "/records/[^/]+", _CP + "/records/{id}", "view"),
    _route("PATCH", _C + "/records/[^/]+", _CP + "/records/{id}", "update"),
    _route("DELETE", _C + "/records/[^/]+", _CP + "/records/{id}", "delete"),
    _route("GET", r"/api/files/(?P<c>[^/]+)/[^/]+/[^/]+", "/api/files/{collection}/{recordId}/{filename}", "file"),
    _route("GET", _C + "/auth-methods", _CP + "/auth-methods", "listAuthMethods"),
    _route("POST", _C + "/auth-refresh", _CP + "/auth-refresh", "authRefresh"),
    _route("POST", _C + "/auth-with-password", _CP + "/auth-with-password", "authWithPassword", "auth"),
    _route("POST", _C + "/auth-with-oauth2", _CP + "/auth-with-oauth2", "authWithOAuth2", "auth"),
    _route("POST", _C + "/request-otp", _CP + "/request-otp", "requestOTP"),
    _route("POST", _C + "/auth-with-otp", _CP + "/auth-with-otp", "authWithOTP", "auth"),
    _route("POST", _C + "/auth-with-totp", _CP + "/auth-with-totp", "authWithTOTP", "auth"),
    _route("POST", _C + "/request-password-reset", _CP + "/request-password-reset", "requestPasswordReset"),
    _route("POST", _C + "/confirm-password-reset", _CP + "/confirm-password-reset", "confirmPasswordReset"),
    _route("POST", _C + "/request-verification", _CP + "/request-verification", "requestVerification"),
    _route("POST", _C + "/confirm-verification", _CP + "/confirm-verification", "confirmVerification"),
    _route("POST", _C + "/request-email-change", _CP + "/request-email-change", "requestEmailChange"),
    _route("POST", _C + "/confirm-email-change", _CP + "/confirm-email-change", "confirmEmailChange"),
]


@dataclass(frozen=True)
class BruteForceLimit:
    """Always-on limits of one endpoint: ``(max, seconds)`` per IP and per identity."""

    field: str
    per_ip: tuple[int, int]
    per_identity: tuple[int, int]
    failures_only: bool


_SIGN_IN_IP, _SIGN_IN_ID = (30, 300), (10, 300)
_MAIL_IP, _MAIL_ID = (20, 600), (5, 600)
BRUTE_FORCE: dict[str, BruteForceLimit] = {
    "auth-with-password": BruteForceLimit("identity", _SIGN_IN_IP, _SIGN_IN_ID, True),
    "auth-with-otp": BruteForceLimit("otpId", _SIGN_IN_IP, _SIGN_IN_ID, True),
    "auth-with-totp": BruteForceLimit("mfaId", _SIGN_IN_IP, _SIGN_IN_ID, True),
    "request-otp": BruteForceLimit("email", _MAIL_IP, _MAIL_ID, False),
    "request-password-reset": BruteForceLimit("email", _MAIL_IP, _MAIL_ID, False),
    "request-verification": BruteForceLimit("email", _MAIL_IP, _MAIL_ID, False),
}
_BRUTE_RE = re.compile(r"^/api/collections/([^/]+)/(" + "|".join(map(re.escape, BRUTE_FORCE)) + r")$")
_MAX_BUFFERED = 64 * 1024  # bodies of the guarded endpoints are tiny; larger ones go through unread


def find_rule(rules: list[dict[str, Any]], labels: list[str], audiences: tuple[str, ...]) -> dict[str, Any] | None:
    """PocketBase's ``FindRateLimitRule``."""
    prefix = [r for r in rules if str(r.get("label", "")).endswith("/")]
    for label in labels:
        for r in rules:
            if r.get("label") == label and r.get("audience", "") in audiences:
                return r
        for r in prefix:
            if (label + "/").startswith(str(r["label"])) and r.get("audience", "") in audiences:
                return r
    return None


def rules_generation(limits: dict[str, Any]) -> str:
    """A digest of the rate-limit settings, part of every counter key."""
    return hashlib.sha256(orjson.dumps(limits, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def settings_limited(kb: App, limits: dict[str, Any], generation: str, method: str, path: str,
                     auth: AuthInfo | None, ip: str, *, batch: bool = False) -> bool:
    """Whether one request (``method path`` by ``auth`` from ``ip``) exceeds the settings rules;
    counts it when a rule applies. ``batch``: a sub-request of ``/api/batch``, which PocketBase
    limits with the same rules as the standalone request, on counters of its own."""
    if auth is not None and auth.is_superuser:
        return False
    audiences = ("", "@auth") if auth is not None else ("", "@guest")
    labels: list[str] = []
    counter_id = ""
    for route in ROUTE_TAGS:
        m = route.regex.match(path) if route.method == method else None
        if m is None:
            continue
        c = kb.collections.find(m.group("c"))
        if c is not None:
            labels = [f"{c.name}:{t}" for t in route.tags] + [f"*:{t}" for t in route.tags]
            counter_id = c.id + route.pattern + "".join(route.tags)
        break
    labels += [f"{method} {path}", path]
    rule = find_rule(list(limits.get("rules") or []), labels, audiences)
    if rule is None:
        return False
    key = (counter_id or str(rule.get("label", ""))) + str(rule.get("audience", ""))
    if batch:
        key = "batch:" + key
    return bool(_consume(kb.rate_limiter, f"rl:{generation}:{key}:{ip}", int(rule["maxRequests"]),
                         int(rule["duration"])))


def batch_item_limited(kb: App, ip: str, auth: AuthInfo | None, method: str, path: str) -> bool:
    """``settings_limited`` for a sub-request of ``/api/batch`` (the settings read now)."""
    limits = kb.settings.get().get("rateLimits") or {}
    if not limits.get("enabled") or not ip or ip_in(ip, list(limits.get("excludedIPs") or [])):
        return False
    return settings_limited(kb, limits, rules_generation(limits), method, path, auth, ip, batch=True)


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, kb: App) -> None:
        self.app = app
        self.kb = kb
        self._rules_seen: Any = None
        self._generation = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        settings = self.kb.settings.get()
        ip = client_ip(scope, settings)
        scope["kb_client_ip"] = ip
        scope["kb_app"] = self.kb  # read by api.deps.app_of
        limits = settings.get("rateLimits") or {}
        if limits != self._rules_seen:  # as PocketBase: new settings start from fresh counters
            # The counters' keys carry a digest of the rules instead of a reset, so nodes sharing
            # one counter store (PostgreSQL) agree without wiping each other's counts.
            self._rules_seen = copy.deepcopy(limits)
            self._generation = rules_generation(limits)
            if isinstance(self.kb.rate_limiter, MemoryRateLimiter):  # in-process: drop the old generation
                self.kb.rate_limiter.reset("rl:")
        if limits.get("enabled") and ip and not ip_in(ip, list(limits.get("excludedIPs") or [])):
            try:
                limited = await self._settings_limited(scope, limits, ip)
            except LimiterUnavailable:
                await _unavailable(scope, receive, send)
                return
            if limited:
                await error_response(TooManyRequestsError())(scope, receive, send)
                return
        m = _BRUTE_RE.match(scope["path"]) if scope["method"] == "POST" else None
        if m is None:
            await self.app(scope, receive, send)
            return
        try:
            await self._guarded(scope, receive, send, m.group(1), BRUTE_FORCE[m.group(2)], m.group(2), ip)
        except LimiterUnavailable:
            await _unavailable(scope, receive, send)

    # --- settings rules ---
    async def _auth(self, scope: Scope) -> AuthInfo | None:
        cached = scope.get("kb_auth", False)
        if cached is not False:
            return cached  # type: ignore[no-any-return]
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), "")
        auth = None
        if header:
            auth = await anyio.to_thread.run_sync(self.kb.auth_from_token, header, limiter=self.kb.limiter)
        scope["kb_auth"] = auth  # read again by api.deps.current_auth
        return auth

    async def _settings_limited(self, scope: Scope, limits: dict[str, Any], ip: str) -> bool:
        auth = await self._auth(scope)
        return settings_limited(self.kb, limits, self._generation, scope["method"], scope["path"], auth, ip)

    # --- brute-force limits ---
    async def _guarded(self, scope: Scope, receive: Receive, send: Send, collection: str,
                       limit: BruteForceLimit, action: str, ip: str) -> None:
        messages, body, complete = await _buffer(receive)
        identity = _identity(scope, body, limit.field) if complete else ""
        limiter = self.kb.rate_limiter
        keys = [(f"bf:{action}:ip:{ip}", limit.per_ip)]
        if identity:
            keys.append((f"bf:{action}:{collection}:id:{identity.strip().lower()}", limit.per_identity))
        taken: list[str] = []
        wait = 0
        for key, (max_requests, duration) in keys:
            wait = _consume(limiter, key, max_requests, duration)
            if wait:
                break
            taken.append(key)
        if wait:
            for key in taken:
                _release(limiter, key)
            response = error_response(TooManyRequestsError())
            response.headers["Retry-After"] = str(wait)
            await response(scope, receive, send)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, _replay(messages, receive), watch)
        finally:
            if limit.failures_only and (status == 200 or status == 401):
                for key in taken:
                    _release(limiter, key)


class LimiterUnavailable(Exception):
    """The counters could not be read or written (their shared store is down)."""


def _consume(limiter: Any, key: str, max_requests: int, duration: int) -> int:
    """``limiter.consume``; a failing store fails closed (503), never open: brute-force and OTP
    protection rely on these counters."""
    try:
        return int(limiter.consume(key, max_requests, duration))
    except Exception as exc:
        log.exception("rate limiter unavailable")
        raise LimiterUnavailable() from exc


def _release(limiter: Any, key: str) -> None:
    try:
        limiter.release(key)
    except Exception:  # the request is answered already; a lost release only counts one attempt more
        log.exception("rate limiter unavailable (release)")


async def _unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(ServiceUnavailableError())
    response.headers["Retry-After"] = str(UNAVAILABLE_RETRY)
    await response(scope, receive, send)


async def _buffer(receive: Receive) -> tuple[list[Message], bytes, bool]:
    """Read the request body (up to a cap). (messages read, body, whether it is complete)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, b"", False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return messages, b"".join(chunks), True
        if size > _MAX_BUFFERED:
            return messages, b"", False


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _identity(scope: Scope, body: bytes, field: str) -> str:
    ctype = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"), "")
    ctype = ctype.split(";")[0].strip().lower()
    value: Any = None
    try:
        if ctype in ("", "application/json"):
            data = orjson.loads(body) if body.strip() else {}
            value = data.get(field) if isinstance(data, dict) else None
        elif ctype == "application/x-www-form-urlencoded":
            value = (parse_qs(body.decode("utf-8", "replace")).get(field) or [""])[0]
    except orjson.JSONDecodeError:
        return ""
    return value if isinstance(value, str) else ""

"""The route table and the ASGI stack (security headers, CORS, error envelope, 404s)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.errors import ApiError, BadRequestError, NotFoundError
from . import (
    audit,
    backups,
    batch,
    collections,
    crons,
    custom,
    docs_page,
    files,
    health,
    logs,
    metrics,
    oauth2,
    openapi,
    otp,
    realtime,
    record_account,
    record_auth,
    records,
    settings,
    settings_test,
    sql_console,
    totp,
    view_preview,
)
from .access_log import AccessLogMiddleware
from .errors import EnvelopeGuard, api_error_handler, error_response
from .params import valid_query_encoding
from .rate_limits import RateLimitMiddleware
from .request_log import RequestLogMiddleware

if TYPE_CHECKING:
    from ..app import App

_SECURITY_HEADERS = [
    (b"x-xss-protection", b"1; mode=block"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"vary", b"Origin"),
]
_FILE_HEADERS = [h for h in _SECURITY_HEADERS if h[0] != b"x-frame-options"]


class HeadersMiddleware:
    """Security headers on every response, PocketBase's permissive CORS and preflights."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_origin = False
        preflight_method = None
        preflight_headers = b""
        for k, v in scope["headers"]:
            if k == b"origin":
                has_origin = True
            elif k == b"access-control-request-method":
                preflight_method = v
            elif k == b"access-control-request-headers":
                preflight_headers = v
        if scope["method"] == "OPTIONS":
            headers = [(b"vary", b"Origin")]
            if has_origin and preflight_method:
                headers = [
                    (b"access-control-allow-headers", preflight_headers),
                    (b"access-control-allow-methods", b"GET,HEAD,PUT,PATCH,POST,DELETE"),
                    (b"access-control-allow-origin", b"*"),
                    (b"vary", b"Origin"), (b"vary", b"Access-Control-Request-Method"),
                    (b"vary", b"Access-Control-Request-Headers"),
                ]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        if not valid_query_encoding(scope.get("query_string", b"")):
            # keepbase refuses what PocketBase silently ignores (``fields``/``expand`` with bytes that
            # are not UTF-8): parser differentials are a known bypass class
            response = error_response(BadRequestError())
            await response(scope, receive, send)
            return

        # PocketBase drops X-Frame-Options on file downloads (the sandboxing CSP stays)
        security = _FILE_HEADERS if scope["path"].startswith("/api/files/") else _SECURITY_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(security)
                if has_origin:
                    headers.append((b"access-control-allow-origin", b"*"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def not_found(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException) and exc.status_code in (404, 405):
        if request.method in ("GET", "HEAD"):
            return error_response(NotFoundError("File not found."))
        return error_response(NotFoundError())
    return await api_error_handler(request, exc)


# Each endpoint-group module exposes ``ROUTES``; order matters only where paths overlap
# (specific paths such as /api/collections/import come before /api/collections/{collection}).
# Starlette tries routes in order, so the hottest come first: records (no other path has
# their shape) and health.
ROUTE_MODULES = [records, health, view_preview, collections, oauth2, record_auth, otp, totp, record_account, settings, settings_test, realtime, audit,
                 batch, backups, files, logs, metrics, crons, openapi, docs_page, sql_console, custom]  # custom: always last


def build_asgi(app: App) -> ASGIApp:
    routes = [route for module in ROUTE_MODULES for route in module.ROUTES]
    handlers: dict[Any, Any] = {ApiError: api_error_handler, HTTPException: not_found,
                                Exception: api_error_handler}
    star = Starlette(routes=routes, exception_handlers=handlers, lifespan=app.lifespan)
    star.router.redirect_slashes = False
    star.state.keepbase = app
    star.state.metrics = metrics.Metrics(app, routes)
    # outermost: the access log and request metrics see every answer, preflights included;
    # EnvelopeGuard on both sides of it: whatever fails anywhere still becomes the envelope
    inner = EnvelopeGuard(HeadersMiddleware(RequestLogMiddleware(RateLimitMiddleware(star, app), app)))
    return EnvelopeGuard(AccessLogMiddleware(inner, app, star.state.metrics))

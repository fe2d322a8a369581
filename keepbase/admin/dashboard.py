"""Serve the admin dashboard's static files at ``/_/``, in front of the HTTP API.

``with_dashboard(api)`` wraps the API's ASGI app: requests for ``/_`` and ``/_/…`` are answered
here, everything else goes to ``api`` untouched (lifespan included). The dashboard is a plain
client of the public HTTP API; this module only hands out its files.

Only the files named in ``_ASSETS`` can ever be served: the request path is looked up in that
table and never joined onto a filesystem path, so ``..``, encoded slashes or NUL bytes cannot
reach anything else. The files are read once, when the app is built.

Every dashboard response carries its own strict headers (the API's headers middleware is not in
this path): a CSP that allows only same-origin scripts, styles and connections (no inline code,
no eval, Trusted Types enforced, no framing), ``X-Frame-Options: DENY``, ``nosniff`` and
``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/_/"

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
])

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]

# URL name under /_/ → (file in static/, content type)
_ASSETS: dict[str, tuple[str, str]] = {
    "": ("index.html", "text/html; charset=utf-8"),
    "index.html": ("index.html", "text/html; charset=utf-8"),
    "app.js": ("app.js", "text/javascript; charset=utf-8"),
    "api.js": ("api.js", "text/javascript; charset=utf-8"),
    "dom.js": ("dom.js", "text/javascript; charset=utf-8"),
    "install.js": ("install.js", "text/javascript; charset=utf-8"),
    "app.css": ("app.css", "text/css; charset=utf-8"),
    "favicon.svg": ("favicon.svg", "image/svg+xml"),
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    static = resources.files(__package__) / "static"
    assets: dict[str, Asset] = {}
    for url_name, (file_name, content_type) in _ASSETS.items():
        body = (static / file_name).read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[url_name] = Asset(body, content_type, etag)
    return assets


def is_dashboard_path(path: str) -> bool:
    return path == "/_" or path.startswith(PREFIX)


class Dashboard:
    """ASGI app: the dashboard under ``/_/``, every other request passed on to ``api``."""

    def __init__(self, api: ASGIApp) -> None:
        self.api = api
        self.assets = load_assets()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_dashboard_path(scope["path"]):
            await self.api(scope, receive, send)
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"Method not allowed.", [(b"allow", b"GET, HEAD")], method)
            return
        path: str = scope["path"]
        if path == "/_":  # as PocketBase: the dashboard lives at /_/
            query: bytes = scope.get("query_string", b"")
            location = PREFIX.encode() + (b"?" + query if query else b"")
            await _respond(send, 301, b"", [(b"location", location)], method)
            return
        asset = self.assets.get(path[len(PREFIX):])
        if asset is None:
            await _respond(send, 404, b"Not found.", [], method)
            return
        headers = [(b"etag", asset.etag.encode()), (b"cache-control", b"no-cache")]
        if _header(scope, b"if-none-match") == asset.etag.encode():
            await _respond(send, 304, b"", headers, method, content_type=None)
            return
        await _respond(send, 200, asset.body, headers, method, content_type=asset.content_type.encode())


def with_dashboard(api: ASGIApp) -> ASGIApp:
    return Dashboard(api)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], method: str,
                   *, content_type: bytes | None = b"text/plain; charset=utf-8") -> None:
    all_headers = [*headers, *SECURITY_HEADERS]
    if content_type is not None:
        all_headers.append((b"content-type", content_type))
    if status != 304:
        all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" or status == 304 else body})

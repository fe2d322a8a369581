"""GET /api/docs: a browsable reference of /api/openapi.json (Swagger UI).

Swagger UI's files come from the ``swagger-ui-py`` package, installed as a dependency (nothing is
copied into this repository), and are served by keepbase itself, so the page works offline. Only
the names in ``_ASSETS`` can be served: the URL is looked up in that table, never joined onto a
path. The page has no inline script: ``init.js`` (below) boots the UI, so the CSP allows
same-origin scripts only. Swagger UI's online validator badge is turned off (it would call an
outside server). After "Authorize", the document is fetched again with the token, so a superuser
sees the admin endpoints.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import NotFoundError

CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])

INDEX_HTML = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API reference</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
"""

INIT_JS = b"""'use strict';
// Boots Swagger UI on this server's OpenAPI document (served by keepbase, no outside requests).
(function () {
  function token() {
    var ui = window.ui;
    var auth = ui && ui.getState().getIn(['auth', 'authorized', 'authToken', 'value']);
    return auth || '';
  }
  // The document is made for its caller: fetch it again when the token changes.
  function reloadOnAuth() {
    function again(action) {
      return function (original, system) {
        return function (payload) {
          var result = original(payload);
          setTimeout(function () { system.specActions.download(); }, 0);
          return result;
        };
      };
    }
    return {statePlugins: {auth: {wrapActions: {authorize: again(), logout: again()}}}};
  }
  window.addEventListener('load', function () {
    window.ui = SwaggerUIBundle({
      url: new URL('openapi.json', document.baseURI).href,
      dom_id: '#swagger-ui',
      deepLinking: true,
      validatorUrl: null,
      plugins: [reloadOnAuth],
      requestInterceptor: function (req) {
        if (req.loadSpec && token()) { req.headers.Authorization = token(); }
        return req;
      }
    });
  });
})();
"""

# URL name under /api/docs/ → (file of Swagger UI's package, or None for ours; content type)
_ASSETS: dict[str, tuple[str | None, str]] = {
    "init.js": (None, "text/javascript; charset=utf-8"),
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": ("swagger-ui.css", "text/css; charset=utf-8"),
    "favicon-32x32.png": ("favicon-32x32.png", "image/png"),
}


def swagger_ui_dir() -> Path:
    """Swagger UI's static folder in the installed ``swagger-ui-py`` package (found without
    importing it: its ``__init__`` pulls in Jinja and its web-framework handlers)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@functools.cache
def _asset(name: str) -> tuple[bytes, str, str]:
    """(body, content type, etag) of an asset; read once per process (installed files do not change)."""
    file_name, content_type = _ASSETS[name]
    body = INIT_JS if file_name is None else (swagger_ui_dir() / file_name).read_bytes()
    return body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"content-security-policy": CSP, "referrer-policy": "no-referrer", **(extra or {})}


async def docs_index(request: Request) -> Response:
    return Response(INDEX_HTML, media_type="text/html; charset=utf-8",
                    headers=_headers({"cache-control": "no-cache"}))


async def docs_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _ASSETS:
        raise NotFoundError("File not found.")
    body, content_type, etag = _asset(name)
    headers = _headers({"etag": etag, "cache-control": "no-cache"})
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=content_type, headers=headers)


ROUTES = [
    Route("/api/docs", docs_index, methods=["GET"]),
    Route("/api/docs/{name}", docs_asset, methods=["GET"]),
]

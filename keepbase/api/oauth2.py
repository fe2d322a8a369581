"""OAuth2 routes: ``auth-with-oauth2``, the SDK's ``/api/oauth2-redirect`` and the provider list."""

from __future__ import annotations

import html
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..auth.oauth2_providers import PROVIDERS
from .deps import app_of, read_body, request_info, require_superuser, run
from .record_auth import LOAD_ERROR, _auth_collection, _auth_response
from .responses import json_response

TOPIC = "@oauth2"
_SUCCESS = "../_/#/auth/oauth2-redirect-success"
_FAILURE = "../_/#/auth/oauth2-redirect-failure"
_REDIRECT_FORM_LIMIT = 64 * 1024


async def auth_with_oauth2(request: Request) -> Response:
    c = _auth_collection(request)
    app = app_of(request)
    app.oauth2.enabled_or_403(c)
    body, _ = await read_body(request, app.config.max_body_size, invalid_message=LOAD_ERROR)
    info = await request_info(request)
    info.context = "oauth2"
    record, meta = await run(request, app.oauth2.authenticate, c, body, info)
    return await _auth_response(request, c, record, "oauth2", body.get("mfaId"), meta=meta)


def _has_admin_ui() -> bool:
    try:
        return (resources.files("keepbase") / "admin" / "static" / "index.html").is_file()
    except (OSError, ModuleNotFoundError):
        return False


def _finish(request: Request, ok: bool) -> Response:
    """PocketBase redirects to its dashboard's success/failure page (307 for GET, 303 for POST);
    without a bundled dashboard a short page says the same."""
    if _has_admin_ui():
        return RedirectResponse(_SUCCESS if ok else _FAILURE, status_code=307 if request.method == "GET" else 303)
    text = ("Authentication completed. You can close this window and go back to the app." if ok
            else "Authentication failed. You can close this window and try again.")
    return HTMLResponse(f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>OAuth2</title></head>"
                        f"<body><p>{html.escape(text)}</p></body></html>", status_code=200)


async def oauth2_redirect(request: Request) -> Response:
    """Hand the provider's ``code`` to the realtime client whose id is the ``state``."""
    data: dict[str, Any]
    if request.method == "POST":
        try:
            data, _ = await read_body(request, _REDIRECT_FORM_LIMIT, invalid_message=LOAD_ERROR)
        except Exception:
            return _finish(request, False)
    else:
        data = dict(request.query_params)
    state, code, error = (str(data.get(k) or "") if isinstance(data.get(k, ""), str | int) else ""
                          for k in ("state", "code", "error"))
    if not state:
        return _finish(request, False)
    realtime = app_of(request).realtime
    client = realtime.clients.get(state)
    ip = request.client.host if request.client else ""
    if client is None or client.dropped or TOPIC not in client.subscriptions or client.ip != ip:
        return _finish(request, False)
    message = {"state": state, "code": code}
    if error:
        message["error"] = error
    realtime.send(state, TOPIC, message)
    realtime.clients.set_subscriptions(client, [s for s in client.subscriptions if s != TOPIC])
    return _finish(request, bool(code) and not error)


async def list_providers(request: Request) -> Response:
    await require_superuser(request)
    items = [{"name": name, "displayName": title, "logo": ""} for name, title in PROVIDERS]
    return json_response(items, request.query_params.get("fields", ""), is_list=True)


ROUTES = [
    Route("/api/collections/meta/oauth2-providers", list_providers, methods=["GET"]),
    Route("/api/collections/{collection}/auth-with-oauth2", auth_with_oauth2, methods=["POST"]),
    Route("/api/oauth2-redirect", oauth2_redirect, methods=["GET", "POST"]),
]

"""GET/PATCH /api/settings (superusers only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..store.settings import public_view
from .deps import app_of, read_body, require_superuser, run
from .responses import json_response


async def get_settings(request: Request) -> Response:
    await require_superuser(request)
    app = app_of(request)
    settings = await run(request, app.settings.get)
    return json_response(public_view(settings), request.query_params.get("fields", ""))


async def patch_settings(request: Request) -> Response:
    await require_superuser(request)
    app = app_of(request)
    body, _ = await read_body(request, app.config.max_body_size,
                              invalid_message="An error occurred while loading the submitted data.")
    settings = await run(request, app.settings.patch, body)
    return json_response(public_view(settings), request.query_params.get("fields", ""))


ROUTES = [
    Route("/api/settings", get_settings, methods=["GET"]),
    Route("/api/settings", patch_settings, methods=["PATCH"]),
]

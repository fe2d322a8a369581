"""GET /api/health."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .deps import app_of, current_auth
from .responses import json_response


async def health(request: Request) -> Response:
    data: dict[str, object] = {}
    if request.headers.get("authorization"):
        auth = await current_auth(request)
        if auth is not None and auth.is_superuser:
            client = request.client.host if request.client else ""
            data = {"canBackup": not app_of(request).backups.busy, "realIP": client, "possibleProxyHeader": ""}
    return json_response({"message": "API is healthy.", "code": 200, "data": data},
                         request.query_params.get("fields", ""))


ROUTES = [Route("/api/health", health, methods=["GET"])]

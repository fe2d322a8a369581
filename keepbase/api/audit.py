"""GET /api/audit (superusers only): the sign-in and account audit trail (a keepbase addition)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..store.audit import FILTER_COLUMNS
from .deps import app_of, require_superuser, run
from .params import list_params
from .responses import json_response


async def list_audit(request: Request) -> Response:
    await require_superuser(request)
    params = list_params(request.query_params)
    filters = {k: v for k, v in request.query_params.items() if k in FILTER_COLUMNS}
    app = app_of(request)
    result = await run(request, app.audit.find_entries, params.page, params.per_page, filters)
    return json_response(result, request.query_params.get("fields", ""), is_list=True)


ROUTES = [Route("/api/audit", list_audit, methods=["GET"])]

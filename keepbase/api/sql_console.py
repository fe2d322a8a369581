"""POST /api/sql (superusers only): the SQL console; the work is in ``store.sql_console``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import BadRequestError
from ..store.sql_console import SqlConsole, validate_query
from .deps import app_of, read_body, require_superuser, run
from .responses import json_response

LOAD_ERROR = "An error occurred while loading the submitted data."


async def execute_sql(request: Request) -> Response:
    await require_superuser(request)
    app = app_of(request)
    body, _ = await read_body(request, app.config.max_body_size, invalid_message=LOAD_ERROR)
    if body.get("query") is not None and not isinstance(body.get("query"), str):
        raise BadRequestError(LOAD_ERROR)  # Go's JSON decoding into a string field fails
    query = validate_query(body.get("query"))
    result = await run(request, SqlConsole(app.db, app.collections).execute, query)
    return json_response(result, request.query_params.get("fields", ""))


ROUTES = [Route("/api/sql", execute_sql, methods=["POST"])]

"""POST /api/collections/meta/dry-run-view (superusers only): the live preview of a view query
while it is typed; the work is in ``store.sql_console.preview_view``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import BadRequestError, FieldError, ValidationError
from ..store.sql_console import preview_view
from .deps import app_of, read_body, require_superuser, run
from .responses import json_response

LOAD_ERROR = "An error occurred while loading the submitted data."


async def dry_run_view(request: Request) -> Response:
    await require_superuser(request)
    app = app_of(request)
    body, _ = await read_body(request, app.config.max_body_size, invalid_message=LOAD_ERROR)
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        raise BadRequestError(LOAD_ERROR)
    if not query:
        raise ValidationError("An error occurred while validating the submitted data.", {
            "query": FieldError("validation_required", "Cannot be blank.")})
    result = await run(request, preview_view, app.db, app.collections, query)
    return json_response(result, request.query_params.get("fields", ""))


ROUTES = [Route("/api/collections/meta/dry-run-view", dry_run_view, methods=["POST"])]

"""/api/logs (superusers only): list, view, hourly stats and delete the request logs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import BadRequestError
from ..rules.errors import FilterError
from .deps import app_of, require_superuser, run, run_read
from .params import list_params
from .responses import json_response, no_content


async def list_logs(request: Request) -> Response:
    await require_superuser(request)
    params = list_params(request.query_params)
    result = await run_read(request, app_of(request).logs.find_logs, params)
    return json_response(result, request.query_params.get("fields", ""), is_list=True)


async def logs_stats(request: Request) -> Response:
    await require_superuser(request)
    try:
        stats = await run_read(request, app_of(request).logs.stats, request.query_params.get("filter", ""))
    except FilterError:
        raise BadRequestError("Invalid filter format.") from None
    return json_response(stats, request.query_params.get("fields", ""), is_list=False)


async def view_log(request: Request) -> Response:
    await require_superuser(request)
    item = await run_read(request, app_of(request).logs.find_log_by_id, request.path_params["id"])
    return json_response(item, request.query_params.get("fields", ""))


async def delete_logs(request: Request) -> Response:
    await require_superuser(request)
    await run(request, app_of(request).logs.delete_all)
    return no_content()


ROUTES = [
    Route("/api/logs", list_logs, methods=["GET"]),
    Route("/api/logs", delete_logs, methods=["DELETE"]),
    Route("/api/logs/stats", logs_stats, methods=["GET"]),
    Route("/api/logs/{id}", view_log, methods=["GET"]),
]

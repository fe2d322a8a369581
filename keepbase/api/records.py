"""Records CRUD routes: /api/collections/{collection}/records[/{id}]."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..auth.signup import create_record_enumeration_safe
from ..core.errors import NotFoundError
from ..core.types import RequestInfo
from ..store.expand import expand_records
from ..store.models import Collection
from .deps import app_of, client_ip, close_uploads, read_body, request_info, run_read, run_write
from .params import list_params
from .responses import json_response, no_content

RECORD_BODY_EXTRA = 32 * 1024 * 1024


async def _expand(request: Request, c: Collection, items: list[dict[str, Any]], info: RequestInfo) -> None:
    expand = (request.query_params.getlist("expand") or [""])[0]
    if expand:
        await run_read(request, expand_records, app_of(request).records, c, items, expand, info)


def _collection(request: Request, message: str = "Missing collection context.") -> Collection:
    c = app_of(request).collections.find(request.path_params["collection"])
    if c is None:
        raise NotFoundError(message)
    return c


WRITE_CONTEXT = "Missing or invalid collection context."  # create and update; list/view/delete differ


async def list_records(request: Request) -> Response:
    c = _collection(request)
    app = app_of(request)
    params = list_params(request.query_params)
    info = await request_info(request)
    result = await run_read(request, app.records.list_records, c, params, info)
    await _expand(request, c, result.items, info)
    body = {"items": result.items, "page": result.page, "perPage": result.per_page,
            "totalItems": result.total_items, "totalPages": result.total_pages}
    return json_response(body, request.query_params.get("fields", ""), is_list=True)


async def view_record(request: Request) -> Response:
    c = _collection(request)
    app = app_of(request)
    info = await request_info(request)
    record = await run_read(request, app.records.find_record_by_id, c, request.path_params["id"], info)
    await _expand(request, c, [record], info)
    return json_response(record, request.query_params.get("fields", ""))


def _body_limit(request: Request, c: Collection) -> int:
    limit = app_of(request).config.max_body_size
    for f in c.fields:
        if f.type == "file":
            limit += int(f.options.get("maxSize") or 5 * 1024 * 1024) * int(f.options.get("maxSelect") or 1)
        elif f.type == "editor":
            limit += int(f.options.get("maxSize") or 5 * 1024 * 1024)
        elif f.type == "json":
            limit += int(f.options.get("maxSize") or 1024 * 1024)
    return limit


async def create_record(request: Request) -> Response:
    c = _collection(request, WRITE_CONTEXT)
    app = app_of(request)
    body, from_form = await read_body(request, _body_limit(request, c))
    try:
        info = await request_info(request, body)
        if c.is_auth and c.options.get("enumerationSafe"):
            record = await run_write(request, create_record_enumeration_safe, app.records, app.accounts, c, body,
                                     info, from_form, client_ip(request), slow=True)
        else:
            record = await run_write(request, app.records.create_record, c, body, info, from_form,
                                     slow=c.is_auth and "password" in body)
    finally:
        close_uploads(body)
    await _expand(request, c, [record], info)
    return json_response(record, request.query_params.get("fields", ""))


async def update_record(request: Request) -> Response:
    c = _collection(request, WRITE_CONTEXT)
    app = app_of(request)
    body, from_form = await read_body(request, _body_limit(request, c))
    try:
        info = await request_info(request, body)
        record = await run_write(request, app.records.update_record, c, request.path_params["id"], body, info,
                                 from_form, slow=c.is_auth and ("password" in body or "oldPassword" in body))
    finally:
        close_uploads(body)
    await _expand(request, c, [record], info)
    return json_response(record, request.query_params.get("fields", ""))


async def delete_record(request: Request) -> Response:
    c = _collection(request)
    app = app_of(request)
    info = await request_info(request)
    await run_write(request, app.records.delete_record, c, request.path_params["id"], info)
    return no_content()


ROUTES = [
    Route("/api/collections/{collection}/records", list_records, methods=["GET"]),
    Route("/api/collections/{collection}/records", create_record, methods=["POST"]),
    Route("/api/collections/{collection}/records/{id}", view_record, methods=["GET"]),
    Route("/api/collections/{collection}/records/{id}", update_record, methods=["PATCH"]),
    Route("/api/collections/{collection}/records/{id}", delete_record, methods=["DELETE"]),
]

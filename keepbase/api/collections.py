"""Collections management routes (superusers only)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import REQUIRED, BadRequestError, FieldError, NotFoundError, ValidationError
from ..store.collection_payload import FORMAT_ERROR, FormatError, collection_from_payload
from ..store.models import Collection
from .deps import app_of, read_body, require_superuser, run
from .params import list_params
from .responses import json_response, no_content


def _find(request: Request) -> Collection:
    c = app_of(request).collections.find(request.path_params["collection"])
    if c is None:
        raise NotFoundError()
    return c


_SORTABLE = {"id", "created", "updated", "name", "system", "type"}


def _sort_key(sort: str) -> list[tuple[str, bool]]:
    keys: list[tuple[str, bool]] = []
    for part in sort.split(","):
        part = part.strip()
        if not part:
            continue
        desc = part.startswith("-")
        name = part.lstrip("+-")
        if name not in _SORTABLE:
            raise BadRequestError()
        keys.append((name, desc))
    return keys


async def list_collections(request: Request) -> Response:
    await require_superuser(request)
    app = app_of(request)
    params = list_params(request.query_params)
    items = [c.to_dict() for c in app.collections.all()]
    if params.filter.strip():
        items = app.collection_filter(items, params.filter)
    for name, desc in reversed(_sort_key(params.sort)):
        items.sort(key=lambda d, n=name: (str(d[n]) if not isinstance(d[n], bool) else str(int(d[n]))),  # type: ignore[misc]
                   reverse=desc)
    total = len(items)
    start = params.offset
    page_items = items[start:start + params.per_page]
    body = {"items": page_items, "page": params.page, "perPage": params.per_page,
            "totalItems": -1 if params.skip_total else total,
            "totalPages": -1 if params.skip_total else (total + params.per_page - 1) // params.per_page}
    return json_response(body, request.query_params.get("fields", ""), is_list=True)


async def view_collection(request: Request) -> Response:
    await require_superuser(request)
    return json_response(_find(request).to_dict(), request.query_params.get("fields", ""))


async def _payload(request: Request, message: str) -> dict[str, Any]:
    body, _ = await read_body(request, app_of(request).config.max_body_size, invalid_message=message)
    return body


async def create_collection(request: Request) -> Response:
    await require_superuser(request)
    body = await _payload(request, "Failed to load the collection type data due to invalid formatting.")
    app = app_of(request)
    c = await run(request, app.collections.create, body)
    return json_response(c.to_dict(), request.query_params.get("fields", ""))


async def update_collection(request: Request) -> Response:
    await require_superuser(request)
    c = _find(request)
    body = await _payload(request, FORMAT_ERROR)
    app = app_of(request)
    updated = await run(request, app.collections.update, c.id, body)
    return json_response(updated.to_dict(), request.query_params.get("fields", ""))


async def delete_collection(request: Request) -> Response:
    await require_superuser(request)
    c = _find(request)
    app = app_of(request)
    await run(request, app.collections.delete, c.id)
    return no_content()


async def truncate_collection(request: Request) -> Response:
    await require_superuser(request)
    c = _find(request)
    app = app_of(request)
    await run(request, app.records.truncate, c)
    return no_content()


async def import_collections(request: Request) -> Response:
    await require_superuser(request)
    body = await _payload(request, "An error occurred while loading the submitted data.")
    items = body.get("collections")
    if not items:
        raise ValidationError("An error occurred while validating the submitted data.", {"collections": REQUIRED})
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise BadRequestError("An error occurred while loading the submitted data.")
    for item in items:  # PocketBase decodes every collection before importing any
        try:
            collection_from_payload(item, None, "")
        except FormatError as exc:
            raise ValidationError("Failed to import collections.", {"collections": FieldError(
                "validation_collections_import_failure",
                f"Failed to import the collections configuration. Raw error:\n{exc.detail}")}) from exc
    app = app_of(request)
    await run(request, app.collections.import_collections, items, bool(body.get("deleteMissing")))
    return no_content()


async def scaffolds(request: Request) -> Response:
    await require_superuser(request)
    app = app_of(request)
    return json_response(app.scaffolds(), request.query_params.get("fields", ""))


ROUTES = [
    Route("/api/collections", list_collections, methods=["GET"]),
    Route("/api/collections", create_collection, methods=["POST"]),
    Route("/api/collections/import", import_collections, methods=["PUT"]),
    Route("/api/collections/meta/scaffolds", scaffolds, methods=["GET"]),
    Route("/api/collections/{collection}", view_collection, methods=["GET"]),
    Route("/api/collections/{collection}", update_collection, methods=["PATCH"]),
    Route("/api/collections/{collection}", delete_collection, methods=["DELETE"]),
    Route("/api/collections/{collection}/truncate", truncate_collection, methods=["DELETE"]),
]

"""``POST /api/batch``: several record writes in one transaction (PocketBase's shapes and limits).

Request-level problems are answered before anything runs: 403 when batching is disabled,
413 above ``batch.maxBodySize``, 400 "Failed to read the submitted batch data." for an
unreadable body, 400 "Invalid batch request data." for a failed validation. Then every item
runs through ``store.batch.run_batch`` (one transaction; on SQLite one job of the group-commit
writer, i.e. one savepoint). A failing item rolls everything back and is reported as
``data.requests.<index>`` with its original error envelope under ``response``.

Multipart bodies carry the JSON under ``@jsonPayload`` and files as ``requests.N.field`` (or
``requests[N].field``) parts, which become uploads in item N's body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import (
    REQUIRED,
    ApiError,
    BadRequestError,
    FieldError,
    ForbiddenError,
    ServiceUnavailableError,
    TooManyRequestsError,
)
from ..core.types import RequestInfo
from ..files import UploadedFile, safe_name
from ..store.batch import BatchAction, BatchActionFailed, BatchTimeout, run_batch
from ..store.expand import expand_records
from .deps import app_of, client_ip, close_uploads, read_body, request_info, run_write
from .projection import project
from .rate_limits import LimiterUnavailable, batch_item_limited
from .responses import json_response

READ_ERROR = "Failed to read the submitted batch data."
INVALID = "Invalid batch request data."
FAILED = "Batch transaction failed."
DEFAULT_MAX_BODY = 128 << 20
MAX_URL = 2000
_FILE_KEY = re.compile(r"^requests(?:\.(\d+)\.|\[(\d+)\]\.)(.+)$")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# The only executable actions, matched on "METHOD URL" exactly like PocketBase's ValidBatchActions.
_ACTIONS = [
    (re.compile(r"^PUT /api/collections/(?P<collection>[^/?]+)/records(?P<query>\?.*)?$"), "upsert"),
    (re.compile(r"^POST /api/collections/(?P<collection>[^/?]+)/records(?P<query>\?.*)?$"), "create"),
    (re.compile(r"^PATCH /api/collections/(?P<collection>[^/?]+)/records/(?P<id>[^/?]+)(?P<query>\?.*)?$"),
     "update"),
    (re.compile(r"^DELETE /api/collections/(?P<collection>[^/?]+)/records/(?P<id>[^/?]+)(?P<query>\?.*)?$"),
     "delete"),
]


class BatchResponseError(FieldError):
    """``{code, message, response}``: one failed item, with the error it would have answered."""

    def __init__(self, response: ApiError) -> None:
        super().__init__("batch_request_failed", "Batch request failed.")
        object.__setattr__(self, "response", response)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["response"] = self.response.to_dict()  # type: ignore[attr-defined]
        return out


@dataclass
class _Item:
    method: str
    url: str
    body: dict[str, Any]
    headers: dict[str, str]


def _parse_items(payload: dict[str, Any]) -> list[_Item] | None:
    """The items, or None when the body does not bind (wrong JSON types)."""
    raw = payload.get("requests")
    if raw is None:
        return []
    if not isinstance(raw, list):
        return None
    items = []
    for entry in raw:
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            return None
        method, url = entry.get("method", ""), entry.get("url", "")
        body, headers = entry.get("body") or {}, entry.get("headers") or {}
        if not isinstance(method, str) or not isinstance(url, str) or not isinstance(body, dict):
            return None
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            return None
        items.append(_Item(method, url, body, headers))
    return items


def _validate(items: list[_Item], max_requests: int) -> None:
    if not items:
        raise BadRequestError(INVALID, {"requests": REQUIRED})
    if len(items) > max_requests:
        raise BadRequestError(INVALID, {"requests": FieldError(
            "validation_length_too_long", f"The length must be no more than {max_requests}.",
            {"max": max_requests, "min": 0})})
    errors: dict[str, Any] = {}
    for i, item in enumerate(items):
        e: dict[str, Any] = {}
        if not item.method:
            e["method"] = REQUIRED
        elif item.method not in METHODS:
            e["method"] = FieldError("validation_in_invalid", "Must be a valid value.")
        if not item.url:
            e["url"] = REQUIRED
        elif len(item.url) > MAX_URL:
            e["url"] = FieldError("validation_length_too_long", f"The length must be no more than {MAX_URL}.",
                                  {"max": MAX_URL, "min": 0})
        if e:
            errors[str(i)] = e
    if errors:
        raise BadRequestError(INVALID, {"requests": errors})


def _action(item: _Item, base: RequestInfo) -> tuple[BatchAction, str, str]:
    """(action, fields projection, expand). Sub-requests keep the outer auth; item headers go on top,
    except Authorization, which cannot switch identity inside a batch."""
    full = f"{item.method.upper()} {item.url}"
    headers = dict(base.headers)
    for key, value in item.headers.items():
        name = key.lower().replace("-", "_")
        if name != "authorization":
            headers[name] = value
    query = dict(parse_qsl(urlsplit(item.url).query, keep_blank_values=True))
    for pattern, kind in _ACTIONS:
        m = pattern.match(full)
        if m is None:
            continue
        method = {"create": "POST", "update": "PATCH", "delete": "DELETE", "upsert": "PUT"}[kind]
        info = RequestInfo(auth=base.auth, method=method, context="batch", query=query, headers=headers,
                           body=item.body)
        action = BatchAction(kind, m.group("collection"), info, m.groupdict().get("id") or "", item.body)
        return action, query.get("fields", ""), query.get("expand", "")
    # An unknown action fails only when it is reached, like in PocketBase.
    info = RequestInfo(auth=base.auth, method=item.method, context="batch", query=query, headers=headers)
    return BatchAction("unknown", "", info), "", ""


async def batch(request: Request) -> Response:
    app = app_of(request)
    settings = app.settings.get().get("batch", {})
    max_requests = int(settings.get("maxRequests") or 0)
    if not settings.get("enabled") or max_requests <= 0:
        raise ForbiddenError("Batch requests are not allowed.")
    limit = int(settings.get("maxBodySize") or 0)
    payload, _ = await read_body(request, limit if limit > 0 else DEFAULT_MAX_BODY, invalid_message=READ_ERROR)
    try:
        return await _run(request, payload, settings, max_requests)
    finally:
        close_uploads(payload)


def _attach_files(payload: dict[str, Any], items: list[_Item]) -> None:
    """Multipart file parts ``requests.N.field`` / ``requests[N].field`` go into item N's body
    (as a list, like PocketBase); parts for missing items are ignored."""
    for key, value in payload.items():
        m = _FILE_KEY.match(key)
        values = value if isinstance(value, list) else [value]
        if m is None or not values or not all(isinstance(v, UploadedFile) for v in values):
            continue
        index = int(m.group(1) or m.group(2))
        if index < len(items):
            for upload in values:
                # PocketBase re-submits each part under its already generated safe name, so a
                # batch upload gets a second suffix (alpha.txt -> alpha_<r1>_<r2>.txt); clients
                # may rely on the shape, so keepbase does the same.
                upload.original_name = safe_name(upload.original_name, upload.head)
            items[index].body = {**items[index].body, m.group(3): list(values)}


async def _run(request: Request, payload: dict[str, Any], settings: dict[str, Any], max_requests: int) -> Response:
    app = app_of(request)
    items = _parse_items(payload)
    if items is None:
        raise BadRequestError(READ_ERROR)
    _attach_files(payload, items)
    _validate(items, max_requests)
    base = await request_info(request)
    prepared = [_action(item, base) for item in items]
    actions = [a for a, _f, _e in prepared]
    projections = [f for _a, f, _e in prepared]
    expands = [e for _a, _f, e in prepared]

    def shape(index: int, record: dict[str, Any]) -> Any:
        # runs inside the batch transaction, so expand sees the batch's own earlier writes
        if expands[index]:
            c = app.collections.find(actions[index].collection)
            if c is not None:
                expand_records(app.records, c, [record], expands[index], actions[index].info)
        return project(record, projections[index]) if projections[index] else record

    ip = client_ip(request)

    def admit(action: BatchAction, method: str, path: str) -> None:
        # Each item counts against the rate limits the standalone request would meet (PocketBase
        # runs every item through its routes' middlewares); a limited item fails the whole batch.
        try:
            limited = batch_item_limited(app, ip, base.auth, method, path)
        except LimiterUnavailable as exc:
            raise ServiceUnavailableError() from exc
        if limited:
            raise TooManyRequestsError()

    def job() -> list[Any]:
        return run_batch(app.db, app.records, actions, float(settings.get("timeout") or 0), shape, admit)

    slow = any(a.body and ("password" in a.body or "oldPassword" in a.body) for a in actions)
    try:
        results = await run_write(request, job, slow=slow)
    except BatchActionFailed as exc:
        if isinstance(exc.error, ServiceUnavailableError):  # the counters' store is down: the whole batch
            raise exc.error from exc
        raise BadRequestError(FAILED, {"requests": {str(exc.index): BatchResponseError(exc.error)}}) from exc
    except BatchTimeout as exc:
        raise BadRequestError(FAILED) from exc
    return json_response([{"body": r.body, "status": r.status} for r in results])


ROUTES = [Route("/api/batch", batch, methods=["POST"])]

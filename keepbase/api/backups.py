"""/api/backups: list, create, upload, download (superuser *file* token), delete, restore.

Superusers only, except the download, which takes ``?token=<superuser file token>`` instead of
an Authorization header (so a browser can follow a plain link), as in PocketBase.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..auth.tokens import find_auth_record_by_token
from ..core.errors import BadRequestError, ForbiddenError
from ..files import UploadedFile
from ..ops.backups import BUSY
from .deps import UNSUPPORTED, app_of, close_uploads, read_body, require_superuser, run
from .files import _serve  # the one implementation of ranges, caching and download headers
from .responses import json_response, no_content

LOAD_FAILED = "An error occurred while loading the submitted data."
# PocketBase lifts its body limit for uploads (BodyLimit(0)); archives are spooled to disk
UPLOAD_LIMIT = 1 << 40


async def list_backups(request: Request) -> Response:
    await require_superuser(request)
    backups = await run(request, app_of(request).backups.list_backups)
    return json_response([b.to_dict() for b in backups], request.query_params.get("fields", ""), is_list=True)


async def create_backup(request: Request) -> Response:
    await require_superuser(request)
    app = app_of(request)
    if app.backups.busy:
        raise BadRequestError(BUSY)
    try:
        body, from_form = await read_body(request, app.config.max_body_size, invalid_message=LOAD_FAILED)
    except BadRequestError as exc:
        if exc.message == UNSUPPORTED:
            raise BadRequestError(LOAD_FAILED) from exc
        raise
    close_uploads(body)
    name: Any = body.get("name", "")
    if name is None:
        name = ""
    elif from_form and isinstance(name, bool | int | float):  # a form value is always text
        name = ("true" if name else "false") if isinstance(name, bool) else str(name)
    if not isinstance(name, str):
        raise BadRequestError(LOAD_FAILED)
    await run(request, app.backups.create_backup, name)
    return no_content()


async def upload_backup(request: Request) -> Response:
    await require_superuser(request)
    app = app_of(request)
    try:
        body, _ = await read_body(request, UPLOAD_LIMIT, invalid_message=LOAD_FAILED)
    except BadRequestError as exc:
        if exc.message == UNSUPPORTED:
            body = {}
        else:
            raise
    try:
        value = body.get("file")
        first = value[0] if isinstance(value, list) and value else value
        upload = first if isinstance(first, UploadedFile) else None
        await run(request, app.backups.upload_backup, upload)
    finally:
        close_uploads(body)
    return no_content()


async def download_backup(request: Request) -> Response:
    app = app_of(request)
    token = request.query_params.get("token", "")
    found = await run(request, find_auth_record_by_token, app.db, app.collections, token, "file") if token else None
    if found is None or found[0].name != "_superusers":
        raise ForbiddenError("Insufficient permissions to access the resource.")
    dl = await run(request, app.backups.find_download, request.path_params["key"])
    return _serve(request, dl, True)


async def delete_backup(request: Request) -> Response:
    await require_superuser(request)
    await run(request, app_of(request).backups.delete_backup, request.path_params["key"])
    return no_content()


async def restore_backup(request: Request) -> Response:
    await require_superuser(request)
    await run(request, app_of(request).backups.restore_backup, request.path_params["key"])
    return no_content()


ROUTES = [
    Route("/api/backups", list_backups, methods=["GET"]),
    Route("/api/backups", create_backup, methods=["POST"]),
    Route("/api/backups/upload", upload_backup, methods=["POST"]),
    Route("/api/backups/{key}", download_backup, methods=["GET", "HEAD"]),
    Route("/api/backups/{key}", delete_backup, methods=["DELETE"]),
    Route("/api/backups/{key}/restore", restore_backup, methods=["POST"]),
]

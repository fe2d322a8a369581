"""File routes: ``GET /api/files/{collection}/{recordId}/{filename}`` and ``POST /api/files/token``.

Downloads always carry ``X-Content-Type-Options: nosniff`` (from the headers middleware) and
PocketBase's sandboxing CSP; anything outside the short inline list (HTML, SVG, XML, ...) is
sent as an attachment, so an uploaded page can never run in the API's origin.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.utils import formatdate, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..auth.tokens import find_auth_record_by_token, new_record_token
from ..core.errors import NotFoundError
from ..core.types import AuthInfo
from ..store.file_downloads import Download, find_download
from .deps import app_of, require_auth, run
from .responses import json_response

INLINE_TYPES = frozenset({
    "image/png", "image/jpg", "image/jpeg", "image/gif", "image/webp", "image/x-icon", "image/bmp",
    "video/webm", "video/mp4", "video/3gpp", "video/quicktime", "video/x-ms-wmv", "audio/basic", "audio/aiff",
    "audio/mpeg", "audio/midi", "audio/mp3", "audio/wave", "audio/wav", "audio/x-wav", "audio/x-mpeg",
    "audio/x-m4a", "audio/aac", "application/pdf", "application/x-pdf",
})
CSP = "default-src 'none'; media-src 'self'; style-src 'unsafe-inline'; sandbox"
CACHE_CONTROL = "max-age=2592000, stale-while-revalidate=86400"
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # Go's strconv.ParseBool
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _file_auth(request: Request, token: str) -> AuthInfo | None:
    app = app_of(request)
    found = find_auth_record_by_token(app.db, app.collections, token, "file")
    if found is None:
        return None
    c, record, _claims = found
    return AuthInfo(collection_id=c.id, collection_name=c.name, record=record)


async def download(request: Request) -> Response:
    app = app_of(request)
    c = app.collections.find(request.path_params["collection"])
    if c is None:
        raise NotFoundError("Missing or invalid collection context.")
    q = request.query_params
    token = q.get("token", "")
    auth = await run(request, _file_auth, request, token) if token else None
    dl = await run(request, find_download, app.records, app.storage(), c, request.path_params["id"],
                   request.path_params["filename"], q.get("thumb", ""), auth)
    return _serve(request, dl, q.get("download", "") in _TRUE)


def _serve(request: Request, dl: Download, attachment: bool) -> Response:
    disposition = "attachment" if attachment or dl.content_type.split(";")[0] not in INLINE_TYPES else "inline"
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": CACHE_CONTROL,
        "Content-Disposition": f'{disposition}; filename="{dl.name}"',
        "Content-Security-Policy": CSP,
        "Last-Modified": formatdate(int(dl.stat.modified), usegmt=True),
    }
    since = request.headers.get("if-modified-since")
    if since:
        try:
            if parsedate_to_datetime(since).timestamp() >= int(dl.stat.modified):
                return Response(status_code=304, headers=headers)
        except (TypeError, ValueError):
            pass
    size = dl.stat.size
    start, end, status = 0, size - 1, 200
    rng = _RANGE_RE.match(request.headers.get("range", "").strip())
    if rng and (rng.group(1) or rng.group(2)):
        if rng.group(1):
            start = int(rng.group(1))
            end = min(int(rng.group(2)), size - 1) if rng.group(2) else size - 1
        else:
            start = max(0, size - int(rng.group(2)))
        if start > end or start >= size:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(status_code=416, headers=headers)
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        status = 206
    headers["Content-Length"] = str(end - start + 1 if size else 0)
    if request.method == "HEAD" or size == 0:
        return Response(status_code=status, headers=headers, media_type=dl.content_type)
    chunks: Iterator[bytes] = dl.storage.iter_range(dl.key, start, end)
    return StreamingResponse(chunks, status_code=status, headers=headers, media_type=dl.content_type)


async def file_token(request: Request) -> Response:
    auth = await require_auth(request)
    c = app_of(request).collections.find(auth.collection_id)
    if c is None:
        raise NotFoundError()
    return json_response({"token": new_record_token(c, auth.record, "file")})


ROUTES = [
    Route("/api/files/token", file_token, methods=["POST"]),
    Route("/api/files/{collection}/{id}/{filename}", download, methods=["GET", "HEAD"]),
]

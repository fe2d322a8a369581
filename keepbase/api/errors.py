"""The only place that renders PocketBase's error envelope."""

from __future__ import annotations

import logging

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..core.errors import ApiError

log = logging.getLogger("keepbase.api")


def error_response(err: ApiError) -> Response:
    response = Response(orjson.dumps(err.to_dict()), status_code=err.status, media_type="application/json")
    retry_after = getattr(err, "retry_after", None)  # e.g. DatabaseUnavailableError: when to try again
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


async def api_error_handler(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ApiError):
        return error_response(exc)
    # PocketBase answers any non-API error with a generic 400 (the cause only goes to the log);
    # so do we: a bug or a hook failure never leaks a traceback, and never looks like success.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(ApiError(400))

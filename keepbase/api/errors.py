"""The only place that renders PocketBase's error envelope — for every request, whatever fails.

Which status an exception becomes (details only ever go to the log)::

    ApiError (and subclasses)           its own status, message and data
    SQLAlchemyError (a query failed)    400 "Something went wrong while processing your request."
    raised in user code (a hook, a      400  — PocketBase answers any *returned* error with a
      custom route, embedding code)           generic 400, and a Python hook raising is the
                                              counterpart of a Go/JS hook returning an error
    anything else (a bug in keepbase)   500 "Something went wrong while processing your request."
                                              — PocketBase's answer to a panic

``EnvelopeGuard`` is the outermost ASGI layer of the API: an exception raised anywhere inside it
(a middleware, a streaming or file response before its headers are sent) still becomes the
envelope. Once a response has started, headers cannot be taken back: the guard logs the failure
and returns, and the server ends the connection, so a client sees a truncated response (never a
traceback and never a complete-looking wrong one).
"""

from __future__ import annotations

import logging
import os
import site
import sysconfig
from pathlib import Path
from types import TracebackType

import orjson
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.errors import ApiError

log = logging.getLogger("keepbase.api")

_KEEPBASE_ROOT = str(Path(__file__).resolve().parent.parent) + os.sep
_LOGGED = "_keepbase_logged"


def _library_roots() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    try:
        paths.update(site.getsitepackages())
    except AttributeError:  # pragma: no cover - virtualenvs without site.getsitepackages
        pass
    return tuple(str(Path(p).resolve()) + os.sep for p in paths if p)


_LIBRARIES = _library_roots()


def _in_user_code(tb: TracebackType | None) -> bool:
    """Whether the traceback passes through code that is neither keepbase nor an installed
    library: a hooks file, a custom route, the code that embeds keepbase."""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith("<"):
            path = str(Path(filename).resolve())
            if not path.startswith(_KEEPBASE_ROOT) and not path.startswith(_LIBRARIES):
                return True
        tb = tb.tb_next
    return False


def error_for(exc: BaseException) -> ApiError:
    """The ApiError an exception is answered with (see the module docstring)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, SQLAlchemyError) or _in_user_code(exc.__traceback__):
        return ApiError(400)
    return ApiError(500)


def error_response(err: ApiError) -> Response:
    response = Response(orjson.dumps(err.to_dict()), status_code=err.status, media_type="application/json")
    retry_after = getattr(err, "retry_after", None)  # e.g. DatabaseUnavailableError: when to try again
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _log_failure(method: str, path: str, exc: BaseException, status: int) -> None:
    kind = "unexpected error (a bug)" if status >= 500 else "error"
    log.error("%s on %s %s", kind, method, path, exc_info=exc)
    try:
        setattr(exc, _LOGGED, True)
    except AttributeError:  # pragma: no cover - exceptions without a __dict__
        pass


async def api_error_handler(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ApiError):
        return error_response(exc)
    err = error_for(exc)
    _log_failure(request.method, request.url.path, exc, err.status)
    return error_response(err)


class EnvelopeGuard:
    """The outermost layer: no exception leaves the API as a reset connection or a traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = finished = False

        async def watch(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            method, path = scope.get("method", ""), scope.get("path", "")
            if finished:  # answered already (Starlette sends the envelope, then re-raises)
                if not getattr(exc, _LOGGED, False):
                    log.error("error after the response to %s %s was sent", method, path, exc_info=exc)
                return
            if started:
                log.error("response to %s %s failed after it started; closing the connection", method, path,
                          exc_info=exc)
                return
            err = error_for(exc)
            if not getattr(exc, _LOGGED, False):
                _log_failure(method, path, exc, err.status)
            body = orjson.dumps(err.to_dict())
            await send({"type": "http.response.start", "status": err.status, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff")]})
            await send({"type": "http.response.body", "body": body})

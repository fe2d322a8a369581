"""Request → what services need: the App, auth, RequestInfo, parsed bodies within size limits."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
import orjson
from starlette.formparsers import FormParser, MultiPartParser
from starlette.requests import Request

from ..core.errors import ApiError, BadRequestError, ForbiddenError, TooLargeError, UnauthorizedError
from ..core.types import AuthInfo, RequestInfo
from ..files import UploadedFile
from .client_ip import client_ip as real_ip

if TYPE_CHECKING:
    from ..app import App

T = TypeVar("T")
UNSUPPORTED = "Unsupported Content-Type."
_NUM_RE = re.compile(r"^-?(0|[1-9]\d*)(\.\d*[1-9])?$")


def app_of(request: Request) -> App:
    app = request.scope.get("kb_app")  # set by api.rate_limits: cheaper than Starlette's State lookup
    if app is not None:
        return app  # type: ignore[no-any-return]
    return request.app.state.keepbase  # type: ignore[no-any-return]


async def run(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking service call off the event loop."""
    return await anyio.to_thread.run_sync(lambda: fn(*args), limiter=app_of(request).limiter)


async def run_write(request: Request, fn: Callable[..., T], *args: Any, slow: bool = False) -> T:
    """Run a write service call. On SQLite it joins the group-commit queue of the single
    writer (one fsync for all concurrent writes); ``slow`` calls (password hashing) and
    PostgreSQL writes go to worker threads instead."""
    app = app_of(request)
    if app.db.is_sqlite and not slow and app.group_writer is not None:
        return await asyncio.wrap_future(app.group_writer.submit(lambda: fn(*args)))
    return await anyio.to_thread.run_sync(lambda: fn(*args), limiter=app.limiter)


async def run_read(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """Run a read-only service call. On SQLite a read is a few microseconds of local work
    (WAL readers never wait for the writer), so it runs inline: a thread hop costs more than
    the query. On PostgreSQL it may wait on the network, so it goes to a worker thread."""
    app = app_of(request)
    if app.db.is_sqlite:
        return fn(*args)
    return await anyio.to_thread.run_sync(lambda: fn(*args), limiter=app.limiter)


async def current_auth(request: Request) -> AuthInfo | None:
    cached = request.scope.get("kb_auth", False)
    if cached is not False:
        return cached  # type: ignore[no-any-return]
    header = request.headers.get("authorization", "")
    auth = None
    if header:
        app = app_of(request)
        auth = await run(request, app.auth_from_token, header)
    request.scope["kb_auth"] = auth
    return auth


async def require_auth(request: Request) -> AuthInfo:
    """The signed-in record of the request; 401 envelope without a valid token."""
    auth = await current_auth(request)
    if auth is None:
        raise UnauthorizedError("The request requires valid record authorization token.")
    return auth


async def require_superuser(request: Request) -> AuthInfo:
    auth = await current_auth(request)
    if auth is None:
        raise UnauthorizedError("The request requires valid record authorization token.")
    if not auth.is_superuser:
        raise ForbiddenError("The authorized record is not allowed to perform this action.")
    return auth


async def request_info(request: Request, body: dict[str, Any] | None = None) -> RequestInfo:
    return RequestInfo(
        auth=await current_auth(request),
        method=request.method,
        query={k: v for k, v in request.query_params.items()},
        headers={k.lower().replace("-", "_"): v for k, v in request.headers.items()},
        body=body or {},
        ip=client_ip(request),
    )


def client_ip(request: Request) -> str:
    """PocketBase's RealIP: the configured ``trustedProxy.headers`` first (the last header value,
    its rightmost valid IP unless ``useLeftmostIP``), else the socket's peer address. Proxy headers
    are ignored unless configured, so a client cannot choose its own address."""
    ip = request.scope.get("kb_client_ip")  # worked out once per request by api.rate_limits
    if isinstance(ip, str):
        return ip
    return real_ip(request.scope, app_of(request).settings.get())


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLargeError()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError()
        chunks.append(chunk)
    return b"".join(chunks)


def infer_form_value(value: str) -> Any:
    """PocketBase's multipart inference: bools and exactly-round-tripping numbers."""
    if value in ("true", "false"):
        return value == "true"
    if _NUM_RE.match(value):
        try:
            n = float(value)
        except ValueError:
            return value
        if math.isfinite(n):
            return int(n) if n.is_integer() and "." not in value else n
    return value


_KEY_END = re.compile(rb'"[ \t\r\n]*:')


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice (PocketBase rejects it: 400)."""


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise DuplicateKeyError("duplicate key")
    return out


def _has_fewer_keys(value: Any, limit: int) -> bool:
    """Whether the objects in ``value`` hold fewer than ``limit`` keys in all (stops at ``limit``)."""
    count, stack = 0, [value]
    pop, push = stack.pop, stack.append
    while stack:
        v = pop()
        if type(v) is dict:
            count += len(v)
            if count >= limit:
                return False
            v = v.values()
        for x in v:
            t = type(x)
            if t is dict or t is list:
                push(x)
    return True


def loads_json(raw: bytes | str) -> Any:
    """``orjson.loads``, but a repeated key in any object is an error (ValueError), as in
    PocketBase. Every key in the text ends with ``"`` + optional blanks + ``:``; when the parsed
    objects hold as many keys as the text has such endings there can be no duplicate, which is
    the common case and costs one regex scan (plus a walk when objects nest). Otherwise (a
    duplicate, or ``":`` inside a string value) the stdlib parser checks each object's pairs."""
    data = raw.encode() if isinstance(raw, str) else raw
    value = orjson.loads(data)
    if type(value) is not dict and type(value) is not list:
        return value
    endings = len(_KEY_END.findall(data))
    if endings == (len(value) if type(value) is dict else 0) or not _has_fewer_keys(value, endings):
        return value
    json.loads(data, object_pairs_hook=_reject_duplicates)
    return value


async def read_body(request: Request, limit: int, *, invalid_message: str = "") -> tuple[dict[str, Any], bool]:
    """(body, from_form). JSON objects, multipart and urlencoded forms; 400/413 otherwise.
    Multipart file parts come back as ``files.UploadedFile`` values (see ``close_uploads``)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("", "application/json"):
        raw = await read_limited(request, limit)
        if not raw.strip():
            return {}, False
        try:
            body = loads_json(raw)
        except ValueError:
            raise BadRequestError(invalid_message) from None
        if body is None:  # Go's json.Unmarshal of `null` into a map leaves it empty
            return {}, False
        if not isinstance(body, dict):
            raise BadRequestError(invalid_message)
        return body, False
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await _read_form(request, ctype, limit, invalid_message), True
    raise BadRequestError(UNSUPPORTED)


# Hard bounds on a form, whatever the body limit: parsing thousands of tiny parts costs far more
# than their bytes suggest (PocketBase has no such bound; docs/compatibility.md).
MAX_FORM_FILES = 1000
MAX_FORM_FIELDS = 1000


async def _limited_stream(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError()
        yield chunk


async def _read_form(request: Request, ctype: str, limit: int, invalid_message: str) -> dict[str, Any]:
    """A multipart or urlencoded form. File parts are spooled to temporary files (never more
    than ``limit`` bytes read in all) and come back as ``files.UploadedFile`` values, which the
    caller must release with ``close_uploads``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLargeError()
    stream = _limited_stream(request, limit)
    try:
        if ctype == "multipart/form-data":
            form = await MultiPartParser(request.headers, stream, max_files=MAX_FORM_FILES,
                                         max_fields=MAX_FORM_FIELDS, max_part_size=limit).parse()
        else:
            form = await FormParser(request.headers, stream, max_fields=MAX_FORM_FIELDS, max_part_size=limit).parse()
    except ApiError:
        raise
    except Exception as exc:  # malformed form, too many parts, a text part above its limit
        raise BadRequestError(invalid_message) from exc
    out: dict[str, Any] = {}
    try:
        for key in form.keys():
            values: list[Any] = []
            for v in form.getlist(key):
                if isinstance(v, str):
                    values.append(infer_form_value(v))
                elif v.filename or v.size:  # an empty file input sends filename="" and no bytes
                    values.append(UploadedFile(v.filename or "", v.file, int(v.size or 0)))
                else:
                    v.file.close()
            if key == "@jsonPayload" or not values:
                continue
            out[key] = values[0] if len(values) == 1 else values
        payload = form.get("@jsonPayload")
        if isinstance(payload, str):
            try:
                extra = loads_json(payload)
            except ValueError:
                raise BadRequestError(invalid_message) from None
            if not isinstance(extra, dict):
                raise BadRequestError(invalid_message)
            out.update(extra)
    except BaseException:
        await form.close()
        raise
    return out


def close_uploads(body: dict[str, Any]) -> None:
    """Release the temporary files of the uploads in a body from ``read_body``."""
    for value in body.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, UploadedFile):
                item.close()


def auth_collection(request: Request) -> Any:
    """The auth collection named in the path; 404 with PocketBase's message otherwise."""
    from ..core.errors import NotFoundError

    c = app_of(request).collections.find(request.path_params["collection"])
    if c is None:
        raise NotFoundError("Missing or invalid collection context.")
    if not c.is_auth:
        raise NotFoundError("Missing or invalid auth collection context.")
    return c

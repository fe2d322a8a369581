"""Realtime routes: ``GET /api/realtime`` (the SSE stream) and ``POST /api/realtime`` (subscriptions)."""

from __future__ import annotations

from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..core.errors import (
    ApiError,
    BadRequestError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from ..realtime.service import SHUTDOWN, Realtime
from ..realtime.sse import frame
from ..realtime.subscriptions import MAX_SUBSCRIPTIONS, MAX_TOPIC_LENGTH, Client, TooManyClients
from .deps import app_of, read_body, run
from .responses import no_content

_SSE_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"content-type", b"text/event-stream"),
    (b"x-accel-buffering", b"no"),
]
_SUBSCRIBE_BODY_LIMIT = 4 * 1024 * 1024


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


class EventStream:
    """The SSE response of one client: PB_CONNECT first, then whatever its queue receives."""

    def __init__(self, realtime: Realtime, client: Client) -> None:
        self.realtime = realtime
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self.client
        finished = False
        try:
            with anyio.CancelScope() as cancel:
                client.cancel = cancel
                if client.dropped:  # dropped before the stream started
                    cancel.cancel()
                await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
                connect = frame(client.id, "PB_CONNECT", b'{"clientId":"' + client.id.encode() + b'"}')
                await send({"type": "http.response.body", "body": connect, "more_body": True})

                async def write(data: bytes) -> None:
                    await send({"type": "http.response.body", "body": data, "more_body": True})

                async with anyio.create_task_group() as tg:
                    async def watch_disconnect() -> None:
                        while (await receive())["type"] != "http.disconnect":
                            pass
                        cancel.cancel()

                    tg.start_soon(watch_disconnect)
                    await self.realtime.pump(client, write)
                    finished = True
                    tg.cancel_scope.cancel()
            if finished or client.dropped == SHUTDOWN:  # idle timeout, lifetime, shutdown: end cleanly
                with anyio.move_on_after(1):  # a peer that reads nothing does not hold the shutdown
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the peer went away mid-write
            pass
        finally:
            client.cancel = None
            self.realtime.disconnect(client)


async def connect(request: Request) -> Any:
    app = app_of(request)
    realtime: Realtime = app.realtime
    if realtime.closing:
        raise ApiError(503, "The server is shutting down, try again later.")
    await realtime.ensure_started()
    try:
        client = realtime.connect(_ip(request))
    except TooManyClients:
        raise ApiError(503, "Too many realtime connections, try again later.") from None
    return EventStream(realtime, client)


async def set_subscriptions(request: Request) -> Response:
    app = app_of(request)
    realtime: Realtime = app.realtime
    body, _ = await read_body(request, _SUBSCRIBE_BODY_LIMIT)
    client_id = body.get("clientId")
    subs = body.get("subscriptions")
    errors: dict[str, Any] = {}
    if not isinstance(client_id, str) or not client_id:
        errors["clientId"] = FieldError("validation_required", "Cannot be blank.")
    if subs is None:
        subs = []
    if not isinstance(subs, list) or not all(isinstance(s, str) for s in subs):
        errors["subscriptions"] = FieldError("validation_invalid_value", "Invalid value.")
    elif len(subs) > MAX_SUBSCRIPTIONS:
        errors["subscriptions"] = FieldError("validation_length_too_long",
                                             f"The length must be no more than {MAX_SUBSCRIPTIONS}.",
                                             {"max": MAX_SUBSCRIPTIONS, "min": 0})
    else:
        too_long = {str(i): FieldError("validation_length_too_long",
                                       f"The length must be no more than {MAX_TOPIC_LENGTH}.", {"max": MAX_TOPIC_LENGTH, "min": 0})
                    for i, s in enumerate(subs) if len(s) > MAX_TOPIC_LENGTH or "\n" in s or "\r" in s}
        if too_long:
            errors["subscriptions"] = too_long
    if errors:
        raise ValidationError(BadRequestError().message, errors)
    client = realtime.clients.get(str(client_id))
    if client is None or client.dropped:
        raise NotFoundError("Missing or invalid client id.")
    if client.ip != _ip(request):
        raise BadRequestError("Invalid realtime client.")
    header = request.headers.get("authorization", "")
    auth = await run(request, app.auth_from_token, header) if header else None
    if client.auth is not None and (
            auth is None or (auth.collection_id, auth.id) != (client.auth.collection_id, client.auth.id)):
        raise ForbiddenError("The current and the previous request authorization don't match.")
    if auth is not None:
        client.auth, client.token = auth, header
    realtime.clients.set_subscriptions(client, list(subs))
    return no_content()


ROUTES = [
    Route("/api/realtime", connect, methods=["GET"]),
    Route("/api/realtime", set_subscriptions, methods=["POST"]),
]

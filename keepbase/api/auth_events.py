"""The ``record_auth`` hook around a successful sign-in (see ``App.on_record_auth``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..core.events import RecordAuthEvent
from ..store.models import Collection
from .deps import app_of, request_info, run


async def record_auth_event(request: Request, c: Collection, view: dict[str, Any], token: str,
                            method: str) -> tuple[dict[str, Any], str]:
    """Run the ``record_auth`` handlers (in a worker thread: they may do I/O). They may change the
    record view or the token, or raise an ``ApiError`` to refuse the sign-in."""
    app = app_of(request)
    if not len(app.hooks.record_auth):
        return view, token
    info = await request_info(request)
    info.context = method
    event = RecordAuthEvent(collection=c, record=view, token=token, method=method, info=info)
    await run(request, app.hooks.record_auth.trigger, event, lambda e: None)
    return event.record, event.token

"""The MFA step of every sign-in response: ``401 {"mfaId": ...}`` or go on to the auth response."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..store.models import Collection
from .deps import app_of, request_info, run


async def mfa_challenge(request: Request, c: Collection, record: dict[str, Any], method: str,
                        body_mfa_id: Any = "") -> Response | None:
    """None when the sign-in may complete; otherwise PocketBase's 401 with the new ``mfaId``.

    The ``mfaId`` of a pending session comes from ``?mfaId=`` or else the body (as PocketBase).
    """
    app = app_of(request)
    mfa_id = request.query_params.get("mfaId") or (body_mfa_id if isinstance(body_mfa_id, str) else "")
    info = await request_info(request)
    info.context = method
    new_id = await run(request, app.mfa.check, c, record, method, mfa_id, info)
    if new_id:
        return Response(orjson.dumps({"mfaId": new_id}), status_code=401, media_type="application/json")
    return None

"""OTP routes: ``request-otp`` and ``auth-with-otp`` (PocketBase 0.40, see docs 05)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..auth.timing import response_floor
from ..core.errors import ApiError
from .deps import app_of, client_ip, read_body, run
from .record_auth import LOAD_ERROR, _auth_collection, _auth_response
from .responses import json_response


async def request_otp(request: Request) -> Response:
    c = _auth_collection(request)
    app = app_of(request)
    app.otp.enabled_or_403(c)
    async with response_floor():  # same answer time for known and unknown emails (auth.timing)
        body, _ = await read_body(request, app.config.max_body_size, invalid_message=LOAD_ERROR)
        otp_id = await run(request, app.otp.request_otp, c, body.get("email"))
    return json_response({"otpId": otp_id})


async def auth_with_otp(request: Request) -> Response:
    c = _auth_collection(request)
    app = app_of(request)
    app.otp.enabled_or_403(c)
    body, _ = await read_body(request, app.config.max_body_size, invalid_message=LOAD_ERROR)
    ip = client_ip(request)
    try:
        record = await run(request, app.otp.authenticate, c, body.get("otpId"), body.get("password"))
    except ApiError as exc:  # every sign-in attempt is audited, never with the code itself
        await run(request, app.accounts.audit_sign_in, c, "otp", None, ip, "", exc.message)
        raise
    await run(request, app.accounts.audit_sign_in, c, "otp", record, ip)
    return await _auth_response(request, c, record, "otp", body.get("mfaId"))


ROUTES = [
    Route("/api/collections/{collection}/request-otp", request_otp, methods=["POST"]),
    Route("/api/collections/{collection}/auth-with-otp", auth_with_otp, methods=["POST"]),
]

"""TOTP routes (keepbase addition, not in PocketBase; see docs/compatibility.md "Additions").

* ``GET    /api/collections/{c}/totp``          → ``{"enabled", "recoveryCodes"}`` (count left)
* ``POST   /api/collections/{c}/totp/enroll``   → ``{"secret", "uri"}`` (pending until confirmed)
* ``POST   /api/collections/{c}/totp/confirm``  ``{"code"}`` → ``{"recoveryCodes": [10 codes]}``, shown once
* ``DELETE /api/collections/{c}/totp``          ``{"code"}`` (TOTP or recovery code) → 204;
  a superuser may pass ``{"recordId"}`` instead
* ``POST   /api/collections/{c}/auth-with-totp`` ``{"mfaId", "code"}`` → the second MFA step

The first four need an auth token of a record of ``{c}``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import (
    REQUIRED,
    BadRequestError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    ValidationError,
)
from ..core.types import AuthInfo
from ..store.models import Collection
from .deps import app_of, current_auth, read_body, run
from .record_auth import LOAD_ERROR, _auth_collection, _auth_response
from .responses import json_response, no_content

VALIDATE_ERROR = "An error occurred while validating the submitted data."
INVALID_CODE = FieldError("validation_invalid_code", "Invalid or expired code.")


async def _owner(request: Request, c: Collection) -> AuthInfo:
    auth = await current_auth(request)
    if auth is None:
        raise UnauthorizedError("The request requires valid record authorization token.")
    if auth.collection_id != c.id:
        raise ForbiddenError(f"The request requires auth record from {auth.collection_name} collection.")
    return auth


def _code(body: dict[str, Any]) -> str:
    code = body.get("code")
    if not code or not isinstance(code, str) or len(code) > 64:
        raise ValidationError(VALIDATE_ERROR, {"code": REQUIRED})
    return code


async def totp_status(request: Request) -> Response:
    c = _auth_collection(request)
    auth = await _owner(request, c)
    return json_response(await run(request, app_of(request).totp.status, c, auth.id))


async def totp_enroll(request: Request) -> Response:
    c = _auth_collection(request)
    auth = await _owner(request, c)
    app = app_of(request)
    issuer = str(app.settings.get().get("meta", {}).get("appName") or "keepbase")
    account = str(auth.record.get("email") or auth.id)
    return json_response(await run(request, app.totp.enroll, c, auth.id, account, issuer))


async def totp_confirm(request: Request) -> Response:
    c = _auth_collection(request)
    auth = await _owner(request, c)
    app = app_of(request)
    body, _ = await read_body(request, app.config.max_body_size, invalid_message=LOAD_ERROR)
    codes = await run(request, app.totp.confirm, c, auth.id, _code(body))
    if codes is None:
        raise ValidationError(VALIDATE_ERROR, {"code": INVALID_CODE})
    return json_response({"recoveryCodes": codes})


async def totp_disable(request: Request) -> Response:
    c = _auth_collection(request)
    app = app_of(request)
    auth = await current_auth(request)
    if auth is None:
        raise UnauthorizedError("The request requires valid record authorization token.")
    body, _ = await read_body(request, app.config.max_body_size, invalid_message=LOAD_ERROR)
    if auth.is_superuser and body.get("recordId"):
        record_id = str(body["recordId"])
        if not await run(request, app.totp.is_enabled, c, record_id):
            raise NotFoundError()
    else:
        auth = await _owner(request, c)
        record_id = auth.id
        code = _code(body)
        if not await run(request, app.totp.is_enabled, c, record_id):
            raise BadRequestError("TOTP is not enabled for this account.")
        if not await run(request, app.totp.verify_code, c, record_id, code):
            raise ValidationError(VALIDATE_ERROR, {"code": INVALID_CODE})
    await run(request, app.totp.disable, c, record_id)
    return no_content()


async def auth_with_totp(request: Request) -> Response:
    c = _auth_collection(request)
    app = app_of(request)
    body, _ = await read_body(request, app.config.max_body_size, invalid_message=LOAD_ERROR)
    mfa_id = request.query_params.get("mfaId") or body.get("mfaId")
    errors: dict[str, Any] = {}
    if not mfa_id or not isinstance(mfa_id, str):
        errors["mfaId"] = REQUIRED
    code = body.get("code")
    if not code or not isinstance(code, str) or len(code) > 64:
        errors["code"] = REQUIRED
    if errors:
        raise ValidationError(VALIDATE_ERROR, errors)
    assert isinstance(mfa_id, str) and isinstance(code, str)
    record = await run(request, app.mfa.authenticate_totp, c, mfa_id, code)
    return await _auth_response(request, c, record, "totp", mfa_id)


ROUTES = [
    Route("/api/collections/{collection}/totp", totp_status, methods=["GET"]),
    Route("/api/collections/{collection}/totp", totp_disable, methods=["DELETE"]),
    Route("/api/collections/{collection}/totp/enroll", totp_enroll, methods=["POST"]),
    Route("/api/collections/{collection}/totp/confirm", totp_confirm, methods=["POST"]),
    Route("/api/collections/{collection}/auth-with-totp", auth_with_totp, methods=["POST"]),
]

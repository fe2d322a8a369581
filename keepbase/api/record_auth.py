"""Auth routes for auth collections: auth-with-password, auth-refresh, auth-methods."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import REQUIRED, BadRequestError, ForbiddenError, UnauthorizedError, ValidationError
from ..core.types import AuthInfo
from ..security.jwt_tokens import unverified_claims
from ..store.expand import expand_records
from ..store.models import Collection
from .auth_events import record_auth_event
from .deps import app_of, auth_collection, client_ip, current_auth, read_body, request_info, run
from .mfa import mfa_challenge
from .responses import json_response

LOAD_ERROR = "An error occurred while loading the submitted data."


_auth_collection = auth_collection


async def _auth_response(request: Request, c: Collection, record: dict[str, Any], method: str = "",
                         mfa_id: Any = "", meta: dict[str, Any] | None = None) -> Response:
    """The auth response; with a sign-in ``method``, the MFA step first (may answer 401 + mfaId).
    ``meta`` (OAuth2's external user) comes first in the body, as PocketBase orders it."""
    if method:
        challenge = await mfa_challenge(request, c, record, method, mfa_id)
        if challenge is not None:
            return challenge
    app = app_of(request)
    token = app.new_auth_token(c, record)
    view = await run(request, app.records.auth_record_json, c, record["id"], c.name == "_superusers")
    expand = (request.query_params.getlist("expand") or [""])[0]
    if expand:  # expanded as seen by the record that just signed in
        info = await request_info(request)
        info.auth = AuthInfo(c.id, c.name, record)
        await run(request, expand_records, app.records, c, [view], expand, info)
    if method:  # a sign-in: record_auth hooks may change the response or refuse it
        view, token = await record_auth_event(request, c, view, token, method)
    body = {"record": view, "token": token} if meta is None else {"meta": meta, "record": view, "token": token}
    return json_response(body, request.query_params.get("fields", ""))


async def auth_with_password(request: Request) -> Response:
    c = _auth_collection(request)
    body, _ = await read_body(request, app_of(request).config.max_body_size, invalid_message=LOAD_ERROR)
    identity, password = body.get("identity"), body.get("password")
    errors = {}
    if not identity or not isinstance(identity, str):
        errors["identity"] = REQUIRED
    if not password or not isinstance(password, str):
        errors["password"] = REQUIRED
    if errors:
        raise ValidationError(LOAD_ERROR.replace("loading", "validating"), errors)
    field = body.get("identityField") or ""
    if not isinstance(field, str):
        raise BadRequestError(LOAD_ERROR)
    app = app_of(request)
    record = await run(request, app.authenticate_with_password, c, identity, password, field, client_ip(request))
    return await _auth_response(request, c, record, "password", body.get("mfaId"))


async def auth_refresh(request: Request) -> Response:
    c = _auth_collection(request)
    auth = await current_auth(request)
    if auth is None:
        raise UnauthorizedError("The request requires valid record authorization token.")
    if auth.collection_id != c.id:  # PocketBase 0.40.6 names the token's own collection here
        raise ForbiddenError(f"The request requires auth record from {auth.collection_name} collection.")
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    if (unverified_claims(token) or {}).get("refreshable") is False:
        # an impersonation token is never extended: the same token comes back (PocketBase)
        app = app_of(request)
        view = await run(request, app.records.auth_record_json, c, auth.id, c.name == "_superusers")
        return json_response({"record": view, "token": token}, request.query_params.get("fields", ""))
    return await _auth_response(request, c, dict(auth.record))


async def auth_methods(request: Request) -> Response:
    c = _auth_collection(request)
    pa = c.options.get("passwordAuth", {})
    enabled = bool(pa.get("enabled"))
    ident = list(pa.get("identityFields") or []) if enabled else []
    mfa, otp = c.options.get("mfa", {}), c.options.get("otp", {})
    providers = await run(request, app_of(request).oauth2.provider_entries, c)
    body = {
        "password": {"identityFields": ident, "enabled": enabled},
        "oauth2": {"providers": providers, "enabled": bool(c.options.get("oauth2", {}).get("enabled"))},
        "mfa": {"enabled": bool(mfa.get("enabled")), "duration": mfa.get("duration", 0) if mfa.get("enabled") else 0},
        "otp": {"enabled": bool(otp.get("enabled")), "duration": otp.get("duration", 0) if otp.get("enabled") else 0},
        "authProviders": [{**p, "logo": ""} for p in providers],
        "usernamePassword": enabled and "username" in ident,
        "emailPassword": enabled and "email" in ident,
    }
    return json_response(body, request.query_params.get("fields", ""))


ROUTES = [
    Route("/api/collections/{collection}/auth-methods", auth_methods, methods=["GET"]),
    Route("/api/collections/{collection}/auth-with-password", auth_with_password, methods=["POST"]),
    Route("/api/collections/{collection}/auth-refresh", auth_refresh, methods=["POST"]),
]

"""Account flows of auth collections: request/confirm verification, password reset, email
change, and superuser impersonation. The work lives in ``auth.account``."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..auth.timing import response_floor
from ..core.errors import (
    BadRequestError,
    FieldError,
    ForbiddenError,
    UnauthorizedError,
    ValidationError,
)
from .deps import app_of, auth_collection, client_ip, current_auth, read_body, require_superuser, run
from .responses import json_response, no_content

LOAD_ERROR = "An error occurred while loading the submitted data."


_auth_collection = auth_collection


async def _body(request: Request) -> dict[str, Any]:
    body, _ = await read_body(request, app_of(request).config.max_body_size, invalid_message=LOAD_ERROR)
    return body


def _flow(name: str, padded: bool = False) -> Any:
    """A handler for a public ``POST /api/collections/{c}/<flow>`` that answers 204. A ``padded``
    one (a "send me a mail" request) answers no sooner than ``auth.timing``'s floor, whether or
    not the email has an account and whether or not it is cooling down."""

    async def handler(request: Request) -> Response:
        c = _auth_collection(request)
        async with response_floor() if padded else nullcontext():
            body = await _body(request)
            await run(request, getattr(app_of(request).accounts, name), c, body, client_ip(request))
        return no_content()

    handler.__name__ = name
    return handler


async def request_email_change(request: Request) -> Response:
    c = _auth_collection(request)
    auth = await current_auth(request)
    if auth is None:
        raise UnauthorizedError("The request requires valid record authorization token.")
    if auth.collection_id != c.id:
        raise ForbiddenError(f"The request requires auth record from {auth.collection_name} collection.")
    body = await _body(request)
    await run(request, app_of(request).accounts.request_email_change, c, auth, body, client_ip(request))
    return no_content()


async def impersonate(request: Request) -> Response:
    actor = await require_superuser(request)
    c = _auth_collection(request)
    body = await _body(request)
    duration = body.get("duration", 0)
    if duration is None:
        duration = 0
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise BadRequestError(LOAD_ERROR)
    if duration < 0:
        raise ValidationError("An error occurred while validating the submitted data.", {"duration": FieldError(
            "validation_min_greater_equal_than_required", "Must be no less than 0.", {"threshold": 0})})
    app = app_of(request)
    record, token = await run(request, app.accounts.impersonate, c, request.path_params["id"], duration,
                              actor, client_ip(request))
    view = await run(request, app.records.auth_record_json, c, record["id"], c.name == "_superusers")
    return json_response({"record": view, "token": token}, request.query_params.get("fields", ""))


ROUTES = [
    Route("/api/collections/{collection}/request-verification", _flow("request_verification", padded=True),
          methods=["POST"]),
    Route("/api/collections/{collection}/confirm-verification", _flow("confirm_verification"), methods=["POST"]),
    Route("/api/collections/{collection}/request-password-reset", _flow("request_password_reset", padded=True),
          methods=["POST"]),
    Route("/api/collections/{collection}/confirm-password-reset", _flow("confirm_password_reset"),
          methods=["POST"]),
    Route("/api/collections/{collection}/request-email-change", request_email_change, methods=["POST"]),
    Route("/api/collections/{collection}/confirm-email-change", _flow("confirm_email_change"), methods=["POST"]),
    Route("/api/collections/{collection}/impersonate/{id}", impersonate, methods=["POST"]),
]

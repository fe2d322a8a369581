"""GET /api/openapi.json: an OpenAPI 3.1 document of this server, made from the live collections.

**Who sees what.** The document is made for its caller:

* a superuser sees every collection (hidden fields included) and the admin endpoints
  (collections, settings, logs, backups, crons, audit, metrics);
* anyone else sees a collection when at least one of its five record rules is not null, or when
  they are signed in as a record of it; within it, a records operation appears only when its rule
  is not null (a null rule answers 403 to everyone but superusers). A rule that is an expression
  (``@request.auth.id != ""``) still shows the operation: whether it lets a given record through
  is decided per record, not per caller kind. Hidden fields and admin endpoints are left out.

**Freshness.** The document is generated on request and cached per kind of caller (superuser,
guest, or signed in to collection X), keyed on the identity of the collection objects the store
holds (every schema change replaces them) and the app name: the first request after a change
regenerates it, so it is never stale.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..store.models import Collection
from .deps import app_of, current_auth
from .openapi_paths import (
    AUTH,
    OPTIONAL,
    SUPERUSER,
    body,
    components,
    errors,
    no_content,
    ok,
    operation,
    path_param,
    q,
    static_paths,
)
from .openapi_schema import body_schema, component_name, list_schema, record_schema, ref

if TYPE_CHECKING:
    from ..app import App

Doc = dict[str, Any]
RECORD_RULES = ("listRule", "viewRule", "createRule", "updateRule", "deleteRule")


@dataclass(frozen=True)
class Viewer:
    """The kind of caller a document is made for."""

    superuser: bool = False
    collection_id: str = ""  # the auth collection of a signed-in record ("" for guests)

    def can_see(self, c: Collection) -> bool:
        if self.superuser or c.id == self.collection_id:
            return True
        return any(c.rules.get(r) is not None for r in RECORD_RULES)

    def allowed(self, c: Collection, rule: str) -> bool:
        return self.superuser or c.rules.get(rule) is not None


def _api_version() -> str:
    try:
        return f"{version('keepbase')} (PocketBase 0.40 API)"
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "PocketBase 0.40 API"


# --------------------------------------------------------------------------- records
def record_paths(c: Collection, viewer: Viewer, schemas: Doc) -> Doc:
    """The records CRUD of one collection, with its components added to ``schemas``."""
    su = viewer.superuser
    rec = component_name(c, "Record")
    schemas[rec] = record_schema(c, su)
    schemas[component_name(c, "ListResult")] = list_schema(ref(rec))
    tag, base = c.name, f"/api/collections/{c.name}/records"
    one = ok(ref(rec), "The record.")
    collection_ops: Doc = {}
    item_ops: Doc = {}
    if viewer.allowed(c, "listRule"):
        collection_ops["get"] = operation(
            f"List {c.name} records", f"{c.name}.list", tag, OPTIONAL,
            params=[q("page"), q("perPage"), q("sort"), q("filter"), q("expand"), q("fields"), q("skipTotal")],
            responses={**ok(ref(component_name(c, "ListResult")), "A page of records."), **errors(400, 403)},
            description=_rule_note(c, "listRule"))
    writable = not c.is_view
    if writable and viewer.allowed(c, "createRule"):
        collection_ops["post"] = operation(
            f"Create a {c.name} record", f"{c.name}.create", tag, OPTIONAL, params=[q("expand"), q("fields")],
            body=_record_body(c, su, update=False, schemas=schemas),
            responses={**one, **errors(400, 403, 413)}, description=_rule_note(c, "createRule"))
    id_param = path_param("id", "The record id.")
    if viewer.allowed(c, "viewRule"):
        item_ops["get"] = operation(
            f"View a {c.name} record", f"{c.name}.view", tag, OPTIONAL, params=[id_param, q("expand"), q("fields")],
            responses={**one, **errors(403, 404)}, description=_rule_note(c, "viewRule"))
    if writable and viewer.allowed(c, "updateRule"):
        item_ops["patch"] = operation(
            f"Update a {c.name} record", f"{c.name}.update", tag, OPTIONAL,
            params=[id_param, q("expand"), q("fields")], body=_record_body(c, su, update=True, schemas=schemas),
            responses={**one, **errors(400, 403, 404, 413)}, description=_rule_note(c, "updateRule"))
    if writable and viewer.allowed(c, "deleteRule"):
        item_ops["delete"] = operation(
            f"Delete a {c.name} record", f"{c.name}.delete", tag, OPTIONAL, params=[id_param],
            responses={**no_content(), **errors(400, 403, 404)}, description=_rule_note(c, "deleteRule"))
    paths: Doc = {}
    if collection_ops:
        paths[base] = collection_ops
    if item_ops:
        paths[base + "/{id}"] = item_ops
    return paths


def _rule_note(c: Collection, rule: str) -> str:
    value = c.rules.get(rule)
    if value is None:
        return "Superusers only (the rule is null)."
    return "Anyone (the rule is empty)." if value == "" else f"Rule: `{value}` (superusers bypass it)."


def _record_body(c: Collection, su: bool, *, update: bool, schemas: Doc) -> Doc:
    kind = "UpdateBody" if update else "CreateBody"
    json_name, form_name = component_name(c, kind), component_name(c, kind.replace("Body", "Form"))
    schemas[json_name] = body_schema(c, su, update=update, form=False)
    schemas[form_name] = body_schema(c, su, update=update, form=True)
    return {"required": not update, "content": {"application/json": {"schema": ref(json_name)},
                                                "multipart/form-data": {"schema": ref(form_name)}}}


# --------------------------------------------------------------------------- auth collections
def auth_paths(c: Collection, viewer: Viewer, schemas: Doc) -> Doc:
    base, tag = f"/api/collections/{c.name}", c.name
    auth_name = component_name(c, "AuthResponse")
    schemas[auth_name] = {"type": "object", "properties": {
        "token": {"type": "string"}, "record": ref(component_name(c, "Record")),
        "meta": {"type": "object", "description": "OAuth2 only: the provider's user."}}}
    authed = {**ok(ref(auth_name), "Signed in."), "401": {"$ref": "#/components/responses/MfaRequired"}}
    proj = [q("expand"), q("fields")]

    def post(name: str, summary: str, props: Doc, need: list[str], responses: Doc, security: str = OPTIONAL,
             params: list[Doc] | None = None) -> Doc:
        return {"post": operation(summary, f"{c.name}.{name}", tag, security, params=params,
                                  body=body(props, need) if props else None, responses=responses)}

    s: Doc = {"type": "string"}
    email: Doc = {"type": "string", "format": "email"}
    paths: Doc = {
        f"{base}/auth-methods": {"get": operation(
            "List the enabled sign-in methods", f"{c.name}.authMethods", tag, OPTIONAL, params=[q("fields")],
            responses={**ok(ref("AuthMethods"), "The sign-in methods."), **errors(404)})},
        f"{base}/auth-with-password": post(
            "auth-with-password", "Sign in with a password",
            {"identity": s, "password": s, "identityField": s, "mfaId": s}, ["identity", "password"],
            {**authed, **errors(400, 403)}, params=proj),
        f"{base}/auth-refresh": post("auth-refresh", "Refresh an auth token", {}, [],
                                     {**ok(ref(auth_name), "A new token."), **errors(401, 403, 404)}, AUTH, proj),
        f"{base}/auth-with-oauth2": post(
            "auth-with-oauth2", "Sign in with OAuth2",
            {"provider": s, "code": s, "codeVerifier": s, "redirectURL": s, "createData": {"type": "object"},
             "mfaId": s}, ["provider", "code"], {**authed, **errors(400, 403)}, params=proj),
        f"{base}/request-otp": post("request-otp", "Mail a one-time password", {"email": email}, ["email"],
                                    {**ok({"type": "object", "properties": {"otpId": s}}, "The OTP id."),
                                     **errors(400, 403, 429)}),
        f"{base}/auth-with-otp": post("auth-with-otp", "Sign in with a one-time password",
                                      {"otpId": s, "password": s, "mfaId": s}, ["otpId", "password"],
                                      {**authed, **errors(400, 429)}, params=proj),
        f"{base}/request-verification": post("request-verification", "Mail a verification link",
                                             {"email": email}, ["email"], {**no_content(), **errors(400)}),
        f"{base}/confirm-verification": post("confirm-verification", "Confirm a verification token",
                                             {"token": s}, ["token"], {**no_content(), **errors(400)}),
        f"{base}/request-password-reset": post("request-password-reset", "Mail a password reset link",
                                               {"email": email}, ["email"], {**no_content(), **errors(400)}),
        f"{base}/confirm-password-reset": post(
            "confirm-password-reset", "Set a new password with a reset token",
            {"token": s, "password": s, "passwordConfirm": s}, ["token", "password", "passwordConfirm"],
            {**no_content(), **errors(400)}),
        f"{base}/request-email-change": post("request-email-change", "Mail an email change link",
                                             {"newEmail": email}, ["newEmail"],
                                             {**no_content(), **errors(400, 401, 403)}, AUTH),
        f"{base}/confirm-email-change": post("confirm-email-change", "Confirm an email change",
                                             {"token": s, "password": s}, ["token", "password"],
                                             {**no_content(), **errors(400)}),
        f"{base}/totp": {
            "get": operation("TOTP status of the signed-in record", f"{c.name}.totpStatus", tag, AUTH,
                             responses={**ok({"type": "object", "properties": {
                                 "enabled": {"type": "boolean"}, "recoveryCodes": {"type": "integer"}}},
                                 "Whether TOTP is on, and the recovery codes left."), **errors(401, 403, 404)}),
            "delete": operation("Turn TOTP off", f"{c.name}.totpDisable", tag, AUTH,
                                body=body({"code": s, "recordId": s}, []),
                                responses={**no_content(), **errors(400, 401, 403, 404)})},
        f"{base}/totp/enroll": post("totpEnroll", "Start a TOTP enrolment", {}, [],
                                    {**ok({"type": "object", "properties": {"secret": s, "uri": s}},
                                          "The pending secret."), **errors(400, 401, 403, 404)}, AUTH),
        f"{base}/totp/confirm": post("totpConfirm", "Confirm a TOTP enrolment", {"code": s}, ["code"],
                                     {**ok({"type": "object", "properties": {
                                         "recoveryCodes": {"type": "array", "items": s}}}, "Recovery codes."),
                                      **errors(400, 401, 403, 404)}, AUTH),
        f"{base}/auth-with-totp": post("auth-with-totp", "Finish an MFA sign-in with a TOTP code",
                                       {"mfaId": s, "code": s}, ["mfaId", "code"],
                                       {**authed, **errors(400, 429)}, params=proj),
    }
    if viewer.superuser:
        paths[f"{base}/impersonate/{{id}}"] = post(
            "impersonate", "Sign in as a record (superusers)", {"duration": {"type": "integer", "minimum": 0}},
            [], {**ok(ref(auth_name), "A non-refreshable token."), **errors(400, 401, 403, 404)}, SUPERUSER,
            [path_param("id", "The record id."), *proj])
    return paths


# --------------------------------------------------------------------------- the document
def build_document(app: App, viewer: Viewer, collections: list[Collection]) -> Doc:
    schemas: Doc = {}
    paths: Doc = {}
    tags: list[Doc] = []
    for c in collections:
        if not viewer.can_see(c):
            continue
        tags.append({"name": c.name, "description": f"{c.type.capitalize()} collection {c.name} ({c.id})."})
        paths.update(record_paths(c, viewer, schemas))
        if c.is_auth:
            paths.update(auth_paths(c, viewer, schemas))
    paths.update(static_paths(viewer.superuser))
    meta = app.settings.get().get("meta") or {}
    comps = components()
    comps["schemas"].update(schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{meta.get('appName') or 'keepbase'} API", "version": _api_version(),
                 "description": "The PocketBase 0.40 HTTP API as served by keepbase, for "
                                + ("a superuser." if viewer.superuser else "this caller (see /api/docs).")},
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "security": [{}, {"authToken": []}],
        "tags": tags,
        "paths": paths,
        "components": comps,
    }


@dataclass
class _Entry:
    collections: list[Collection]
    app_name: str
    body: bytes


class DocumentCache:
    """Rendered documents per kind of caller; an entry is used only while the store holds the
    very collection objects it was made from (see the module docstring)."""

    MAX_ENTRIES = 64

    def __init__(self) -> None:
        self._entries: dict[Viewer, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, app: App, viewer: Viewer) -> bytes:
        collections = app.collections.all()
        app_name = str((app.settings.get().get("meta") or {}).get("appName") or "")
        entry = self._entries.get(viewer)
        if entry is not None and entry.app_name == app_name and len(entry.collections) == len(collections) \
                and all(a is b for a, b in zip(entry.collections, collections, strict=True)):
            return entry.body
        rendered = orjson.dumps(build_document(app, viewer, collections))
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[viewer] = _Entry(collections, app_name, rendered)
        return rendered


_CACHES: weakref.WeakKeyDictionary[App, DocumentCache] = weakref.WeakKeyDictionary()


def cache_of(app: App) -> DocumentCache:
    cache = _CACHES.get(app)
    if cache is None:
        cache = _CACHES[app] = DocumentCache()
    return cache


async def openapi_json(request: Request) -> Response:
    app = app_of(request)
    auth = await current_auth(request)
    viewer = Viewer(superuser=auth is not None and auth.is_superuser,
                    collection_id=auth.collection_id if auth is not None else "")
    return Response(cache_of(app).get(app, viewer), media_type="application/json",
                    headers={"cache-control": "no-store"})


ROUTES = [Route("/api/openapi.json", openapi_json, methods=["GET"])]

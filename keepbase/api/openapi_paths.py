"""The parts of the OpenAPI document that do not depend on the collections: shared components,
operation helpers, and the fixed endpoints (health, realtime, files, batch, and the superuser-only
collections, settings, logs, backups, crons, audit and metrics)."""

from __future__ import annotations

from typing import Any

from .openapi_schema import DATETIME, list_schema, ref

Doc = dict[str, Any]
OPTIONAL, AUTH, SUPERUSER, PUBLIC = "optional", "auth", "superuser", "public"
_SECURITY = {OPTIONAL: [{}, {"authToken": []}], AUTH: [{"authToken": []}], SUPERUSER: [{"authToken": []}],
             PUBLIC: [{}]}
_STR: Doc = {"type": "string"}
_OBJ: Doc = {"type": "object"}

_QUERY: dict[str, tuple[Doc, str]] = {
    "page": ({"type": "integer", "default": 1}, "Page number (values below 1 mean 1)."),
    "perPage": ({"type": "integer", "default": 30}, "Items per page, at most 1000."),
    "sort": (_STR, "Comma-separated fields, `-` for descending (`-created,title`)."),
    "filter": (_STR, "A PocketBase filter expression (`published = true && created > '2024-01-01'`)."),
    "expand": (_STR, "Relations to expand (`author,comments_via_post.author`)."),
    "fields": (_STR, "Keys to return (`id,title,expand.author.name`, `body:excerpt(200,true)`)."),
    "skipTotal": ({"type": "boolean"}, "Skip counting: `totalItems` and `totalPages` become -1."),
}


def q(name: str) -> Doc:
    return {"$ref": f"#/components/parameters/{name}"}


def path_param(name: str, description: str) -> Doc:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": _STR}


def operation(summary: str, op_id: str, tag: str, security: str, *, responses: Doc,
              params: list[Doc] | None = None, body: Doc | None = None, description: str = "") -> Doc:
    op: Doc = {"summary": summary, "operationId": op_id, "tags": [tag], "security": _SECURITY[security]}
    if description or security == SUPERUSER:
        op["description"] = description or "Superusers only."
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
    if security in (AUTH, SUPERUSER):
        responses = {**responses, **errors(401, 403)}
    op["responses"] = dict(sorted(responses.items()))
    return op


def ok(schema: Doc, description: str = "OK.", status: str = "200") -> Doc:
    return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}


def no_content() -> Doc:
    return {"204": {"description": "Done (no body)."}}


def errors(*codes: int) -> Doc:
    """The error envelope for the statuses an operation documents, and as the default (any other
    failure: 429 when rate limits are on, 500, 503 ...)."""
    out: Doc = {str(code): {"$ref": "#/components/responses/Error"} for code in codes}
    out["default"] = {"$ref": "#/components/responses/Error"}
    return out


def body(props: Doc, required: list[str], *, media: str = "application/json") -> Doc:
    schema: Doc = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return {"required": bool(required), "content": {media: {"schema": schema}}}


def components() -> Doc:
    error = {"type": "object", "required": ["data", "message", "status"], "properties": {
        "data": {"type": "object", "description": "Field name → `{code, message, params?}` (nested for "
                                                  "nested values); `{}` unless validation failed."},
        "message": _STR, "status": {"type": "integer"}}}
    mfa = {"type": "object", "required": ["mfaId"], "properties": {"mfaId": _STR}}
    return {
        "securitySchemes": {"authToken": {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "A record's auth token, as returned by the auth endpoints (no `Bearer ` prefix needed)."}},
        "parameters": {name: {"name": name, "in": "query", "required": False, "description": text, "schema": schema}
                       for name, (schema, text) in _QUERY.items()},
        "responses": {
            "Error": {"description": "PocketBase's error envelope.",
                      "content": {"application/json": {"schema": ref("Error")}}},
            "MfaRequired": {"description": "Multi-factor sign-in: finish with another method and this `mfaId` "
                                           "(or the error envelope: invalid credentials).",
                            "content": {"application/json": {"schema": {"anyOf": [ref("MfaRequired"), ref("Error")]}}}},
        },
        "schemas": {
            "Error": error, "MfaRequired": mfa,
            "AuthMethods": {"type": "object", "properties": {
                "password": {"type": "object", "properties": {
                    "enabled": {"type": "boolean"}, "identityFields": {"type": "array", "items": _STR}}},
                "oauth2": {"type": "object", "properties": {
                    "enabled": {"type": "boolean"}, "providers": {"type": "array", "items": _OBJ}}},
                "mfa": {"type": "object", "properties": {"enabled": {"type": "boolean"}, "duration": {"type": "integer"}}},
                "otp": {"type": "object", "properties": {"enabled": {"type": "boolean"}, "duration": {"type": "integer"}}},
                "authProviders": {"type": "array", "items": _OBJ}, "usernamePassword": {"type": "boolean"},
                "emailPassword": {"type": "boolean"}}},
            "Collection": {"type": "object", "properties": {
                "id": _STR, "name": _STR, "type": {"type": "string", "enum": ["base", "auth", "view"]},
                "system": {"type": "boolean"}, "fields": {"type": "array", "items": _OBJ},
                "indexes": {"type": "array", "items": _STR}, "created": DATETIME, "updated": DATETIME,
                **{r: {"type": ["string", "null"]} for r in ("listRule", "viewRule", "createRule", "updateRule",
                                                              "deleteRule")}}},
            "LogEntry": {"type": "object", "properties": {
                "id": _STR, "created": DATETIME, "data": _OBJ, "message": _STR, "level": {"type": "integer"}}},
        },
    }


def _health() -> Doc:
    return {"/api/health": {"get": operation(
        "Health check", "health", "System", PUBLIC, params=[q("fields")],
        responses={**ok({"type": "object", "properties": {"message": _STR, "code": {"type": "integer"},
                                                           "data": _OBJ}}, "Healthy."), **errors(503)})},
        "/api/openapi.json": {"get": operation(
            "This document", "openapi", "System", OPTIONAL,
            responses={**ok({"type": "object"}, "An OpenAPI 3.1 document, made for the caller.")})}}


def _public() -> Doc:
    batch_item = {"type": "object", "required": ["method", "url"], "properties": {
        "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
        "url": {"type": "string", "maxLength": 2000}, "body": _OBJ,
        "headers": {"type": "object", "additionalProperties": _STR}}}
    return {
        "/api/realtime": {
            "get": operation("Open the realtime event stream", "realtime.connect", "Realtime", PUBLIC,
                             responses={"200": {"description": "Server-sent events; the first is PB_CONNECT with "
                                                               "the clientId.",
                                                "content": {"text/event-stream": {"schema": _STR}}}}),
            "post": operation("Set the subscriptions of a realtime client", "realtime.subscribe", "Realtime",
                              OPTIONAL, body=body({"clientId": _STR, "subscriptions": {
                                  "type": "array", "items": {"type": "string", "maxLength": 2500}, "maxItems": 1000}},
                                  ["clientId"]), responses={**no_content(), **errors(400, 403, 404)})},
        "/api/files/token": {"post": operation(
            "Get a file token for protected files", "files.token", "Files", AUTH,
            responses=ok({"type": "object", "properties": {"token": _STR}}, "A short-lived file token."))},
        "/api/files/{collection}/{recordId}/{filename}": {"get": operation(
            "Download a file", "files.download", "Files", PUBLIC,
            params=[path_param("collection", "Collection id or name."), path_param("recordId", "The record id."),
                    path_param("filename", "The stored file name."),
                    {"name": "thumb", "in": "query", "schema": _STR, "description": "`WxH[t|b|f]` thumbnail size."},
                    {"name": "token", "in": "query", "schema": _STR, "description": "File token (protected files)."},
                    {"name": "download", "in": "query", "schema": {"type": "boolean"}}],
            responses={"200": {"description": "The file.", "content": {"*/*": {"schema": _STR}}},
                       **errors(404)})},
        "/api/batch": {"post": operation(
            "Run record writes in one transaction", "batch", "Batch", OPTIONAL,
            body=body({"requests": {"type": "array", "items": batch_item}}, ["requests"]),
            responses={**ok({"type": "array", "items": {"type": "object", "properties": {
                "status": {"type": "integer"}, "body": {}}}}, "One result per request."),
                **errors(400, 403, 413)})},
        "/api/oauth2-redirect": {"get": operation(
            "OAuth2 redirect target of the all-in-one SDK flow", "oauth2.redirect", "Realtime", PUBLIC,
            params=[{"name": n, "in": "query", "schema": _STR} for n in ("state", "code", "error")],
            responses={"200": {"description": "A short page (no dashboard bundled)."},
                       "307": {"description": "To the dashboard's success or failure page."}})},
    }


def _admin() -> Doc:
    su, coll = SUPERUSER, ref("Collection")
    cparam = path_param("collection", "Collection id or name.")
    list_params = [q("page"), q("perPage"), q("sort"), q("filter"), q("fields"), q("skipTotal")]
    any_obj = {"type": "object", "additionalProperties": True}
    return {
        "/api/collections": {
            "get": operation("List collections", "collections.list", "Collections", su, params=list_params,
                             responses={**ok(list_schema(coll)), **errors(400)}),
            "post": operation("Create a collection", "collections.create", "Collections", su, params=[q("fields")],
                              body={"required": True, "content": {"application/json": {"schema": coll}}},
                              responses={**ok(coll), **errors(400)})},
        "/api/collections/{collection}": {
            "get": operation("View a collection", "collections.view", "Collections", su, params=[cparam, q("fields")],
                             responses={**ok(coll), **errors(404)}),
            "patch": operation("Update a collection", "collections.update", "Collections", su,
                               params=[cparam, q("fields")],
                               body={"required": True, "content": {"application/json": {"schema": coll}}},
                               responses={**ok(coll), **errors(400, 404)}),
            "delete": operation("Delete a collection", "collections.delete", "Collections", su, params=[cparam],
                                responses={**no_content(), **errors(400, 404)})},
        "/api/collections/{collection}/truncate": {"delete": operation(
            "Delete every record of a collection", "collections.truncate", "Collections", su, params=[cparam],
            responses={**no_content(), **errors(400, 404)})},
        "/api/collections/import": {"put": operation(
            "Import collections", "collections.import", "Collections", su,
            body=body({"collections": {"type": "array", "items": coll}, "deleteMissing": {"type": "boolean"}},
                      ["collections"]), responses={**no_content(), **errors(400)})},
        "/api/collections/meta/scaffolds": {"get": operation(
            "Collection templates", "collections.scaffolds", "Collections", su,
            responses=ok({"type": "object", "additionalProperties": coll}))},
        "/api/collections/meta/oauth2-providers": {"get": operation(
            "Known OAuth2 providers", "collections.oauth2Providers", "Collections", su,
            responses=ok({"type": "array", "items": _OBJ}))},
        "/api/settings": {
            "get": operation("Read the settings", "settings.get", "Settings", su, params=[q("fields")],
                             responses=ok(any_obj)),
            "patch": operation("Change the settings", "settings.update", "Settings", su, params=[q("fields")],
                               body={"required": True, "content": {"application/json": {"schema": any_obj}}},
                               responses={**ok(any_obj), **errors(400)})},
        "/api/settings/test/email": {"post": operation(
            "Send a test email", "settings.testEmail", "Settings", su,
            body=body({"email": {"type": "string", "format": "email"}, "template": _STR, "collection": _STR},
                      ["email", "template"]), responses={**no_content(), **errors(400)})},
        "/api/settings/test/s3": {"post": operation(
            "Test the S3 connection", "settings.testS3", "Settings", su,
            body=body({"filesystem": {"type": "string", "enum": ["storage", "backups"]}}, ["filesystem"]),
            responses={**no_content(), **errors(400)})},
        "/api/logs": {
            "get": operation("List request logs", "logs.list", "Logs", su, params=list_params,
                             responses={**ok(list_schema(ref("LogEntry"))), **errors(400)}),
            "delete": operation("Delete every log", "logs.deleteAll", "Logs", su, responses=no_content())},
        "/api/logs/stats": {"get": operation(
            "Hourly log counts", "logs.stats", "Logs", su, params=[q("filter"), q("fields")],
            responses={**ok({"type": "array", "items": {"type": "object", "properties": {
                "date": DATETIME, "total": {"type": "integer"}}}}), **errors(400)})},
        "/api/logs/{id}": {"get": operation(
            "View a log", "logs.view", "Logs", su, params=[path_param("id", "The log id."), q("fields")],
            responses={**ok(ref("LogEntry")), **errors(404)})},
        "/api/backups": {
            "get": operation("List backups", "backups.list", "Backups", su, params=[q("fields")],
                             responses=ok({"type": "array", "items": {"type": "object", "properties": {
                                 "key": _STR, "modified": DATETIME, "size": {"type": "integer"}}}})),
            "post": operation("Create a backup", "backups.create", "Backups", su,
                              body=body({"name": {"type": "string", "pattern": "^[a-z0-9_-]+\\.zip$"}}, []),
                              responses={**no_content(), **errors(400)})},
        "/api/backups/upload": {"post": operation(
            "Upload a backup", "backups.upload", "Backups", su,
            body=body({"file": {"type": "string", "contentMediaType": "application/zip"}}, ["file"],
                      media="multipart/form-data"), responses={**no_content(), **errors(400)})},
        "/api/backups/{key}": {
            "get": operation("Download a backup (with a superuser file token)", "backups.download", "Backups",
                             PUBLIC, params=[path_param("key", "The backup name."),
                                             {"name": "token", "in": "query", "required": True, "schema": _STR}],
                             responses={"200": {"description": "The archive.",
                                                "content": {"application/zip": {"schema": _STR}}},
                                        **errors(400, 403, 404)}),
            "delete": operation("Delete a backup", "backups.delete", "Backups", su,
                                params=[path_param("key", "The backup name.")],
                                responses={**no_content(), **errors(400)})},
        "/api/backups/{key}/restore": {"post": operation(
            "Restore a backup (the server restarts)", "backups.restore", "Backups", su,
            params=[path_param("key", "The backup name.")], responses={**no_content(), **errors(400)})},
        "/api/crons": {"get": operation(
            "List cron jobs", "crons.list", "Crons", su, params=[q("fields")],
            responses=ok({"type": "array", "items": {"type": "object", "properties": {"id": _STR,
                                                                                      "expression": _STR}}}))},
        "/api/crons/{id}": {"post": operation(
            "Run a cron job now", "crons.run", "Crons", su, params=[path_param("id", "The job id.")],
            responses={**no_content(), **errors(404)})},
        "/api/audit": {"get": operation(
            "The sign-in and account audit trail (keepbase)", "audit.list", "Logs", su,
            params=[q("page"), q("perPage"), q("fields")], responses={**ok(list_schema(_OBJ)), **errors(400)})},
        "/api/metrics": {"get": operation(
            "Prometheus metrics (keepbase; or with the metrics token)", "metrics", "System", su,
            responses={"200": {"description": "Prometheus text format.",
                               "content": {"text/plain": {"schema": _STR}}}})},
    }


def static_paths(superuser: bool) -> Doc:
    """Every fixed endpoint the caller may use; the admin ones for superusers only."""
    paths = {**_health(), **_public()}
    if superuser:
        paths.update(_admin())
    return paths

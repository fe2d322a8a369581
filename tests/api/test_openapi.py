"""GET /api/openapi.json and /api/docs on SQLite and PostgreSQL: the document is valid OpenAPI 3.1,
follows schema changes at once, shows each caller what the rules let them use, and describes the
records the server really sends."""

from __future__ import annotations

import re
from typing import Any

import httpx
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from openapi_spec_validator import validate

from keepbase.api.openapi import Viewer, cache_of
from keepbase.app import App
from tests.conftest import make_collection

Headers = dict[str, str]
Doc = dict[str, Any]
ADMIN_PATHS = ("/api/collections", "/api/settings", "/api/logs", "/api/backups", "/api/crons", "/api/audit")


async def document(client: httpx.AsyncClient, headers: Headers | None = None, *, check: bool = False) -> Doc:
    """The caller's document; ``check`` validates it as OpenAPI 3.1 (about a second: done where a
    test adds something new to the document, not on every fetch)."""
    r = await client.get("/api/openapi.json", headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    doc: Doc = r.json()
    if check:
        validate(doc)  # raises on anything that is not valid OpenAPI 3.1
    assert doc["openapi"] == "3.1.0"
    return doc


def conforms(doc: Doc, schema_name: str, instance: Any) -> list[str]:
    """The JSON Schema errors of ``instance`` against ``components.schemas[schema_name]``."""
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": doc["components"]}
    return [e.message for e in Draft202012Validator(root).iter_errors(instance)]


async def user_headers(client: httpx.AsyncClient, collection: str = "users",
                       email: str = "u1@example.com", creator: Headers | None = None) -> Headers:
    r = await client.post(f"/api/collections/{collection}/records", headers=creator or {},
                          json={"email": email, "password": "pass123456", "passwordConfirm": "pass123456"})
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/collections/{collection}/auth-with-password",
                          json={"identity": email, "password": "pass123456"})
    assert r.status_code == 200, r.text
    return {"Authorization": r.json()["token"]}


def ops(doc: Doc, path: str) -> set[str]:
    return set(doc["paths"].get(path, {}))


async def test_valid_for_every_kind_of_caller(client: httpx.AsyncClient, su_headers: Headers) -> None:
    guest = await document(client, check=True)
    user = await document(client, await user_headers(client))
    su = await document(client, su_headers, check=True)
    for path in ADMIN_PATHS:
        assert path in su["paths"]
        assert path not in guest["paths"] and path not in user["paths"]
    for doc in (guest, user, su):
        for path in ("/api/health", "/api/realtime", "/api/batch", "/api/files/token",
                     "/api/files/{collection}/{recordId}/{filename}", "/api/collections/users/auth-with-password"):
            assert path in doc["paths"], path
        listing = doc["paths"]["/api/collections/users/records"]["get"]
        names = {p["$ref"].rsplit("/", 1)[1] for p in listing["parameters"]}
        assert names == {"page", "perPage", "sort", "filter", "expand", "fields", "skipTotal"}
        assert doc["components"]["schemas"]["Error"]["required"] == ["data", "message", "status"]
        assert listing["responses"]["400"] == {"$ref": "#/components/responses/Error"}
    # _superusers: every rule null, so only superusers see it (and impersonate is theirs alone)
    assert "/api/collections/_superusers/records" in su["paths"]
    assert not any(p.startswith("/api/collections/_superusers/") for p in guest["paths"])
    assert "/api/collections/users/impersonate/{id}" in su["paths"]
    assert "/api/collections/users/impersonate/{id}" not in user["paths"]


async def test_a_schema_change_shows_at_once(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await document(client)  # warm the guest and superuser caches
    await document(client, su_headers)
    await make_collection(client, su_headers, name="notes", fields=[{"name": "title", "type": "text"}])
    assert "/api/collections/notes/records" not in (await document(client))["paths"]  # all rules null
    su = await document(client, su_headers)
    assert "title" in su["components"]["schemas"]["notes.Record"]["properties"]

    r = await client.patch("/api/collections/notes", headers=su_headers, json={
        "listRule": "", "fields": [{"name": "title", "type": "text"}, {"name": "score", "type": "number"}]})
    assert r.status_code == 200, r.text
    guest = await document(client)
    assert ops(guest, "/api/collections/notes/records") == {"get"}
    props = guest["components"]["schemas"]["notes.Record"]["properties"]
    assert props["score"] == {"type": "number"}

    r = await client.patch("/api/collections/notes", headers=su_headers, json={"name": "memos"})
    assert r.status_code == 200, r.text
    guest = await document(client)
    assert "/api/collections/notes/records" not in guest["paths"]
    assert ops(guest, "/api/collections/memos/records") == {"get"}

    r = await client.delete("/api/collections/memos", headers=su_headers)
    assert r.status_code == 204
    assert not any("memos" in p for p in (await document(client, su_headers))["paths"])


async def test_visibility_follows_rules(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="contact", createRule="",
                          fields=[{"name": "msg", "type": "text", "required": True}])
    await make_collection(client, su_headers, name="diary", listRule="owner = @request.auth.id",
                          viewRule="owner = @request.auth.id",
                          fields=[{"name": "owner", "type": "text"}, {"name": "secret", "type": "text",
                                                                      "hidden": True}])
    await make_collection(client, su_headers, name="vault", fields=[{"name": "x", "type": "text"}])
    await make_collection(client, su_headers, name="staff", type="auth")  # every rule null
    guest = await document(client)
    su = await document(client, su_headers)
    staff = await document(client, await user_headers(client, "staff", "s1@example.com", su_headers))

    # a create-only collection shows only its create; a rule that is an expression still shows
    assert ops(guest, "/api/collections/contact/records") == {"post"}
    assert "/api/collections/contact/records/{id}" not in guest["paths"]
    assert ops(guest, "/api/collections/diary/records") == {"get"}
    assert ops(guest, "/api/collections/diary/records/{id}") == {"get"}
    assert "owner = @request.auth.id" in guest["paths"]["/api/collections/diary/records"]["get"]["description"]
    assert not any("vault" in p or "staff" in p for p in guest["paths"])
    assert not any("diary.CreateBody" == k for k in guest["components"]["schemas"])
    # hidden fields: left out for others, shown to superusers (who receive them)
    assert "secret" not in guest["components"]["schemas"]["diary.Record"]["properties"]
    assert "secret" in su["components"]["schemas"]["diary.Record"]["properties"]
    assert ops(su, "/api/collections/vault/records") == {"get", "post"}
    assert ops(su, "/api/collections/vault/records/{id}") == {"get", "patch", "delete"}
    # a record of an auth collection with null rules sees its own collection's auth endpoints
    assert "/api/collections/staff/auth-refresh" in staff["paths"]
    assert "/api/collections/staff/records" not in staff["paths"]
    assert "/api/collections/staff/auth-refresh" not in guest["paths"]
    # auth secrets are never described
    for doc in (guest, su):
        users = doc["components"]["schemas"]["users.Record"]["properties"]
        assert "password" not in users and "tokenKey" not in users
        assert "email" in users


FIELDS = [
    {"name": "title", "type": "text", "required": True, "min": 3, "max": 20, "pattern": "^[a-z ]+$"},
    {"name": "slug", "type": "text", "autogeneratePattern": "[a-z]{8}"},
    {"name": "views", "type": "number", "onlyInt": True, "min": 0, "max": 100},
    {"name": "ratio", "type": "number"},
    {"name": "on", "type": "bool"},
    {"name": "mail", "type": "email"},
    {"name": "site", "type": "url"},
    {"name": "body", "type": "editor", "maxSize": 1000},
    {"name": "when", "type": "date"},
    {"name": "stamp", "type": "autodate", "onCreate": True},
    {"name": "status", "type": "select", "values": ["draft", "live"], "maxSelect": 1},
    {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 2},
    {"name": "doc", "type": "file", "maxSelect": 1},
    {"name": "pics", "type": "file", "maxSelect": 3},
    {"name": "meta", "type": "json"},
    {"name": "loc", "type": "geoPoint"},
]


async def test_field_types(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="things", listRule="", viewRule="", createRule="",
                          updateRule="", fields=FIELDS)
    doc = await document(client, check=True)
    schemas = doc["components"]["schemas"]
    rec = schemas["things.Record"]["properties"]
    assert rec["views"] == {"type": "number"} and rec["on"] == {"type": "boolean"}
    assert rec["tags"]["type"] == "array" and rec["status"]["type"] == "string"
    assert rec["pics"] == {"type": "array", "items": rec["doc"]}
    assert rec["loc"]["required"] == ["lon", "lat"]
    assert rec["meta"] == {} and re.match(rec["stamp"]["pattern"], "2024-01-02 03:04:05.678Z")
    assert rec["collectionName"]["const"] == "things"

    create = schemas["things.CreateBody"]
    props = create["properties"]
    assert create["required"] == ["title"]  # slug is autogenerated, the rest optional
    assert props["title"] == {"type": "string", "maxLength": 20, "minLength": 3, "pattern": "^[a-z ]+$"}
    assert props["views"] == {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 100}, {"const": 0}]}
    assert props["status"] == {"type": "string", "enum": ["draft", "live", ""]}
    assert props["tags"] == {"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}, "maxItems": 2}
    assert props["mail"] == {"anyOf": [{"type": "string", "format": "email"}, {"const": ""}]}
    assert props["body"]["maxLength"] == 1000
    assert "stamp" not in props  # the server sets autodates
    form = schemas["things.CreateForm"]["properties"]
    assert form["doc"]["contentMediaType"] == "application/octet-stream"
    assert form["pics"]["items"]["contentMediaType"] == "application/octet-stream"
    update = schemas["things.UpdateBody"]["properties"]
    assert {"views+", "views-", "+tags", "tags+", "tags-", "slug:autogenerate"} <= set(update)
    assert "required" not in schemas["things.UpdateBody"]
    body = doc["paths"]["/api/collections/things/records"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}

    # what the server sends conforms to the document: a created record, its list, an error
    valid = {"title": "hello", "views": 7, "tags": ["a", "b"], "status": "live", "loc": {"lon": 1, "lat": 2},
             "meta": {"k": [1]}, "when": "2024-01-02"}
    assert conforms(doc, "things.CreateBody", valid) == []
    assert conforms(doc, "things.CreateBody", {**valid, "tags": ["zzz"]}) != []
    r = await client.post("/api/collections/things/records", json=valid)
    assert r.status_code == 200, r.text
    assert conforms(doc, "things.Record", r.json()) == []
    r = await client.get("/api/collections/things/records", params={"expand": "x", "fields": "id,title"})
    assert conforms(doc, "things.ListResult", r.json()) == []
    r = await client.post("/api/collections/things/records", json={**valid, "title": "NO"})
    assert r.status_code == 400
    assert conforms(doc, "Error", r.json()) == []


async def test_auth_records_conform(client: httpx.AsyncClient, su_headers: Headers) -> None:
    headers = await user_headers(client)
    doc = await document(client, headers)
    r = await client.post("/api/collections/users/auth-refresh", headers=headers)
    assert r.status_code == 200
    assert conforms(doc, "users.AuthResponse", r.json()) == []
    r = await client.get("/api/collections/users/auth-methods")
    assert conforms(doc, "AuthMethods", r.json()) == []
    su = await document(client, su_headers)
    r = await client.get("/api/collections/users/records", headers=su_headers)
    assert conforms(su, "users.ListResult", r.json()) == []


async def test_docs_page(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", r.text, re.S)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts)  # no inline code
    for src in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        asset = await client.get(f"/api/{src}")
        assert asset.status_code == 200 and asset.content, src
    bundle = await client.get("/api/docs/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content and len(bundle.content) > 100_000
    init = await client.get("/api/docs/init.js")
    assert b"openapi.json" in init.content and b"validatorUrl: null" in init.content
    again = await client.get("/api/docs/init.js", headers={"If-None-Match": init.headers["etag"]})
    assert again.status_code == 304
    for missing in ("/api/docs/index.html", "/api/docs/..%2f..%2fpyproject.toml", "/api/docs/swagger-editor.js"):
        r = await client.get(missing)
        assert r.status_code == 404
        assert r.json()["status"] == 404


async def test_cached_until_a_change(app: App, client: httpx.AsyncClient, su_headers: Headers) -> None:
    cache = cache_of(app)
    su = Viewer(superuser=True)
    first = (await client.get("/api/openapi.json", headers=su_headers)).content
    assert cache.get(app, su) is cache.get(app, su)  # served from the cache, not made again
    assert cache.get(app, su) == first
    r = await client.patch("/api/settings", headers=su_headers, json={"meta": {"appName": "Renamed"}})
    assert r.status_code == 200, r.text
    renamed = (await client.get("/api/openapi.json", headers=su_headers)).json()
    assert renamed["info"]["title"] == "Renamed API"
    before = cache.get(app, su)
    await make_collection(client, su_headers, name="later")
    assert cache.get(app, su) is not before

"""Error envelope, body parsing, limits, unknown routes and security headers (01, 10)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keepbase.app import App, create_app
from keepbase.core.config import Config
from tests.conftest import SU_EMAIL, SU_PASSWORD, _make_app, make_collection

Headers = dict[str, str]
GENERIC_400 = "Something went wrong while processing your request."
OPEN_RULES = {"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""}
ALL_FIELDS: list[dict[str, Any]] = [
    {"name": "title", "type": "text"},
    {"name": "body", "type": "editor"},
    {"name": "views", "type": "number"},
    {"name": "flag", "type": "bool"},
    {"name": "mail", "type": "email"},
    {"name": "site", "type": "url"},
    {"name": "day", "type": "date"},
    {"name": "stamp", "type": "autodate", "onCreate": True},
    {"name": "one", "type": "select", "values": ["a", "b"]},
    {"name": "many", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
    {"name": "meta", "type": "json"},
    {"name": "loc", "type": "geoPoint"},
    {"name": "doc", "type": "file"},
    {"name": "pw", "type": "password"},
]


def assert_envelope(r: httpx.Response, status: int, message: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["data", "message", "status"]
    assert body["status"] == status and body["message"] == message
    return dict(body["data"])


async def _things(client: httpx.AsyncClient, su: Headers) -> dict[str, Any]:
    return await make_collection(client, su, name="things", **OPEN_RULES, fields=ALL_FIELDS)


# --- bodies -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b'{"title":', b"{'title': 1}", b"nul", b"\xff\xfe", b'{"a":1}}'])
async def test_malformed_json(client: httpx.AsyncClient, su_headers: Headers, raw: bytes) -> None:
    await _things(client, su_headers)
    r = await client.post("/api/collections/things/records", content=raw,
                          headers={"Content-Type": "application/json"})
    assert assert_envelope(r, 400, GENERIC_400) == {}
    r = await client.get("/api/collections/things/records")
    assert r.json()["totalItems"] == 0


@pytest.mark.parametrize("raw", [b"[1,2]", b'"text"', b"42", b"true"])
async def test_non_object_json(client: httpx.AsyncClient, su_headers: Headers, raw: bytes) -> None:
    await _things(client, su_headers)
    r = await client.post("/api/collections/things/records", content=raw,
                          headers={"Content-Type": "application/json"})
    assert assert_envelope(r, 400, GENERIC_400) == {}


async def test_json_null_is_an_empty_object(client: httpx.AsyncClient, su_headers: Headers) -> None:
    # as PocketBase 0.40 (Go decodes `null` into a map as nothing): the record is created empty
    await _things(client, su_headers)
    r = await client.post("/api/collections/things/records", content=b"null",
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "image/png"])
async def test_unsupported_content_type(client: httpx.AsyncClient, su_headers: Headers, ctype: str) -> None:
    await _things(client, su_headers)
    r = await client.post("/api/collections/things/records", content=b"title=x", headers={"Content-Type": ctype})
    assert assert_envelope(r, 400, "Unsupported Content-Type.") == {}
    r = await client.post("/api/collections", content=b"x", headers={**su_headers, "Content-Type": ctype})
    assert_envelope(r, 400, "Unsupported Content-Type.")


async def test_malformed_json_payload_part(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await _things(client, su_headers)
    r = await client.post("/api/collections/things/records", files=[("@jsonPayload", (None, "{bad"))])
    assert_envelope(r, 400, GENERIC_400)


@pytest.mark.parametrize("engine_value", [
    {"title": "a\x00b"}, {"body": "<p>\x00</p>"}, {"mail": "a\x00@b.co"}, {"site": "http://a\x00.com"},
    {"one": "a\x00"}, {"many": ["a\x00"]}, {"meta": {"k": "\x00"}}, {"meta": "\x00"}, {"pw": "abc\x00def12"},
    {"day": "2024-01-01\x00"}, {"title\x00": "x"},
])
async def test_nul_bytes_rejected(client: httpx.AsyncClient, su_headers: Headers, engine_value: dict[str, Any]
                                  ) -> None:
    await _things(client, su_headers)
    r = await client.post("/api/collections/things/records", json=engine_value)
    assert r.status_code in (200, 400), r.text
    # an unknown key is ignored like any other; a password is only ever stored hashed
    if next(iter(engine_value)) not in ("title\x00", "pw"):
        assert r.status_code == 400, r.text
    listing = (await client.get("/api/collections/things/records")).json()
    assert all("\x00" not in str(item) for item in listing["items"])
    rec = (await client.post("/api/collections/things/records", json={})).json()
    r = await client.patch(f"/api/collections/things/records/{rec['id']}", json=engine_value)
    assert r.status_code in (200, 400), r.text


async def test_nul_byte_in_query_params(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await _things(client, su_headers)
    for query in ({"filter": "title = '\x00'"}, {"sort": "\x00"}, {"fields": "\x00"}):
        r = await client.get("/api/collections/things/records", params=query)
        assert r.status_code in (200, 400), (query, r.text)
    r = await client.get("/api/collections/things/records/a%00b")
    assert r.status_code in (400, 404), r.text


async def test_nul_byte_in_collection_payload(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.post("/api/collections", headers=su_headers, json={"name": "t\x00x"})
    assert r.status_code == 400
    r = await client.post("/api/collections", headers=su_headers,
                          json={"name": "t", "listRule": "id = '\x00'"})
    assert r.status_code in (200, 400), r.text


# --- body size ------------------------------------------------------------------------------------------

@pytest.fixture
async def small_client(engine: str, tmp_path: Path, request: pytest.FixtureRequest
                       ) -> AsyncIterator[tuple[httpx.AsyncClient, Headers]]:
    """An app with ``max_body_size=1024`` on the parametrized engine."""
    kb, db_url = _make_app(engine, tmp_path, request)
    cfg = Config(dir=kb.config.dir, db=kb.config.db, max_body_size=1024, pg_pool_size=4, sqlite_readers=4)
    kb.close()
    small = create_app(cfg)
    small.upsert_superuser(SU_EMAIL, SU_PASSWORD)
    try:
        transport = httpx.ASGITransport(app=small.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.post("/api/collections/_superusers/auth-with-password",
                             json={"identity": SU_EMAIL, "password": SU_PASSWORD})
            yield c, {"Authorization": r.json()["token"]}
    finally:
        small.close()
        if db_url:
            from tests.pg_server import drop_database

            drop_database(db_url)


async def test_body_over_limit(small_client: tuple[httpx.AsyncClient, Headers]) -> None:
    client, su = small_client
    r = await client.post("/api/collections", headers=su, json={"name": "big", "listRule": "x" * 2000})
    assert assert_envelope(r, 413, "Request entity too large.") == {}
    r = await client.get("/api/collections/big", headers=su)
    assert r.status_code == 404
    await make_collection(client, su, name="small", **OPEN_RULES, fields=[{"name": "title", "type": "text"}])
    # records get the default limit plus the per-field allowance; a text field adds nothing
    r = await client.post("/api/collections/small/records", json={"title": "x" * 2000})
    assert_envelope(r, 413, "Request entity too large.")
    r = await client.post("/api/collections/small/records", files=[("title", (None, "x" * 2000))])
    assert_envelope(r, 413, "Request entity too large.")
    r = await client.post("/api/collections/small/records", json={"title": "x" * 500})
    assert r.status_code == 200, r.text


async def test_body_over_limit_streamed(small_client: tuple[httpx.AsyncClient, Headers]) -> None:
    """No Content-Length: the limit still applies while reading."""
    client, su = small_client

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name":"streamed","listRule":"'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}'

    r = await client.post("/api/collections", headers={**su, "Content-Type": "application/json"},
                          content=chunks())
    assert_envelope(r, 413, "Request entity too large.")


# --- never a 500 -----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from([f["name"] for f in ALL_FIELDS] + ["id", "views+", "many-", "+many", "one+",
                                                                  "title:autogenerate", "collectionId", "x"])


@pytest.fixture
def garbage_app(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[App]:
    kb, db_url = _make_app(engine, tmp_path, request)
    try:
        yield kb
    finally:
        kb.close()
        if db_url:
            from tests.pg_server import drop_database

            drop_database(db_url)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies=st.lists(st.dictionaries(field_names, json_values, max_size=6), min_size=1, max_size=3))
def test_random_json_never_500(garbage_app: App, bodies: list[dict[str, Any]]) -> None:
    async def scenario() -> None:
        transport = httpx.ASGITransport(app=garbage_app.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            if garbage_app.collections.find("things") is None:
                garbage_app.collections.create({"name": "things", **OPEN_RULES, "fields": ALL_FIELDS})
            rec = (await client.post("/api/collections/things/records", json={})).json()
            for body in bodies:
                r = await client.post("/api/collections/things/records", json=body)
                assert r.status_code in (200, 400), (body, r.text)
                r = await client.patch(f"/api/collections/things/records/{rec['id']}", json=body)
                assert r.status_code in (200, 400), (body, r.text)
            r = await client.get("/api/collections/things/records?perPage=1000")
            assert r.status_code == 200

    asyncio.run(scenario())


# --- routing ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/nope", "/foo", "/api/health/", "/api/collections/x/records/",
                                  "/api/collections/x/nope"])
async def test_unknown_get_is_file_not_found(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert assert_envelope(r, 404, "File not found.") == {}


@pytest.mark.parametrize(("method", "path"), [("POST", "/api/nope"), ("PUT", "/foo"), ("DELETE", "/api/health"),
                                              ("PATCH", "/api/collections"), ("PUT", "/api/collections/x/records"),
                                              ("POST", "/api/health")])
async def test_unknown_other_method_is_not_found(client: httpx.AsyncClient, method: str, path: str) -> None:
    r = await client.request(method, path)
    assert assert_envelope(r, 404, "The requested resource wasn't found.") == {}


async def test_head_is_served_for_get(client: httpx.AsyncClient) -> None:
    r = await client.head("/api/health")
    assert r.status_code == 200 and r.content == b""


# --- headers ---------------------------------------------------------------------------------------------

SECURITY_HEADERS = {"x-xss-protection": "1; mode=block", "x-content-type-options": "nosniff",
                    "x-frame-options": "SAMEORIGIN", "cross-origin-opener-policy": "same-origin"}


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/health"), ("GET", "/api/nope"),
                                              ("POST", "/api/collections"), ("DELETE", "/x"),
                                              ("GET", "/api/collections/users/records")])
async def test_security_headers(client: httpx.AsyncClient, method: str, path: str) -> None:
    r = await client.request(method, path)
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, name
    assert "Origin" in r.headers.get_list("vary")


async def test_cors(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/health", headers={"Origin": "https://a.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
    r = await client.options("/api/collections/users/records", headers={
        "Origin": "https://a.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert r.status_code == 204 and r.content == b""
    assert r.headers["access-control-allow-headers"] == "authorization,content-type"
    assert r.headers["access-control-allow-methods"] == "GET,HEAD,PUT,PATCH,POST,DELETE"
    assert r.headers["access-control-allow-origin"] == "*"
    r = await client.options("/api/health")
    assert r.status_code == 204 and "access-control-allow-origin" not in r.headers


async def test_error_envelope_normalises_messages(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.post("/api/collections", headers=su_headers, json={"name": ""})
    body = r.json()
    assert body["data"]["name"] == {"code": "validation_required", "message": "Cannot be blank."}
    for err in body["data"].values():
        assert err["message"][0].isupper() and err["message"][-1] in ".?!"

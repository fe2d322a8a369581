"""Hostile input outside filters: duplicate JSON keys, invalid UTF-8 in the URL (both engines).

Expected answers are PocketBase 0.40.6's, checked on the binary: a repeated key in any JSON
object (top level, nested, inside a batch item's body, inside ``@jsonPayload``) makes the body
unreadable (400 with the endpoint's usual message, nothing written); keys differing in case are
distinct. Invalid UTF-8 in ``filter``/``sort`` is a 400 in both; PocketBase answers 200 for it in
``fields`` (nothing projected) and ``expand`` (ignored), where keepbase refuses any query value
that is not UTF-8 with 400; a path segment is 404 in both.
"""

from __future__ import annotations

import httpx
import orjson
import pytest

from keepbase.api.deps import loads_json
from tests.api.test_batch import count, enable, items_collection

Headers = dict[str, str]
GENERIC = {"data": {}, "message": "Something went wrong while processing your request.", "status": 400}
LOAD = {"data": {}, "message": "An error occurred while loading the submitted data.", "status": 400}
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("body", [
    b'{"name":"a","name":"b"}',
    b'{"name":"a","n":1,"n":1}',
    b'{"name":"a","data":{"k":1,"k":2}}',
    b'{"name":"a","data":[{"k":1},{"k":1 , "k" :2}]}',
    b'{"name" \n: "a", "name":"a"}',
])
async def test_duplicate_keys_in_a_record_body(client: httpx.AsyncClient, su_headers: Headers, body: bytes) -> None:
    await items_collection(client, su_headers)
    r = await client.post("/api/collections/items/records", content=body, headers=JSON)
    assert (r.status_code, r.json()) == (400, GENERIC)
    assert await count(client, su_headers) == 0


async def test_keys_differing_in_case_or_escaped_quotes_are_fine(client: httpx.AsyncClient,
                                                                  su_headers: Headers) -> None:
    await items_collection(client, su_headers)
    body = b'{"name":"a\\":\\" :","NAME":"b","n":2}'
    r = await client.post("/api/collections/items/records", content=body, headers=JSON)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == 'a":" :'


async def test_duplicate_keys_on_other_endpoints(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.post("/api/collections", content=b'{"name":"d1","name":"d2","type":"base"}',
                          headers={**su_headers, **JSON})
    assert r.status_code == 400
    assert (await client.get("/api/collections/d1", headers=su_headers)).status_code == 404
    assert (await client.get("/api/collections/d2", headers=su_headers)).status_code == 404
    r = await client.patch("/api/settings", content=b'{"meta":{"appName":"a","appName":"b"}}',
                           headers={**su_headers, **JSON})
    assert (r.status_code, r.json()) == (400, LOAD)
    r = await client.post("/api/collections/_superusers/auth-with-password", headers=JSON,
                          content=b'{"identity":"admin@example.com","identity":"admin@example.com",'
                                  b'"password":"adminpass123"}')
    assert (r.status_code, r.json()) == (400, LOAD)


async def test_duplicate_keys_in_a_batch(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await items_collection(client, su_headers)
    await enable(client, su_headers, maxRequests=10)
    read_error = {"data": {}, "message": "Failed to read the submitted batch data.", "status": 400}
    for body in (b'{"requests":[],"requests":[]}',
                 b'{"requests":[{"method":"POST","url":"/api/collections/items/records",'
                 b'"body":{"name":"a","name":"b"}}]}'):
        r = await client.post("/api/batch", content=body, headers=JSON)
        assert (r.status_code, r.json()) == (400, read_error)
    payload = '{"requests":[{"method":"POST","url":"/api/collections/items/records","body":{"n":1,"n":2,"name":"x"}}]}'
    r = await client.post("/api/batch", files={"@jsonPayload": (None, payload)})
    assert (r.status_code, r.json()) == (400, read_error)
    assert await count(client, su_headers) == 0


@pytest.mark.parametrize("param", ["filter", "sort"])
async def test_invalid_utf8_in_filter_and_sort(client: httpx.AsyncClient, su_headers: Headers, param: str) -> None:
    await items_collection(client, su_headers, listRule="")
    r = await client.get(f"/api/collections/items/records?{param}=%FF%FE")
    assert (r.status_code, r.json()) == (400, GENERIC)


async def test_invalid_utf8_elsewhere_is_refused(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await items_collection(client, su_headers, listRule="", viewRule="")
    assert (await client.post("/api/collections/items/records", json={"name": "x"})).status_code == 200
    # PocketBase answers 200 and ignores these; keepbase refuses them (docs/compatibility.md)
    for query in ("fields=%FF", "expand=%FF", "page=1&x=%C3%28", "perPage=%E2%82", "skipTotal=%ED%A0%80"):
        r = await client.get(f"/api/collections/items/records?{query}")
        assert (r.status_code, r.json()) == (400, GENERIC), query
    r = await client.get("/api/health?fields=%FF")
    assert (r.status_code, r.json()) == (400, GENERIC)
    # valid UTF-8, escaped or not, still works
    r = await client.get("/api/collections/items/records?filter=name%3D%22%C3%A9%22&fields=name")
    assert r.status_code == 200 and r.json()["items"] == []
    r = await client.get("/api/collections/items/records/%FF%FE")
    assert r.status_code == 404 and r.json()["status"] == 404
    r = await client.get("/api/collections/%FF/records")
    assert r.status_code == 404 and r.json()["message"] == "Missing collection context."


def test_loads_json_agrees_with_a_strict_parser() -> None:
    ok = [b'{"a":1,"b":{"a":1}}', b'[{"a":1},{"a":2}]', b'{"s":"\\":"}', b'null', b'{}', b'{"a":[[],{}]}']
    for raw in ok:
        assert loads_json(raw) == orjson.loads(raw)
    for raw in [b'{"a":1,"a":1}', b'[{"x":{"a":1,"a":2}}]', b'{"a":1,"a":"\\u0022:"}', b'{"a":1, "b":{}, "a":2}']:
        with pytest.raises(ValueError):
            loads_json(raw)

from __future__ import annotations

import httpx

from tests.conftest import make_collection


async def test_health(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/health")
    assert r.status_code == 200
    assert r.json() == {"message": "API is healthy.", "code": 200, "data": {}}


async def test_crud_roundtrip(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await make_collection(client, su_headers, name="posts", listRule="", viewRule="", createRule="",
                          updateRule="", deleteRule="",
                          fields=[{"name": "title", "type": "text", "required": True},
                                  {"name": "views", "type": "number"}])
    r = await client.post("/api/collections/posts/records", json={"title": "hello", "views": 3})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["title"] == "hello" and rec["views"] == 3 and len(rec["id"]) == 15
    assert list(rec) == sorted(rec)
    r = await client.patch(f"/api/collections/posts/records/{rec['id']}", json={"views+": 2})
    assert r.json()["views"] == 5
    r = await client.get("/api/collections/posts/records?perPage=1")
    assert r.json()["totalItems"] == 1
    r = await client.delete(f"/api/collections/posts/records/{rec['id']}")
    assert r.status_code == 204
    r = await client.get(f"/api/collections/posts/records/{rec['id']}")
    assert r.status_code == 404
    assert r.json() == {"data": {}, "message": "The requested resource wasn't found.", "status": 404}

"""POST /api/collections/meta/dry-run-view: the fields a view query would get and a sample of its
records under a temporary name, as the PocketBase 0.40 binary answers (checked on it); nothing saved."""

from __future__ import annotations

import httpx

from tests.conftest import make_collection

URL = "/api/collections/meta/dry-run-view"


async def _posts(client: httpx.AsyncClient, su: dict[str, str], n: int = 12) -> None:
    await make_collection(client, su, name="posts", fields=[
        {"name": "title", "type": "text"}, {"name": "n", "type": "number"}])
    for i in range(n):
        r = await client.post("/api/collections/posts/records", json={"title": f"t{i:02d}", "n": i}, headers=su)
        assert r.status_code == 200, r.text


async def test_fields_and_sample(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _posts(client, su_headers)
    r = await client.post(URL, json={"query": "select id, title, n from posts"}, headers=su_headers)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {"fields", "sample"}
    assert [(f["name"], f["type"]) for f in out["fields"]] == [("id", "text"), ("title", "text"), ("n", "number")]
    assert out["fields"][0]["primaryKey"] is True and out["fields"][1]["id"].startswith("_clone_")
    assert len(out["sample"]) == 10
    first = out["sample"][0]
    assert set(first) == {"collectionId", "collectionName", "id", "title", "n"}
    assert first["collectionName"].startswith("temp_view_") and len(first["collectionName"]) == 15
    assert first["collectionId"].startswith("pbc_")
    assert isinstance(first["n"], (int, float))
    r = await client.get("/api/collections")
    assert all(not c["name"].startswith("temp_view_") for c in r.json().get("items", []))


async def test_computed_id_is_text(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _posts(client, su_headers, n=2)
    r = await client.post(URL, json={"query": "select (ROW_NUMBER() OVER(ORDER BY title)) as id, title from posts"},
                          headers=su_headers)
    assert r.status_code == 200, r.text
    assert [(s["id"], s["title"]) for s in r.json()["sample"]] == [("1", "t00"), ("2", "t01")]


async def test_errors(client: httpx.AsyncClient, su_headers: dict[str, str], engine: str) -> None:
    await _posts(client, su_headers, n=0)
    r = await client.post(URL, json={}, headers=su_headers)
    assert r.status_code == 400
    assert r.json()["data"] == {"query": {"code": "validation_required", "message": "Cannot be blank."}}
    r = await client.post(URL, json={"query": "select title from posts"}, headers=su_headers)
    assert r.status_code == 400
    assert r.json()["message"] == ("Invalid view query. Raw error: \nmissing required id column (you can use "
                                   "`(ROW_NUMBER() OVER()) as id` if you don't have one).")
    r = await client.post(URL, json={"query": "select bad"}, headers=su_headers)
    assert r.status_code == 400
    assert r.json()["message"].startswith("Invalid view query. Raw error: \n")
    if engine == "sqlite":
        assert r.json()["message"] == "Invalid view query. Raw error: \nSQL logic error: no such column: bad (1)."
    r = await client.post(URL, json={"query": "select id from posts"})
    assert r.status_code == 401

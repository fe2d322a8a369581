"""View collections whose id is computed (``ROW_NUMBER() OVER()``, an integer column): the record
is found by its text id, filters and sort treat the id as text, and expand works through the view's
relation columns, as the PocketBase 0.40 binary answers (checked on it), on both engines."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import make_collection

VIEW = "SELECT (ROW_NUMBER() OVER(ORDER BY title)) AS id, title, author FROM posts"


async def _setup(client: httpx.AsyncClient, su: dict[str, str], n: int = 3) -> str:
    """``posts`` (title, author → users), ``n`` posts titled t01…, the first by one user; the view ``v``.
    Returns the user's id."""
    r = await client.post("/api/collections/users/records", headers=su, json={
        "email": "u1@example.com", "password": "pass123456", "passwordConfirm": "pass123456", "name": "U1"})
    assert r.status_code == 200, r.text
    user = str(r.json()["id"])
    await make_collection(client, su, name="posts", fields=[
        {"name": "title", "type": "text"},
        {"name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1}])
    for i in range(1, n + 1):
        body: dict[str, Any] = {"title": f"t{i:02d}", "author": user if i == 1 else ""}
        r = await client.post("/api/collections/posts/records", json=body, headers=su)
        assert r.status_code == 200, r.text
    await make_collection(client, su, name="v", type="view", listRule="", viewRule="", viewQuery=VIEW)
    return user


async def _ids(client: httpx.AsyncClient, query: str) -> list[str]:
    r = await client.get("/api/collections/v/records?fields=id&" + query)
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["items"]]


async def test_view_record_by_computed_id(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _setup(client, su_headers)
    r = await client.get("/api/collections/v/records/2")
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("id", "title", "collectionName")} == {"id": "2", "title": "t02",
                                                                          "collectionName": "v"}
    for missing in ("9", "01", "1.0", " 1", "abc"):
        r = await client.get(f"/api/collections/v/records/{missing}")
        assert r.status_code == 404, (missing, r.text)


async def test_view_id_filters_and_sort_as_text(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _setup(client, su_headers, n=11)
    assert await _ids(client, 'filter=id="1"') == ["1"]
    assert sorted(await _ids(client, 'filter=id!="1"&perPage=50')) == sorted(str(i) for i in range(2, 12))
    # text order, as PocketBase: "1" < "10" < "11" < "2"
    assert await _ids(client, "sort=id&perPage=4") == ["1", "10", "11", "2"]
    assert await _ids(client, "sort=-id&perPage=2") == ["9", "8"]
    assert await _ids(client, 'filter=id>"9"') == []
    assert sorted(await _ids(client, 'filter=id~"1"')) == ["1", "10", "11"]
    assert await _ids(client, "filter=id=1") == []  # a number never equals the text id (PocketBase: 0 items)


async def test_expand_through_view_relation(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    user = await _setup(client, su_headers)
    # users' view rule lets only the user itself see it: expanded for a superuser, not for a guest
    r = await client.get("/api/collections/v/records/1?expand=author")
    assert r.status_code == 200, r.text
    assert r.json()["author"] == user and not r.json().get("expand")
    r = await client.get("/api/collections/v/records/1?expand=author", headers=su_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["author"] == user
    assert body["expand"]["author"]["id"] == user
    assert body["expand"]["author"]["collectionName"] == "users"
    r = await client.get("/api/collections/v/records?expand=author&sort=id", headers=su_headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["id"] for i in items] == ["1", "2", "3"]
    assert items[0]["expand"]["author"]["id"] == user
    assert not items[1].get("expand")

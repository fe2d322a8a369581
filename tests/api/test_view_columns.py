"""View collections with computed, literal, aggregate and window columns: the field types inferred
and the values listed, as the PocketBase 0.40 binary answers them (checked on it), on both engines."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import make_collection

POSTS = [{"title": "a", "views": 1, "price": 1.5, "flag": True}, {"title": "b", "views": 2, "price": 3, "flag": False},
         {"title": "c", "views": 3, "price": 4.5, "flag": True}]


async def _posts(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    await make_collection(client, su, name="posts", listRule="", fields=[
        {"name": "title", "type": "text"}, {"name": "views", "type": "number"},
        {"name": "price", "type": "number"}, {"name": "flag", "type": "bool"}])
    for body in POSTS:
        r = await client.post("/api/collections/posts/records", json=body, headers=su)
        assert r.status_code == 200, r.text


async def _view(client: httpx.AsyncClient, su: dict[str, str], query: str) -> tuple[dict[str, Any], list[Any]]:
    """(name -> type, with onlyInt for numbers) and the listed items sorted by id, minus the collection keys."""
    c = await make_collection(client, su, name="v", type="view", listRule="", viewRule="",
                                viewQuery=query)
    types = {f["name"]: f["type"] + ("/int" if f.get("onlyInt") else "") for f in c["fields"]}
    r = await client.get("/api/collections/v/records?sort=id")
    assert r.status_code == 200, r.text
    items = [{k: v for k, v in i.items() if k not in ("collectionId", "collectionName")} for i in r.json()["items"]]
    return types, items


async def test_computed_column(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _posts(client, su_headers)
    types, items = await _view(client, su_headers, "SELECT id, (views * 2) AS double_views FROM posts")
    assert types == {"id": "text", "double_views": "json"}
    assert sorted(i["double_views"] for i in items) == [2, 4, 6]


async def test_literal_columns(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _posts(client, su_headers)
    types, items = await _view(client, su_headers, (
        "SELECT id, 'x' AS s, 1 AS one, 1.5 AS f, NULL AS nada, TRUE AS b, '{\"a\":1}' AS js, '[1,2]' AS arr, "
        "'true' AS tx, '' AS empty, '12' AS numstr, 'null' AS nullstr, ' 5 ' AS sp FROM posts"))
    assert set(types.values()) == {"text", "json"}
    expected = {"s": "x", "one": 1, "f": 1.5, "nada": None, "b": 1, "js": {"a": 1}, "arr": [1, 2], "tx": True,
                "empty": "", "numstr": 12, "nullstr": None, "sp": " 5 "}
    assert all({k: i[k] for k in expected} == expected for i in items)


async def test_row_number_id_is_text(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _posts(client, su_headers)
    types, items = await _view(client, su_headers, "SELECT (ROW_NUMBER() OVER()) AS id, title FROM posts")
    assert types == {"id": "text", "title": "text"}
    assert sorted(i["id"] for i in items) == ["1", "2", "3"]


async def test_aggregates_group_by(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _posts(client, su_headers)
    types, items = await _view(client, su_headers, (
        "SELECT (ROW_NUMBER() OVER()) AS id, title, COUNT(*) AS n, SUM(views) AS s, MAX(views) AS m, "
        "AVG(price) AS a, MIN(title) AS mt, MAX(price) AS mp FROM posts GROUP BY title"))
    assert types == {"id": "text", "title": "text", "n": "number/int", "s": "json", "m": "json", "a": "json",
                     "mt": "json", "mp": "json"}
    by_title = {i["title"]: i for i in items}
    assert {k: by_title["b"][k] for k in ("n", "s", "m", "a", "mt", "mp")} == {
        "n": 1, "s": 2, "m": 2, "a": 3, "mt": "b", "mp": 3}
    assert by_title["c"]["a"] == 4.5


async def test_grouped_id_and_whole_table_aggregates(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _posts(client, su_headers)
    types, items = await _view(client, su_headers, (
        "SELECT flag AS id, COUNT(id) AS n, AVG(views) AS av FROM posts GROUP BY flag"))
    assert types == {"id": "text", "n": "number/int", "av": "json"}
    assert items == [{"id": "0", "n": 1, "av": 2}, {"id": "1", "n": 2, "av": 2}]


async def test_window_columns(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _posts(client, su_headers)
    types, items = await _view(client, su_headers, (
        "SELECT id, (RANK() OVER (ORDER BY views)) AS r, (SUM(views) OVER ()) AS total, "
        "(LAG(title) OVER (ORDER BY views)) AS prev FROM posts"))
    assert types == {"id": "text", "r": "json", "total": "json", "prev": "json"}
    assert sorted((i["r"], i["total"], i["prev"] or "") for i in items) == [(1, 6, ""), (2, 6, "a"), (3, 6, "b")]


async def test_casts_and_copied_fields(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _posts(client, su_headers)
    types, items = await _view(client, su_headers, (
        "SELECT p.id, p.title AS t, p.views v, CAST(p.price AS INTEGER) AS pi, CAST(p.views AS REAL) AS r, "
        "CAST(p.title AS TEXT) AS tt, p.id AS self FROM posts p"))
    assert types == {"id": "text", "t": "text", "v": "number", "pi": "number/int", "r": "number", "tt": "text",
                     "self": "relation"}
    assert sorted((i["t"], i["v"], i["r"], i["tt"]) for i in items) == [
        ("a", 1, 1, "a"), ("b", 2, 2, "b"), ("c", 3, 3, "c")]
    assert all(i["self"] == i["id"] for i in items)


@pytest.mark.parametrize(("query", "message"), [
    ("SELECT ROW_NUMBER() OVER() AS id, title FROM posts",
     "Invalid query - invalid identifier parts [ROW_NUMBER() OVER() AS id]."),
    ("SELECT id, views + 0.5 AS half FROM posts", "Invalid query - invalid identifier parts [views + 0.5 AS half]."),
    ("SELECT id, views x y FROM posts", 'Invalid query - invalid identifier part - expected "as", got x.'),
])
async def test_unparenthesised_expressions_are_refused(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                       query: str, message: str) -> None:
    await _posts(client, su_headers)
    r = await client.post("/api/collections", json={"name": "v", "type": "view", "viewQuery": query},
                          headers=su_headers)
    assert r.status_code == 400, r.text
    assert r.json()["data"]["viewQuery"] == {"code": "validation_invalid_view_query", "message": message}


async def test_semicolon_in_a_literal_is_one_statement(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _posts(client, su_headers)
    _types, items = await _view(client, su_headers, "SELECT id, 'a;b' AS s FROM posts")
    assert {i["s"] for i in items} == {"a;b"}

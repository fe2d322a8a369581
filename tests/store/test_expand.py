"""``keepbase.store.expand`` below HTTP: path normalisation, merging, and one query per level."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import event

from keepbase.app import App
from keepbase.core.types import AuthInfo, RequestInfo
from keepbase.store.expand import expand_records, merge_expand, normalize_expands, unique_single
from keepbase.store.models import Collection
from tests.conftest import make_collection

OPEN = {"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""}


def test_normalize_expands() -> None:
    assert normalize_expands("a.b.c, a.b ,  test , ,test") == ["a.b.c", "test"]
    assert normalize_expands(" a . b ,.c.,") == ["a.b", "c"]
    assert normalize_expands(",, .") == []


def test_merge_expand() -> None:
    rec: dict[str, Any] = {"id": "r", "expand": {"a": {"id": "1", "expand": {"x": {"id": "x1"}}}}}
    merge_expand(rec, {"a": {"id": "1", "expand": {"y": {"id": "y1"}}}, "b": [{"id": "2"}]})
    assert rec["expand"] == {"a": {"id": "1", "expand": {"x": {"id": "x1"}, "y": {"id": "y1"}}},
                             "b": [{"id": "2"}]}
    merge_expand(rec, {"b": [{"id": "3"}]})
    assert rec["expand"]["b"] == [{"id": "2"}, {"id": "3"}]
    fresh: dict[str, Any] = {"id": "f"}
    merge_expand(fresh, {"k": {"id": "1"}})
    assert fresh["expand"] == {"k": {"id": "1"}}


def test_unique_single() -> None:
    c = Collection(id="c", name="c", indexes=[
        "CREATE UNIQUE INDEX idx_a ON c (a)", "CREATE UNIQUE INDEX idx_bc ON c (b, c)",
        "CREATE INDEX idx_d ON c (d)", "CREATE UNIQUE INDEX idx_e ON c (e) WHERE e != ''"])
    assert unique_single(c, "a") and unique_single(c, "A")
    assert not any(unique_single(c, n) for n in ("b", "c", "d", "e"))


async def test_one_query_per_level(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    authors = await make_collection(client, su_headers, name="authors", **OPEN,
                                    fields=[{"name": "name", "type": "text"}])
    posts = await make_collection(client, su_headers, name="posts", **OPEN, fields=[
        {"name": "author", "type": "relation", "collectionId": authors["id"]},
        {"name": "tags", "type": "relation", "collectionId": authors["id"], "maxSelect": 9}])
    await make_collection(client, su_headers, name="comments", **OPEN, fields=[
        {"name": "post", "type": "relation", "collectionId": posts["id"]}])
    aids = []
    for i in range(5):
        r = await client.post("/api/collections/authors/records", json={"name": f"a{i}"})
        aids.append(r.json()["id"])
    for i in range(20):
        r = await client.post("/api/collections/posts/records",
                              json={"author": aids[i % 5], "tags": aids[: i % 4]})
        await client.post("/api/collections/comments/records", json={"post": r.json()["id"]})
    c = app.collections.get("posts")
    items = app.records.list_records(c, _params(), RequestInfo()).items
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(app.db.reader, "before_cursor_execute", count)
    try:
        expand_records(app.records, c, items, "author,tags,comments_via_post.post.author", RequestInfo())
    finally:
        event.remove(app.db.reader, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 5  # author, tags, comments, comments→post, post→author
    assert all(len(i["expand"]["comments_via_post"]) == 1 for i in items)
    assert items[3]["expand"]["comments_via_post"][0]["expand"]["post"]["expand"]["author"]["name"] == "a3"
    assert [t["id"] for t in items[3]["expand"]["tags"]] == aids[:3]
    # superusers bypass; the RequestInfo context seen by rules is "expand"
    su = app.collections.get("_superusers")
    info = RequestInfo(auth=AuthInfo(su.id, su.name, {"id": "x"}))
    more = app.records.list_records(c, _params(), info).items
    expand_records(app.records, c, more, "author", info)
    assert info.context == "default" and all("author" in i["expand"] for i in more)


def _params() -> Any:
    from keepbase.store.records import ListParams

    return ListParams(per_page=100)

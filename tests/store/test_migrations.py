"""Schema changes are real migrations that keep data, on SQLite and PostgreSQL (store/migrate.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import inspect

from keepbase.app import App
from keepbase.core.errors import ApiError
from keepbase.core.types import AuthInfo, RequestInfo

SU = RequestInfo(auth=AuthInfo("pbc_3142635823", "_superusers", {"id": ""}))


def columns(app: App, table: str) -> list[str]:
    with app.db.read() as conn:
        return [c["name"] for c in inspect(conn).get_columns(table) if c["name"] != "_rowid"]


def index_names(app: App, table: str) -> set[str]:
    with app.db.read() as conn:
        return {i["name"] for i in inspect(conn).get_indexes(table) if i["name"]}


def records(app: App, name: str) -> list[dict[str, Any]]:
    from keepbase.store.records import ListParams

    c = app.collections.get(name)
    items = app.records.list_records(c, ListParams(per_page=1000), SU).items
    return list(orjson.loads(orjson.dumps(items)))  # multi/json values come out as orjson.Fragment


def add(app: App, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return app.records.create_record(app.collections.get(name), body, SU)


def fields_payload(app: App, name: str) -> list[dict[str, Any]]:
    return [f.to_dict() for f in app.collections.get(name).fields]


def test_rename_field_keeps_data(app: App) -> None:
    app.collections.create({"name": "posts", "fields": [{"name": "title", "type": "text"}]})
    rec = add(app, "posts", {"title": "kept"})
    fields = fields_payload(app, "posts")
    fields[1]["name"] = "headline"
    app.collections.update("posts", {"fields": fields})
    assert columns(app, "posts") == ["id", "headline"]
    assert records(app, "posts")[0]["headline"] == "kept"
    assert records(app, "posts")[0]["id"] == rec["id"]


def test_swap_two_field_names(app: App) -> None:
    app.collections.create({"name": "pairs", "fields": [{"name": "a", "type": "text"},
                                                        {"name": "b", "type": "text"}]})
    add(app, "pairs", {"a": "from a", "b": "from b"})
    fields = fields_payload(app, "pairs")
    fields[1]["name"], fields[2]["name"] = "b", "a"
    app.collections.update("pairs", {"fields": fields})
    row = records(app, "pairs")[0]
    assert row["b"] == "from a" and row["a"] == "from b"


def test_add_field_gets_type_default(app: App) -> None:
    app.collections.create({"name": "posts", "fields": [{"name": "title", "type": "text"}]})
    add(app, "posts", {"title": "old row"})
    fields = fields_payload(app, "posts") + [
        {"name": "views", "type": "number"}, {"name": "flag", "type": "bool"}, {"name": "meta", "type": "json"},
        {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2}, {"name": "loc", "type": "geoPoint"},
        {"name": "note", "type": "text"}]
    app.collections.update("posts", {"fields": fields})
    row = records(app, "posts")[0]
    assert row["title"] == "old row"
    assert row["views"] == 0 and row["flag"] is False and row["meta"] is None
    assert row["tags"] == [] and row["loc"] == {"lon": 0, "lat": 0} and row["note"] == ""
    add(app, "posts", {"title": "new row", "views": 3, "tags": ["a"]})
    assert [r["views"] for r in records(app, "posts")] == [0, 3]


def test_drop_field_drops_column(app: App) -> None:
    app.collections.create({"name": "posts", "fields": [{"name": "title", "type": "text"},
                                                        {"name": "gone", "type": "number"}]})
    add(app, "posts", {"title": "t", "gone": 5})
    app.collections.update("posts", {"fields": fields_payload(app, "posts")[:2]})
    assert columns(app, "posts") == ["id", "title"]
    row = records(app, "posts")[0]
    assert "gone" not in row and row["title"] == "t"
    # a new field with the old name starts empty
    app.collections.update("posts", {"fields": fields_payload(app, "posts") + [{"name": "gone", "type": "number"}]})
    assert records(app, "posts")[0]["gone"] == 0


@pytest.mark.parametrize("ftype", ["select", "relation"])
def test_max_select_one_to_many_and_back(app: App, ftype: str) -> None:
    target = app.collections.create({"name": "target"})
    ids = [add(app, "target", {})["id"] for _ in range(2)]
    opts: dict[str, Any] = ({"values": ids} if ftype == "select" else {"collectionId": target.id})
    app.collections.create({"name": "posts", "fields": [{"name": "pick", "type": ftype, **opts}]})
    add(app, "posts", {"pick": ids[0]})
    add(app, "posts", {})
    fields = fields_payload(app, "posts")
    fields[1]["maxSelect"] = 2
    app.collections.update("posts", {"fields": fields})
    assert [r["pick"] for r in records(app, "posts")] == [[ids[0]], []]
    first = records(app, "posts")[0]
    app.records.update_record(app.collections.get("posts"), first["id"], {"pick+": ids[1]}, SU)
    assert records(app, "posts")[0]["pick"] == [ids[0], ids[1]]
    fields[1]["maxSelect"] = 1
    app.collections.update("posts", {"fields": fields})
    assert [r["pick"] for r in records(app, "posts")] == [ids[1], ""]  # many → one keeps the last


def test_rename_collection_renames_table_and_indexes_survive(app: App) -> None:
    app.collections.create({"name": "posts", "fields": [{"name": "slug", "type": "text"}],
                            "indexes": ["CREATE UNIQUE INDEX idx_slug ON posts (slug)"]})
    add(app, "posts", {"slug": "a"})
    app.collections.update("posts", {"name": "articles"})
    with app.db.read() as conn:
        tables = set(inspect(conn).get_table_names())
    assert "articles" in tables and "posts" not in tables
    assert "idx_slug" in index_names(app, "articles")
    assert app.collections.get("articles").indexes == ["CREATE UNIQUE INDEX `idx_slug` ON `articles` (`slug`)"]
    with pytest.raises(ApiError) as info:
        add(app, "articles", {"slug": "a"})
    assert info.value.to_dict()["data"]["slug"]["code"] == "validation_not_unique"


def test_index_added_and_removed(app: App) -> None:
    app.collections.create({"name": "posts", "fields": [{"name": "a", "type": "text"}]})
    app.collections.update("posts", {"indexes": ["CREATE INDEX idx_a ON posts (a)"]})
    assert "idx_a" in index_names(app, "posts")
    app.collections.update("posts", {"indexes": []})
    assert "idx_a" not in index_names(app, "posts")


def test_failing_change_leaves_schema_and_data_untouched(app: App) -> None:
    """A unique index over duplicate values fails in the database: nothing of the change may stay."""
    app.collections.create({"name": "posts", "fields": [{"name": "title", "type": "text"},
                                                        {"name": "old", "type": "text"}]})
    add(app, "posts", {"title": "dup", "old": "x"})
    add(app, "posts", {"title": "dup", "old": "y"})
    before_collection = app.collections.get("posts").to_dict()
    before_columns = columns(app, "posts")
    before_rows = records(app, "posts")
    fields = fields_payload(app, "posts")
    fields[1]["name"] = "renamed"
    fields = [fields[0], fields[1], {"name": "added", "type": "number"}]  # drops "old" too
    with pytest.raises(ApiError) as info:
        app.collections.update("posts", {"name": "articles", "fields": fields,
                                         "indexes": ["CREATE UNIQUE INDEX idx_t ON articles (renamed)"]})
    assert info.value.status == 400
    assert info.value.message == "Failed to update collection."
    assert app.collections.get("posts").to_dict() == before_collection
    assert app.collections.find("articles") is None
    assert columns(app, "posts") == before_columns
    assert "idx_t" not in index_names(app, "posts")
    assert records(app, "posts") == before_rows
    # and a fresh read of the registry agrees with the cache
    app.collections.refresh()
    assert app.collections.get("posts").to_dict() == before_collection


def test_failed_create_leaves_no_table(app: App) -> None:
    with pytest.raises(ApiError):
        app.collections.create({"name": "ghost", "type": "view", "viewQuery": "SELECT id FROM missing_table"})
    with app.db.read() as conn:
        names = set(inspect(conn).get_table_names()) | set(inspect(conn).get_view_names())
    assert "ghost" not in names
    assert app.collections.find("ghost") is None

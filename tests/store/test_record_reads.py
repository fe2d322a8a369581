"""The hot read path (store/db.py ``compile_read``/``read_rows``, store/record_queries.py) on SQLite:
same rows as SQLAlchemy, the statement timeout, no lingering read transaction, schema changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Select, bindparam, literal_column, select

from keepbase.app import App, create_app
from keepbase.core.config import Config
from keepbase.core.errors import BadRequestError, NotFoundError
from keepbase.core.types import AuthInfo, RequestInfo
from keepbase.store.records import ListParams

GUEST = RequestInfo()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = create_app(Config(dir=str(tmp_path / "kb"), sqlite_readers=2, statement_timeout_ms=200))
    try:
        yield app
    finally:
        app.close()


def _superuser(app: App) -> RequestInfo:
    c = app.collections.get("_superusers")
    return RequestInfo(auth=AuthInfo(c.id, c.name, {"id": ""}))


def _posts(app: App) -> list[str]:
    app.collections.create({"name": "posts", "type": "base", "listRule": "", "viewRule": "",
                            "fields": [{"name": "title", "type": "text"}, {"name": "views", "type": "number"},
                                       {"name": "secret", "type": "text", "hidden": True}]})
    c = app.collections.get("posts")
    su = _superuser(app)
    return [app.records.create_record(c, {"title": f"t{i}", "views": i, "secret": "s"}, su)["id"] for i in range(5)]


def test_view_and_list_match_the_sqlalchemy_path(app: App) -> None:
    ids = _posts(app)
    c = app.collections.get("posts")
    record = app.records.find_record_by_id(c, ids[2], GUEST)
    assert record["title"] == "t2" and record["views"] == 2 and "secret" not in record
    table = app.records.table(c)
    with app.db.read() as conn:
        row = conn.execute(select(table.c.title, table.c.views).where(table.c.id == ids[2])).one()
    assert (record["title"], record["views"]) == tuple(row)
    page = app.records.list_records(c, ListParams(page=2, per_page=2), GUEST)
    assert [r["id"] for r in page.items] == ids[2:4]
    assert (page.total_items, page.total_pages) == (5, 3)
    assert "secret" in app.records.find_record_by_id(c, ids[0], _superuser(app))
    with pytest.raises(NotFoundError):
        app.records.find_record_by_id(c, "missing", GUEST)


def test_no_read_transaction_is_left_open(app: App) -> None:
    ids = _posts(app)
    c = app.collections.get("posts")
    app.records.find_record_by_id(c, ids[0], GUEST)
    app.records.list_records(c, ListParams(per_page=2), GUEST)
    assert len(app.db._spare) == 1
    assert not app.db._spare[0].dbapi_connection.in_transaction


def test_statement_timeout_applies(app: App) -> None:
    slow: Select[Any] = select(literal_column(
        "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
        "SELECT count(*) FROM c)") + bindparam("n"))
    q = app.db.compile_read(slow)
    with pytest.raises(BadRequestError) as info, app.db.read_rows() as reader:
        reader.scalar(q, {"n": 1})
    assert "took too long" in info.value.message
    with app.db.read_rows() as reader:  # the connection is usable again (re-armed)
        assert reader.scalar(app.db.compile_read(select(bindparam("n") + 1)), {"n": 1}) == 2


def test_schema_change_brings_new_statements(app: App) -> None:
    ids = _posts(app)
    c = app.collections.get("posts")
    assert "extra" not in app.records.find_record_by_id(c, ids[0], GUEST)
    app.collections.update("posts", {"fields": [*c.to_dict()["fields"], {"name": "extra", "type": "text"}]})
    c = app.collections.get("posts")
    assert app.records.find_record_by_id(c, ids[0], GUEST)["extra"] == ""
    assert app.records.list_records(c, ListParams(per_page=1), GUEST).items[0]["extra"] == ""


def test_rule_on_own_fields_is_shared_and_still_applies(app: App) -> None:
    from keepbase.store.resolver import is_shared_condition

    ids = _posts(app)
    app.collections.update("posts", {"viewRule": "views >= 3 && title != 't4'"})
    c = app.collections.get("posts")
    assert app.records.find_record_by_id(c, ids[3], GUEST)["title"] == "t3"
    for hidden in (ids[0], ids[4]):
        with pytest.raises(NotFoundError):
            app.records.find_record_by_id(c, hidden, GUEST)
    cond = app.records._cond(c, app.records.table(c), c.rules["viewRule"], GUEST)
    assert cond is not None and is_shared_condition(cond)
    other = RequestInfo(auth=AuthInfo(c.id, c.name, {"id": ids[0]}))  # a rule without @request: same for all
    assert app.records._cond(c, app.records.table(c), c.rules["viewRule"], other) is cond
    app.collections.update("posts", {"viewRule": "@request.auth.id != '' && views >= 3"})
    c = app.collections.get("posts")
    per_request = app.records._cond(c, app.records.table(c), c.rules["viewRule"], GUEST)
    assert per_request is not None and not is_shared_condition(per_request)
    with pytest.raises(NotFoundError):
        app.records.find_record_by_id(c, ids[3], GUEST)


def test_list_with_shared_rule_and_filter(app: App) -> None:
    ids = _posts(app)
    app.collections.update("posts", {"listRule": "views >= 1"})
    c = app.collections.get("posts")
    for _ in range(2):  # the second time from the cached statements
        page = app.records.list_records(c, ListParams(per_page=2, filter="title != 't3'"), GUEST)
        assert [r["id"] for r in page.items] == [ids[1], ids[2]]
        assert (page.total_items, page.total_pages) == (3, 2)
    page = app.records.list_records(c, ListParams(per_page=10), GUEST)
    assert [r["id"] for r in page.items] == ids[1:]

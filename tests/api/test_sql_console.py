"""POST /api/sql: PocketBase's answers (checked on the 0.40 binary) on SQLite, the same shapes on
PostgreSQL; one statement only; writes on the writer; the registry follows SQL edits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from keepbase.app import App
from keepbase.store.sql_console import go_float
from tests.conftest import make_collection


async def _sql(client: httpx.AsyncClient, su: dict[str, str], query: Any, status: int = 200) -> dict[str, Any]:
    r = await client.post("/api/sql", json={"query": query}, headers=su)
    assert r.status_code == status, r.text
    return dict(r.json())


async def _posts(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    await make_collection(client, su, name="posts", fields=[
        {"name": "title", "type": "text"}, {"name": "n", "type": "number"}])
    for title, n in (("a", 1), ("b", 2.5), ("c", 3)):
        r = await client.post("/api/collections/posts/records", json={"title": title, "n": n}, headers=su)
        assert r.status_code == 200, r.text


def test_go_float() -> None:
    cases = {3.0: "3", 1e20: "1e+20", 0.1 + 0.2: "0.30000000000000004", 1.5e-7: "1.5e-07", -0.0: "-0",
             1234567.5: "1.2345675e+06", 100000.0: "100000", 1e6: "1e+06", 0.0001: "0.0001", 1e-5: "1e-05",
             float("inf"): "+Inf", -2.5: "-2.5"}
    assert {k: go_float(k) for k in cases} == cases


async def test_select(client: httpx.AsyncClient, su_headers: dict[str, str], engine: str) -> None:
    await _posts(client, su_headers)
    out = await _sql(client, su_headers, "select title, n from posts order by title limit 2")
    assert set(out) == {"execTime", "affectedRows", "columns", "rows"}
    assert out["affectedRows"] == 0 and isinstance(out["execTime"], int)
    assert [c["name"] for c in out["columns"]] == ["title", "n"]
    assert all(c["nullable"] is True for c in out["columns"])
    assert out["columns"][0]["type"] == "TEXT"
    assert out["rows"] == [["a", "1"], ["b", "2.5"]]
    out = await _sql(client, su_headers, "select 1 as a, null as b, 2.5 as c, 'x%' as d")
    assert out["rows"] == [["1", None, "2.5", "x%"]]
    if engine == "sqlite":  # PocketBase: an expression has no declared type
        assert [c["type"] for c in out["columns"]] == ["", "", "", ""]


async def test_max_rows(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    out = await _sql(client, su_headers, "with recursive c(x) as (select 1 union all select x+1 from c "
                                         "where x < 1500) select x from c")
    assert len(out["rows"]) == 1000 and out["rows"][-1] == ["1000"]


async def test_errors(client: httpx.AsyncClient, su_headers: dict[str, str], engine: str) -> None:
    out = await _sql(client, su_headers, "bad", 400)
    assert out["message"].startswith("Failed to execute query. Raw error:\n")
    if engine == "sqlite":
        assert out["message"] == 'Failed to execute query. Raw error:\nSQL logic error: near "bad": syntax error (1).'
    for blank in ("", None):
        out = await _sql(client, su_headers, blank, 400)
        assert out["data"] == {"query": {"code": "validation_required", "message": "Cannot be blank."}}
    out = await _sql(client, su_headers, "select 1" + " " * 4993, 400)
    assert out["data"]["query"]["code"] == "validation_length_too_long"
    assert (await _sql(client, su_headers, "select 1" + " " * 4992))["rows"] == [["1"]]
    out = await _sql(client, su_headers, "  ", 400)
    assert out["message"] == "Failed to execute query. Raw error:\nempty query."
    out = await _sql(client, su_headers, 5, 400)
    assert out["message"] == "An error occurred while loading the submitted data."


async def test_superusers_only(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/sql", json={"query": "select 1"})
    assert r.status_code == 401, r.text


async def test_one_statement_only(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _posts(client, su_headers)
    await _sql(client, su_headers, "select 1; delete from posts", 400)
    await _sql(client, su_headers, "delete from posts where title = 'a'; delete from posts", 400)
    assert len((await _sql(client, su_headers, "select id from posts"))["rows"]) == 3


async def test_writes_and_registry(app: App, client: httpx.AsyncClient, su_headers: dict[str, str],
                                   engine: str) -> None:
    await _posts(client, su_headers)
    out = await _sql(client, su_headers, "update posts set n = n + 1 where title in ('a', 'b')")
    assert out["affectedRows"] == 2 and out["columns"] == [] and out["rows"] == []
    r = await client.get("/api/collections/posts/records?filter=title='a'", headers=su_headers)
    assert r.json()["items"][0]["n"] == 2
    # a write hidden in a WITH: refused by the read-only reader, then run on the writer
    out = await _sql(client, su_headers, "with x as (select 'c' as t) delete from posts where title in "
                                         "(select t from x)")
    assert out["affectedRows"] == 1
    # a collection row edited by SQL: the registry is reloaded after the statement
    await _sql(client, su_headers, "update _collections set rules = '{\"listRule\":\"\"}' where name = 'posts'")
    assert app.collections.get("posts").rules.get("listRule") == ""
    r = await client.get("/api/collections/posts/records")
    assert r.status_code == 200 and r.json()["totalItems"] == 2
    if engine == "sqlite":
        await _sql(client, su_headers, "pragma query_only = 0", 400)  # settings of keepbase's connections
        out = await _sql(client, su_headers, "pragma table_info(posts)")
        assert any(row[1] == "title" for row in out["rows"])


@pytest.mark.parametrize("query", ["select 1 as x"])
async def test_pg_extended_protocol_keeps_percent(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                  query: str) -> None:
    assert (await _sql(client, su_headers, "select '100%' as p, 'a%sb' as q"))["rows"] == [["100%", "a%sb"]]
    assert (await _sql(client, su_headers, query))["rows"] == [["1"]]

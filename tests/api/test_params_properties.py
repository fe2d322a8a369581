"""Property tests (issue 9): arbitrary list parameters and view queries always get a JSON answer
below 500 — never a connection error, a traceback or invalid JSON — on both engines."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keepbase.app import App
from tests.conftest import SU_EMAIL, SU_PASSWORD, _make_app

FIELDS = [{"name": "title", "type": "text"}, {"name": "views", "type": "number"},
          {"name": "flag", "type": "bool"}, {"name": "meta", "type": "json"}]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

numbers = st.integers(min_value=-(2**80), max_value=2**80).map(str)
text = st.text(max_size=24)
param_values = numbers | text | st.sampled_from(["", "0", "-1", "1e3", "2.5", " 3", "true", "tRue", "9223372036854775807",
                                                  "9223372036854775808", "-title,+views", "@random", "id,title:excerpt(3)"])
param_names = st.sampled_from(["page", "perPage", "sort", "filter", "fields", "expand", "skipTotal"])
COLUMNS = ["(views * 2) AS c", "'x' AS c", "NULL AS c", "1.5 AS c", "(views / 0) AS c", "'[1,' AS c",
           "(COUNT(*) OVER ()) AS c", "(SUM(views) OVER ()) AS c", "(RANK() OVER (ORDER BY views)) AS c",
           "CAST(views AS TEXT) AS c", "CAST(views AS INTEGER) AS c", "(title || '!') AS c", "meta AS c",
           "(MAX(views) OVER ()) AS c", "(LAG(title) OVER (ORDER BY id)) AS c", "'{\"a\":[1]}' AS c"]


TOKENS: dict[int, str] = {}  # app -> superuser token, one sign-in per app


@pytest.fixture
def seeded(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[App]:
    kb, db_url = _make_app(engine, tmp_path, request)
    kb.upsert_superuser(SU_EMAIL, SU_PASSWORD)
    kb.collections.create({"name": "posts", "listRule": "", "viewRule": "", "fields": FIELDS})

    async def seed() -> str:
        async with await _client(kb) as c:
            r = await c.post("/api/collections/_superusers/auth-with-password",
                             json={"identity": SU_EMAIL, "password": SU_PASSWORD})
            token = str(r.json()["token"])
            for i, title in enumerate(["a", "b", ""]):
                body = {"title": title, "views": i * 1.5, "flag": i % 2 == 0, "meta": {"k": [i]}}
                r = await c.post("/api/collections/posts/records", json=body, headers={"Authorization": token})
                assert r.status_code == 200, r.text
            return token

    TOKENS[id(kb)] = asyncio.run(seed())
    try:
        yield kb
    finally:
        TOKENS.pop(id(kb), None)
        kb.close()
        if db_url:
            from tests.pg_server import drop_database

            drop_database(db_url)


def _envelope_or_page(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    body = orjson.loads(r.content)  # always JSON
    if r.status_code >= 400:
        assert set(body) == {"data", "message", "status"} and body["status"] == r.status_code


async def _client(app: App) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app.asgi)  # a leaked exception would raise here
    return httpx.AsyncClient(transport=transport, base_url="http://t")


@SETTINGS
@given(params=st.lists(st.tuples(param_names, param_values), min_size=1, max_size=4))
def test_any_list_params_get_an_answer(seeded: App, params: list[tuple[str, str]]) -> None:
    async def scenario() -> None:
        async with await _client(seeded) as c:
            su = {"Authorization": TOKENS[id(seeded)]}
            for path in ("/api/collections/posts/records", "/api/collections", "/api/logs"):
                _envelope_or_page(await c.get(path, params=params, headers=su))
            _envelope_or_page(await c.get("/api/collections/posts/records", params=params))

    asyncio.run(scenario())


@SETTINGS
@given(columns=st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=3),
       params=st.lists(st.tuples(param_names, param_values), max_size=3))
def test_any_view_columns_list_as_json(seeded: App, columns: list[str], params: list[tuple[str, str]]) -> None:
    # a view query is SQL a superuser writes; these columns are fixed test data
    select_list = ", ".join(col.replace(" AS c", f" AS c{i}") for i, col in enumerate(columns))
    query = f"SELECT id, {select_list} FROM posts"  # noqa: S608

    async def scenario() -> None:
        async with await _client(seeded) as c:
            su = {"Authorization": TOKENS[id(seeded)]}
            # a fresh name per example: recreating a view under the same name with other column types
            # trips PostgreSQL's cached plans (a known, separate issue; see the report of issue 9)
            name = f"pv{len(seeded.collections.all())}"
            r = await c.post("/api/collections", headers=su, json={
                "name": name, "type": "view", "listRule": "", "viewRule": "", "viewQuery": query})
            _envelope_or_page(r)
            if r.status_code != 200:  # e.g. division by zero is a query error on PostgreSQL
                return
            r = await c.get(f"/api/collections/{name}/records")
            _envelope_or_page(r)
            if r.status_code != 200:  # division by zero fails only when rows are read, on PostgreSQL
                assert not seeded.db.is_sqlite and "/ 0" in query, (query, r.text)
                return
            items = orjson.loads(r.content)["items"]
            assert len(items) == 3 and all(isinstance(i["id"], str) for i in items)
            _envelope_or_page(await c.get(f"/api/collections/{name}/records", params=params))
            r = await c.get(f"/api/collections/{name}/records/{items[0]['id']}")
            _envelope_or_page(r)

    asyncio.run(scenario())

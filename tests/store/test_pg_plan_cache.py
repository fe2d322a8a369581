"""PostgreSQL: a view dropped and recreated under the same name with other column types is read
correctly at once by every pooled connection (no "cached plan must not change result type"), and
the hot reads still run as server-side prepared statements."""

from __future__ import annotations

import httpx
import pytest

from keepbase.app import App
from tests.conftest import make_collection

#: the view's column ``v`` as a number, as text, as a JSON value (each a different column type)
QUERIES = ["SELECT id, n AS v FROM posts", "SELECT id, title AS v FROM posts",
           "SELECT id, (n * 2) AS v FROM posts", "SELECT id, CAST(n AS INTEGER) AS v FROM posts"]
#: enough sequential reads for every pooled connection (4, handed out in turn) to prepare the statements
READS = 24


@pytest.fixture
def engine() -> str:
    return "postgres"


async def _read_all(client: httpx.AsyncClient, expected: list[object]) -> None:
    for i in range(READS):
        r = await client.get("/api/collections/v/records")
        assert r.status_code == 200, (i, r.text)
        assert sorted(map(str, (item["v"] for item in r.json()["items"]))) == sorted(map(str, expected)), i
        rid = r.json()["items"][0]["id"]
        r = await client.get(f"/api/collections/v/records/{rid}")
        assert r.status_code == 200, (i, r.text)


def _prepared_statements(app: App) -> int:
    """How many server-side prepared statements the pooled connections hold (checked out in turn)."""
    total = 0
    with app.db.read() as a, app.db.read() as b, app.db.read() as c, app.db.read() as d:
        for conn in (a, b, c, d):
            total += int(conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar_one())
    return total


async def test_view_column_types_change_under_pooled_prepared_statements(
        app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await make_collection(client, su_headers, name="posts", fields=[
        {"name": "title", "type": "text"}, {"name": "n", "type": "number"}])
    for title, n in (("a", 1.5), ("b", 2)):
        r = await client.post("/api/collections/posts/records", json={"title": title, "n": n}, headers=su_headers)
        assert r.status_code == 200, r.text
    view = await make_collection(client, su_headers, name="v", type="view", listRule="", viewRule="",
                                 viewQuery=QUERIES[0])
    expected: list[list[object]] = [[1.5, 2], ["a", "b"], [3, 4], [2, 2]]
    for round_ in range(2):
        for query, values in zip(QUERIES, expected, strict=True):
            if round_ or query != QUERIES[0]:
                r = await client.patch(f"/api/collections/{view['id']}", json={"viewQuery": query},
                                       headers=su_headers)
                assert r.status_code == 200, r.text
            await _read_all(client, values)
    assert _prepared_statements(app) > 0  # the hot reads are still prepared on the server

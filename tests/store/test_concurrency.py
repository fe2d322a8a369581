"""Concurrent writes on SQLite and PostgreSQL: no lost updates, every create lands."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from keepbase.app import App
from keepbase.core.types import AuthInfo, RequestInfo
from tests.conftest import make_collection

SU = RequestInfo(auth=AuthInfo("pbc_3142635823", "_superusers", {"id": ""}))
OPEN_RULES = {"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""}
THREADS = 8
PER_THREAD = 10


def _counter(app: App) -> tuple[Any, str]:
    c = app.collections.create({"name": "counters", **OPEN_RULES, "fields": [
        {"name": "views", "type": "number"}, {"name": "tags", "type": "select", "values": [str(i) for i in range(
            THREADS * PER_THREAD)], "maxSelect": THREADS * PER_THREAD}]})
    rec = app.records.create_record(c, {}, SU)
    return c, str(rec["id"])


def test_no_lost_increments_threads(app: App) -> None:
    c, rid = _counter(app)

    def bump(_: int) -> None:
        for _i in range(PER_THREAD):
            app.records.update_record(c, rid, {"views+": 1}, SU)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(bump, range(THREADS)))
    assert app.records.find_record_by_id(c, rid, SU)["views"] == THREADS * PER_THREAD


def test_no_lost_appends_threads(app: App) -> None:
    """``tags+`` is a read-modify-write of a JSON array: every append must survive."""
    c, rid = _counter(app)

    def append(t: int) -> None:
        for i in range(PER_THREAD):
            app.records.update_record(c, rid, {"tags+": str(t * PER_THREAD + i)}, SU)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(append, range(THREADS)))
    import orjson

    tags = orjson.loads(orjson.dumps(app.records.find_record_by_id(c, rid, SU)["tags"]))
    assert sorted(tags, key=int) == [str(i) for i in range(THREADS * PER_THREAD)]


def test_concurrent_creates_all_succeed(app: App) -> None:
    c = app.collections.create({"name": "items", **OPEN_RULES, "fields": [{"name": "n", "type": "number"}]})

    def make(i: int) -> str:
        return str(app.records.create_record(c, {"n": i}, SU)["id"])

    with ThreadPoolExecutor(THREADS) as pool:
        ids = list(pool.map(make, range(THREADS * PER_THREAD)))
    assert len(set(ids)) == THREADS * PER_THREAD
    from keepbase.store.records import ListParams

    result = app.records.list_records(c, ListParams(per_page=1000), SU)
    assert result.total_items == THREADS * PER_THREAD
    assert sorted(int(i["n"]) for i in result.items) == list(range(THREADS * PER_THREAD))


def test_reads_during_writes_see_consistent_rows(app: App) -> None:
    c, rid = _counter(app)
    seen: list[int] = []

    def bump(_: int) -> None:
        for _i in range(PER_THREAD):
            app.records.update_record(c, rid, {"views+": 1}, SU)

    def read(_: int) -> None:
        for _i in range(PER_THREAD):
            seen.append(int(app.records.find_record_by_id(c, rid, SU)["views"]))

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda i: bump(i) if i % 2 else read(i), range(THREADS)))
    assert all(0 <= v <= THREADS * PER_THREAD for v in seen)
    assert app.records.find_record_by_id(c, rid, SU)["views"] == (THREADS // 2) * PER_THREAD


async def test_no_lost_increments_http(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await make_collection(client, su_headers, name="hits", **OPEN_RULES, fields=[{"name": "views", "type": "number"}])
    rec = (await client.post("/api/collections/hits/records", json={})).json()
    url = f"/api/collections/hits/records/{rec['id']}"
    n = 40
    results = await asyncio.gather(*(client.patch(url, json={"views+": 1}) for _ in range(n)))
    assert [r.status_code for r in results] == [200] * n
    assert (await client.get(url)).json()["views"] == n
    creates = await asyncio.gather(*(client.post("/api/collections/hits/records", json={"views": i})
                                     for i in range(n)))
    assert [r.status_code for r in creates] == [200] * n
    r = await client.get("/api/collections/hits/records?perPage=1000")
    assert r.json()["totalItems"] == n + 1

"""Several nodes: two ``keepbase serve`` processes on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx

from .conftest import admin_token, make_collection, unique
from .servers import Server
from .sse import SSEClient

Nodes = tuple[Server, Server, str]


async def _setup(a: Server, b: Server) -> tuple[httpx.AsyncClient, httpx.AsyncClient, dict[str, str]]:
    token = await admin_token(a.url)
    ha = httpx.AsyncClient(base_url=a.url, timeout=30, headers={"Authorization": token})
    hb = httpx.AsyncClient(base_url=b.url, timeout=30, headers={"Authorization": token})
    return ha, hb, {"Authorization": token}


async def _public(http: httpx.AsyncClient) -> str:
    name = unique("nodes")
    await make_collection(http, http.headers["Authorization"], name=name, type="base", listRule="", viewRule="",
                          createRule="", updateRule="",
                          fields=[{"name": "title", "type": "text"}, {"name": "views", "type": "number"}])
    return name


async def _until(fn: Any, timeout: float = 3.0) -> float:
    """Poll ``fn`` until it returns True; the seconds it took."""
    started = time.monotonic()
    while True:
        try:
            if await fn():
                return time.monotonic() - started
        except httpx.HTTPError:
            pass  # a request racing the change (before the NOTIFY arrived) may fail; it is retried

        assert time.monotonic() - started < timeout, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_record_created_on_a_reaches_subscriber_on_b(pg_nodes: Nodes) -> None:
    a, b, _ = pg_nodes
    ha, hb, _su = await _setup(a, b)
    sub = SSEClient(b.url)
    try:
        coll = await _public(ha)
        await sub.connect()
        assert (await sub.subscribe(f"{coll}/*")).status_code == 204
        r = await ha.post(f"/api/collections/{coll}/records", json={"title": "from a"})
        assert r.status_code == 200
        ev = await sub.next(5)
        assert ev.event == f"{coll}/*" and ev.data == {"record": r.json(), "action": "create"}
        rid = r.json()["id"]
        assert (await ha.patch(f"/api/collections/{coll}/records/{rid}", json={"views": 3})).status_code == 200
        assert (await sub.next(5)).data["action"] == "update"
        assert (await ha.delete(f"/api/collections/{coll}/records/{rid}")).status_code == 204
        ev = await sub.next(5)
        assert ev.data["action"] == "delete" and ev.data["record"]["id"] == rid
        # a record over NOTIFY's 8000-byte payload limit still arrives, in full
        big = {"title": "x" * 4000, "data": {"blob": "y" * 20000}}
        r = await ha.patch(f"/api/collections/{coll}", json={"fields": [
            {"name": "title", "type": "text"}, {"name": "views", "type": "number"}, {"name": "data", "type": "json"}]})
        assert r.status_code == 200, r.text
        r = await ha.post(f"/api/collections/{coll}/records", json=big)
        assert r.status_code == 200, r.text
        ev = await sub.next(5)
        assert ev.data == {"record": r.json(), "action": "create"}
        assert (await ha.delete(f"/api/collections/{coll}/records/{r.json()['id']}")).status_code == 204
        ev = await sub.next(5)
        assert ev.data["action"] == "delete" and ev.data["record"]["data"] == big["data"]
    finally:
        await sub.aclose()
        await ha.aclose()
        await hb.aclose()


async def test_schema_change_on_a_is_seen_by_b(pg_nodes: Nodes) -> None:
    a, b, _ = pg_nodes
    ha, hb, _su = await _setup(a, b)
    try:
        assert (await hb.get("/api/collections/nodes_schema_probe")).status_code == 404  # warm b's cache
        name = unique("schema")
        await make_collection(ha, ha.headers["Authorization"], name=name, type="base", listRule="",
                              createRule="", fields=[{"name": "title", "type": "text"}])

        async def b_sees_collection() -> bool:
            return (await hb.get(f"/api/collections/{name}/records")).status_code == 200

        took = await _until(b_sees_collection)
        r = await ha.patch(f"/api/collections/{name}", json={"fields": [
            {"name": "title", "type": "text"}, {"name": "extra", "type": "number"}]})
        assert r.status_code == 200, r.text

        async def b_writes_new_field() -> bool:
            r = await hb.post(f"/api/collections/{name}/records", json={"title": "t", "extra": 7})
            return r.status_code == 200 and r.json().get("extra") == 7

        took = max(took, await _until(b_writes_new_field))
        assert took < 1.0, f"node b saw the schema change only after {took:.3f}s"
        assert (await ha.delete(f"/api/collections/{name}")).status_code == 204

        async def b_forgets() -> bool:
            return (await hb.get(f"/api/collections/{name}/records")).status_code == 404

        await _until(b_forgets)
    finally:
        await ha.aclose()
        await hb.aclose()


async def test_concurrent_increments_on_both_nodes_lose_nothing(pg_nodes: Nodes) -> None:
    a, b, _ = pg_nodes
    ha, hb, _su = await _setup(a, b)
    try:
        coll = await _public(ha)
        rid = (await ha.post(f"/api/collections/{coll}/records", json={"title": "counter"})).json()["id"]

        async def bump(http: httpx.AsyncClient) -> int:
            r = await http.patch(f"/api/collections/{coll}/records/{rid}", json={"views+": 1})
            return r.status_code

        statuses = await asyncio.gather(*[bump(ha if i % 2 else hb) for i in range(100)])
        assert statuses.count(200) == 100
        for http in (ha, hb):
            r = await http.get(f"/api/collections/{coll}/records/{rid}")
            assert r.json()["views"] == 100
    finally:
        await ha.aclose()
        await hb.aclose()


async def test_killing_a_node_loses_no_acknowledged_write(pg_nodes: Nodes, tmp_path: Any) -> None:
    from .servers import start_server

    a0, b, db_url = pg_nodes
    # a third, throwaway node on the same database is the one killed
    victim = start_server("victim", tmp_path / "victim", db_url)
    hv, hb, _su = await _setup(victim, b)
    sub = SSEClient(b.url)
    acked: list[str] = []
    try:
        coll = await _public(hb)
        await sub.connect()
        assert (await sub.subscribe(f"{coll}/*")).status_code == 204
        stop = asyncio.Event()

        async def writer(i: int) -> None:
            n = 0
            while not stop.is_set():
                try:
                    r = await hv.post(f"/api/collections/{coll}/records", json={"title": f"w{i}-{n}"})
                except httpx.HTTPError:
                    return  # the node is gone: this write was never acknowledged
                if r.status_code == 200:
                    acked.append(r.json()["id"])
                n += 1

        tasks = [asyncio.create_task(writer(i)) for i in range(8)]
        await asyncio.sleep(1.0)
        victim.stop(signal.SIGKILL)
        stop.set()
        await asyncio.gather(*tasks)
        assert len(acked) > 10
        found: set[str] = set()
        for page in range(1, 1000):
            r = await hb.get(f"/api/collections/{coll}/records", params={"perPage": 500, "page": page,
                                                                         "fields": "id", "skipTotal": 1})
            items = r.json()["items"]
            found |= {i["id"] for i in items}
            if len(items) < 500:
                break
        assert set(acked) <= found, f"{len(set(acked) - found)} acknowledged writes lost"
        # the survivor delivered the victim's committed writes in realtime, and keeps working
        seen: set[str] = set()
        while not set(acked) <= seen:
            seen.add((await sub.next(5)).data["record"]["id"])
        r = await hb.post(f"/api/collections/{coll}/records", json={"title": "after"})
        # Writes the victim committed but never acknowledged (killed before answering) may still be
        # queued ahead of "after": each of them must be a committed record, then "after" arrives.
        for _ in range(1000):
            got = (await sub.next(5)).data["record"]["id"]
            if got == r.json()["id"]:
                break
            assert got in found, f"event for {got}, which is not a committed record"
        else:
            raise AssertionError("the survivor never delivered the event of a write made after the kill")
    finally:
        victim.stop()
        await sub.aclose()
        await hv.aclose()
        await hb.aclose()
    assert a0.proc.poll() is None

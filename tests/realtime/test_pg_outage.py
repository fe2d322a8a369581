"""PostgreSQL goes away and comes back under two running ``keepbase serve`` nodes (issue 9).

A private cluster (``StoppableCluster``, never the shared session one) is stopped with two nodes
on it: node A answers 503 + ``Retry-After`` in PocketBase's envelope and its health says 503, and
each node's log gets one line when the outage starts and one when it ends, not a traceback per
retry. When the cluster is started again, nothing is restarted: writes through A in the first
seconds all reach a subscriber on node B, each exactly once (the change log), and a write
answered 503 reaches nobody.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pg_server import StoppableCluster, create_database
from tests.redis_server import RedisServer
from tests.server_process import ServerProcess, run_cli, stop_all

from .conftest import admin_token, make_collection, unique
from .servers import EMAIL, PASSWORD
from .sse import SSEClient

OUTAGE_START = "database unreachable"
OUTAGE_END = "database reachable again"
ENV = {"KEEPBASE_REALTIME_PING_INTERVAL": "1"}


class Nodes:
    def __init__(self, cluster: StoppableCluster, a: ServerProcess, b: ServerProcess) -> None:
        self.cluster, self.a, self.b = cluster, a, b


def _start_nodes(tmp_path: Path, extra_env: dict[str, str] | None = None) -> Iterator[Nodes]:
    cluster = StoppableCluster.create()
    servers: list[ServerProcess] = []
    try:
        url = create_database(cluster.url)
        code, out = run_cli("superuser", "upsert", EMAIL, PASSWORD, "--dir", str(tmp_path / "a"), "--db", url)
        assert code == 0, out
        env = {**ENV, **(extra_env or {})}
        for name in ("a", "b"):
            servers.append(ServerProcess.start(tmp_path, "--db", url, "--dir", str(tmp_path / name), env=env,
                                               name=f"node-{name}"))
        for s in servers:
            s.wait_ready(60)
        yield Nodes(cluster, servers[0], servers[1])
    finally:
        stop_all(servers)
        cluster.close()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    yield from _start_nodes(tmp_path)


def _count(log: str, needle: str) -> int:
    return sum(1 for line in log.splitlines() if needle in line)


async def _collect(sub: SSEClient, got: list[str], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            ev = await sub.next(0.5)
        except TimeoutError:
            continue
        if ev.data and isinstance(ev.data, dict) and ev.data.get("action") == "create":
            got.append(str(ev.data["record"]["id"]))


def _rid(i: int, tag: str) -> str:
    return f"{tag}{i:0{15 - len(tag)}d}"  # a valid 15-character record id


async def run_outage(nodes: Nodes) -> None:
    a, b = nodes.a, nodes.b
    token = await admin_token(a.url)
    ha = httpx.AsyncClient(base_url=a.url, timeout=30, headers={"Authorization": token})
    coll = unique("outage")
    await make_collection(ha, token, name=coll, type="base", listRule="", viewRule="", createRule="",
                          fields=[{"name": "title", "type": "text"}])
    sub = SSEClient(b.url)
    got: list[str] = []
    stop = asyncio.Event()
    collector: asyncio.Task[None] | None = None
    try:
        await sub.connect()
        assert (await sub.subscribe(f"{coll}/*")).status_code == 204
        collector = asyncio.create_task(_collect(sub, got, stop))
        before = [_rid(i, "before") for i in range(3)]
        for rid in before:
            assert (await ha.post(f"/api/collections/{coll}/records", json={"id": rid, "title": rid})).status_code == 200
        await _until(lambda: set(before) <= set(got), 10, "events before the outage")

        # --- the outage ---
        nodes.cluster.stop()
        stopped = time.monotonic()
        statuses: list[int] = []
        attempted_during: list[str] = []
        r_list = r_create = r_health = None
        i = 0
        while time.monotonic() - stopped < 5.0:  # ~5 s of clients knocking on both kinds of endpoints
            r_list = await ha.get(f"/api/collections/{coll}/records")
            rid = _rid(i, "down")
            attempted_during.append(rid)
            r_create = await ha.post(f"/api/collections/{coll}/records", json={"id": rid, "title": "x"})
            statuses += [r_list.status_code, r_create.status_code]
            i += 1
            await asyncio.sleep(0.05)
        r_health = await ha.get("/api/health")
        assert r_list is not None and r_create is not None
        assert set(statuses) == {503}, statuses
        for r in (r_list, r_create):
            assert r.status_code == 503
            assert r.json() == {"data": {}, "message": "The database is temporarily unavailable. Try again later.",
                                "status": 503}
            assert r.headers["retry-after"].isdigit() and int(r.headers["retry-after"]) > 0
        assert r_health.status_code == 503, r_health.text

        # --- back: nothing restarted; write at once ---
        nodes.cluster.start()
        started = time.monotonic()
        after = [_rid(i, "after") for i in range(10)]
        acked: list[str] = []
        failed: list[str] = []
        for rid in after:
            r = await ha.post(f"/api/collections/{coll}/records", json={"id": rid, "title": rid})
            (acked if r.status_code == 200 else failed).append(rid)
        wrote_in = time.monotonic() - started
        assert len(acked) == len(after), f"{failed} not acknowledged after the restart"
        assert wrote_in < 5.0, f"the writes after the restart took {wrote_in:.1f}s"
        await _until(lambda: set(acked) <= set(got), 20, "events written after the restart")
        await asyncio.sleep(2.5)  # a late duplicate (a re-read of the change log) would arrive by now
        assert sorted(got) == sorted(before + acked), "each acknowledged write exactly once, nothing else"
        assert not set(got) & set(attempted_during)
        healthy = time.monotonic()
        while (await ha.get("/api/health")).status_code != 200:
            assert time.monotonic() - healthy < 10, "health still 503 10 s after the database came back"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        if collector is not None:
            await collector
        await sub.aclose()
        await ha.aclose()

    for node in (a, b):
        await _until(lambda node=node: _count(node.output(), OUTAGE_END) >= 1, 10, f"{node.log.name}: outage end")
        log = node.output()
        assert _count(log, OUTAGE_START) == 1, log[-3000:]
        assert _count(log, OUTAGE_END) == 1, log[-3000:]
        tracebacks = _count(log, "Traceback")
        assert tracebacks == 0, f"{node.log.name}: {tracebacks} tracebacks:\n{log[-5000:]}"
        noisy = [ln for ln in log.splitlines() if re.search(r"\b(ERROR|WARNING)\b", ln)]
        assert len(noisy) <= 6, "\n".join(noisy)


async def _until(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_postgres_outage_two_nodes(nodes: Nodes) -> None:
    await run_outage(nodes)


@pytest.fixture
def redis_nodes(tmp_path: Path) -> Iterator[Nodes]:
    redis = RedisServer()
    redis.start()
    try:
        yield from _start_nodes(tmp_path, {"KEEPBASE_REDIS_URL": redis.url})
    finally:
        redis.close()


async def test_postgres_outage_two_nodes_with_redis(redis_nodes: Nodes) -> None:
    """Redis stays up and only wakes the nodes: the change log in PostgreSQL is what they read."""
    await run_outage(redis_nodes)

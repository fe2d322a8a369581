"""Several nodes with ``KEEPBASE_REDIS_URL``: Redis, not PostgreSQL, carries events and rate-limit counters.

Two ``keepbase serve`` processes share one PostgreSQL database and one throwaway redis-server of
this module (which a test restarts under them); one more runs on SQLite with Redis.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
import redis
import redis.asyncio

from keepbase.app import App, create_app
from keepbase.core.config import Config
from keepbase.realtime.pg_broker import CHANNEL as PG_CHANNEL
from keepbase.realtime.pg_broker import conninfo_kwargs
from keepbase.realtime.redis_broker import RedisBroker
from keepbase.security.redis_rate_limiter import RedisRateLimiter
from keepbase.store.instance import KEY as DATABASE_ID_KEY
from tests.redis_server import RedisServer

from .conftest import SERVER_ENV, _pg_url, admin_token, make_collection, unique
from .servers import Server, start_server, upsert_superuser
from .sse import SSEClient


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """This module's own Redis: a test restarts it."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def redis_nodes(tmp_path_factory: pytest.TempPathFactory,
                redis_server: RedisServer) -> Iterator[tuple[Server, Server, str]]:
    """Two ``keepbase serve`` processes on one PostgreSQL database, with Redis."""
    root = tmp_path_factory.mktemp("rt-redis-nodes")
    db_url, drop = _pg_url()
    env = {**SERVER_ENV, "KEEPBASE_REDIS_URL": redis_server.url}
    upsert_superuser(root / "a", db_url)
    a = start_server("redis-a", root / "a", db_url, env)
    try:
        b = start_server("redis-b", root / "b", db_url, env)
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b, db_url
    finally:
        a.stop()
        b.stop()
        drop(db_url)


def _pg_channel(db_url: str) -> str:
    with psycopg.connect(**conninfo_kwargs(db_url)) as conn:
        row = conn.execute("SELECT value FROM _params WHERE id = %s", (DATABASE_ID_KEY,)).fetchone()
    assert row is not None
    return f"keepbase:{row[0]}:events"


def _sqlite_channel(data_dir: Path) -> str:
    conn = sqlite3.connect(data_dir / "data.db")
    try:
        row = conn.execute("SELECT value FROM _params WHERE id = ?", (DATABASE_ID_KEY,)).fetchone()
    finally:
        conn.close()
    return f"keepbase:{row[0]}:events"


async def _subscribers(url: str, channel: str) -> int:
    client = redis.asyncio.Redis.from_url(url)
    try:
        counts = await client.pubsub_numsub(channel)
        return int(counts[0][1])
    finally:
        await client.aclose()


class RedisTap:
    """A plain Redis subscriber on a keepbase channel: sees what the nodes publish."""

    def __init__(self, url: str, channel: str) -> None:
        self.client = redis.asyncio.Redis.from_url(url)
        self.pubsub = self.client.pubsub()
        self.channel = channel

    async def __aenter__(self) -> RedisTap:
        await self.pubsub.subscribe(self.channel)
        assert (await self.pubsub.get_message(timeout=10))["type"] == "subscribe"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.client.aclose()

    async def messages(self, timeout: float = 15.0) -> AsyncIterator[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            item = await self.pubsub.get_message(timeout=1.0)
            if item is not None and item["type"] == "message":
                yield orjson.loads(item["data"].partition(b"|")[2])


async def _public(http: httpx.AsyncClient) -> str:
    name = unique("redis")
    await make_collection(http, http.headers["Authorization"], name=name, type="base", listRule="", viewRule="",
                          createRule="", updateRule="", deleteRule="",
                          fields=[{"name": "title", "type": "text"}, {"name": "data", "type": "json"}])
    return name


async def _clients(*servers: Server) -> list[httpx.AsyncClient]:
    token = await admin_token(servers[0].url)
    return [httpx.AsyncClient(base_url=s.url, timeout=60, headers={"Authorization": token}) for s in servers]


async def _wait_for(fn: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await fn():
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s"
        await asyncio.sleep(0.1)


async def test_record_created_on_a_reaches_b_through_redis(redis_nodes: tuple[Server, Server, str],
                                                          redis_server: RedisServer) -> None:
    a, b, db_url = redis_nodes
    channel = _pg_channel(db_url)
    assert await _subscribers(redis_server.url, channel) == 2  # both nodes listen on Redis
    ha, hb = await _clients(a, b)
    sub = SSEClient(b.url)
    pg = await psycopg.AsyncConnection.connect(**conninfo_kwargs(db_url))
    try:
        await pg.execute(f"LISTEN {PG_CHANNEL}")
        # no node LISTENs on PostgreSQL
        rows = await (await pg.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                       "AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'")).fetchone()
        assert rows == (0,)
        coll = await _public(ha)
        await sub.connect()
        assert (await sub.subscribe(f"{coll}/*")).status_code == 204
        async with RedisTap(redis_server.url, channel) as tap:
            r = await ha.post(f"/api/collections/{coll}/records", json={"title": "from a"})
            assert r.status_code == 200, r.text
            ev = await sub.next(30)
            assert ev.event == f"{coll}/*" and ev.data == {"record": r.json(), "action": "create"}
            seen = [m async for m in tap.messages(timeout=2)]
            # on PostgreSQL Redis only wakes the nodes: the record is read from the change log
            assert {"type": "changes"} in seen
            assert not any(m.get("type") == "record" for m in seen)
        # a record far over NOTIFY's 8000-byte limit arrives in full, and so does its delete
        big = {"title": "x" * 4000, "data": {"blob": "y" * 300_000}}
        r = await ha.post(f"/api/collections/{coll}/records", json=big)
        assert r.status_code == 200, r.text
        assert (await sub.next(30)).data == {"record": r.json(), "action": "create"}
        assert (await ha.delete(f"/api/collections/{coll}/records/{r.json()['id']}")).status_code == 204
        ev = await sub.next(30)
        assert ev.data["action"] == "delete" and ev.data["record"]["data"] == big["data"]
        # PostgreSQL carried none of it
        notifies = [n async for n in pg.notifies(timeout=1.0)]
        assert notifies == []
    finally:
        await pg.close()
        await sub.aclose()
        await ha.aclose()
        await hb.aclose()


async def test_schema_change_on_a_is_seen_by_b(redis_nodes: tuple[Server, Server, str]) -> None:
    a, b, _ = redis_nodes
    ha, hb = await _clients(a, b)
    try:
        assert (await hb.get("/api/collections/redis_schema_probe")).status_code == 404  # warm b's cache
        name = unique("schema")
        await make_collection(ha, ha.headers["Authorization"], name=name, type="base", listRule="",
                              createRule="", fields=[{"name": "title", "type": "text"}])

        async def b_sees_it() -> bool:
            return (await hb.get(f"/api/collections/{name}/records")).status_code == 200

        await _wait_for(b_sees_it, what="node b seeing the new collection")
        assert (await ha.delete(f"/api/collections/{name}")).status_code == 204

        async def b_forgets_it() -> bool:
            return (await hb.get(f"/api/collections/{name}/records")).status_code == 404

        await _wait_for(b_forgets_it, what="node b forgetting the deleted collection")
    finally:
        await ha.aclose()
        await hb.aclose()


async def test_brute_force_limit_counts_attempts_on_both_nodes(redis_nodes: tuple[Server, Server, str]) -> None:
    a, b, _ = redis_nodes
    bad = {"identity": f"nobody-{secrets.token_hex(3)}@example.com", "password": "wrong-password"}
    codes = []
    async with httpx.AsyncClient(timeout=60) as http:
        for i in range(11):  # 10 failures per identity are allowed, wherever they land
            r = await http.post(f"{(a, b)[i % 2].url}/api/collections/_superusers/auth-with-password", json=bad)
            codes.append(r.status_code)
        assert codes == [400] * 10 + [429]
        r = await http.post(f"{a.url}/api/collections/_superusers/auth-with-password", json=bad)
        assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 300


async def test_nodes_recover_after_redis_restarts(redis_nodes: tuple[Server, Server, str],
                                                  redis_server: RedisServer) -> None:
    a, b, db_url = redis_nodes
    channel = _pg_channel(db_url)
    ha, hb = await _clients(a, b)
    sub = SSEClient(b.url)
    try:
        coll = await _public(ha)
        await sub.connect()
        assert (await sub.subscribe(f"{coll}/*")).status_code == 204
        await asyncio.to_thread(redis_server.stop)
        await asyncio.to_thread(redis_server.start)

        async def both_resubscribed() -> bool:
            return await _subscribers(redis_server.url, channel) == 2

        await _wait_for(both_resubscribed, what="both nodes subscribing again")
        r = await ha.post(f"/api/collections/{coll}/records", json={"title": "after the restart"})
        assert r.status_code == 200, r.text
        ev = await sub.next(30)  # the SSE stream on b survived; the event came through the new Redis
        assert ev.data == {"record": r.json(), "action": "create"}
        # the rate limiters reconnect too (the counters were lost with the restart: a fresh start)
        bad = {"identity": f"nobody-{secrets.token_hex(3)}@example.com", "password": "wrong-password"}
        for http in (ha, hb):
            r = await http.post("/api/collections/_superusers/auth-with-password", json=bad)
            assert r.status_code == 400, r.text
    finally:
        await sub.aclose()
        await ha.aclose()
        await hb.aclose()


async def test_sqlite_node_with_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    upsert_superuser(tmp_path / "data")
    srv = start_server("redis-sqlite", tmp_path / "data", "", {**SERVER_ENV, "KEEPBASE_REDIS_URL": redis_server.url})
    (http,) = await _clients(srv)
    sub = SSEClient(srv.url)
    try:
        channel = _sqlite_channel(tmp_path / "data")
        assert await _subscribers(redis_server.url, channel) == 1
        coll = await _public(http)
        await sub.connect()
        assert (await sub.subscribe(f"{coll}/*")).status_code == 204
        async with RedisTap(redis_server.url, channel) as tap:
            r = await http.post(f"/api/collections/{coll}/records", json={"title": "sqlite"})
            assert r.status_code == 200, r.text
            assert (await sub.next(30)).data == {"record": r.json(), "action": "create"}
            seen = [m async for m in tap.messages(timeout=2)]
            assert any(m.get("type") == "record" and m["record"]["id"] == r.json()["id"] for m in seen)
    finally:
        await sub.aclose()
        await http.aclose()
        srv.stop()


# --- in-process apps: the settings rules, and which backends were chosen ---

@pytest.fixture
def redis_apps(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[App, App]]:
    db_url, drop = _pg_url()
    cfg = Config(db=db_url, pg_pool_size=3, redis_url=redis_server.url)
    a = create_app(cfg.with_values(dir=str(tmp_path / "a")))
    b = create_app(cfg.with_values(dir=str(tmp_path / "b")))
    try:
        yield a, b
    finally:
        a.close()
        b.close()
        drop(db_url)


async def test_settings_rule_counts_requests_to_both_nodes(redis_apps: tuple[App, App]) -> None:
    a, b = redis_apps
    for app in (a, b):
        assert isinstance(app.rate_limiter, RedisRateLimiter)
        assert isinstance(app.realtime.broker, RedisBroker)
    assert a.rate_limiter.prefix == b.rate_limiter.prefix  # one namespace: the database's
    a.settings.patch({"rateLimits": {"enabled": True, "rules": [
        {"label": "/api/health", "audience": "", "duration": 60, "maxRequests": 3}]}})
    b.settings.invalidate()
    statuses = []
    for app in (a, b, a, b, a):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.asgi), base_url="http://t") as c:
            statuses.append((await c.get("/api/health")).status_code)
    assert statuses == [200, 200, 200, 429, 429]
    with a.db.read() as conn:  # the counters are not in PostgreSQL
        from sqlalchemy import inspect

        assert "_kbRateLimits" not in inspect(conn).get_table_names()

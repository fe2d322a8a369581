"""The change log on a real PostgreSQL: out-of-order commits, pruning, and the pool after a restart.

Positions are taken in one order and committed in another (a transaction holding the lower
position commits last): a reader that only asked for "positions above the last one I saw" would
skip it for good. The feed reads by transaction horizon and must deliver both, once each.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from keepbase.app import App, create_app
from keepbase.core.config import Config
from keepbase.core.errors import BadRequestError, DatabaseUnavailableError
from keepbase.core.types import RequestInfo
from keepbase.realtime import changelog
from keepbase.realtime.changelog import ChangeFeed
from keepbase.realtime.pg_broker import conninfo_kwargs
from tests.pg_server import StoppableCluster, create_database, drop_database, ensure_postgres


@pytest.fixture
def pg_app(tmp_path: Path) -> Iterator[tuple[App, str]]:
    url = create_database(ensure_postgres())
    app = create_app(Config(dir=str(tmp_path / "kb"), db=url, pg_pool_size=4, access_log=False))
    try:
        yield app, url
    finally:
        app.close()
        drop_database(url)


def _collection(app: App) -> Any:
    return app.collections.create({"name": "notes", "type": "base", "listRule": "", "viewRule": "", "createRule": "",
                                   "fields": [{"name": "title", "type": "text"}]})


async def _until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_lower_position_committed_later_is_delivered_once(pg_app: tuple[App, str]) -> None:
    app, url = pg_app
    c = _collection(app)
    inner = app.db.journal
    assert inner is not None, "PostgreSQL apps journal their record changes"
    journaled = threading.Event()
    release = threading.Event()

    def held_journal(conn: Any, events: list[Any]) -> None:
        inner(conn, events)  # the row and its position exist now, uncommitted
        if any(e.record.get("title") == "slow" for e in events):
            journaled.set()
            assert release.wait(20)

    app.db.journal = held_journal
    got: list[dict[str, Any]] = []
    feed = ChangeFeed(app.db, conninfo_kwargs(url), node="observer")
    await feed.start(got.append)
    try:
        await asyncio.wait_for(feed.connected.wait(), 10)
        slow = asyncio.create_task(asyncio.to_thread(app.records.create_record, c, {"title": "slow"}, RequestInfo()))
        assert await asyncio.to_thread(journaled.wait, 10)
        await asyncio.to_thread(app.records.create_record, c, {"title": "fast"}, RequestInfo())
        feed.wake()
        await _until(lambda: len(got) == 1)
        assert got[0]["record"]["title"] == "fast"
        release.set()
        await slow
        await _until(lambda: len(got) == 2)
        with app.db.read() as conn:
            positions = dict(conn.execute(text(
                'SELECT payload::json->\'record\'->>\'title\', position FROM "_kbChanges"')).all())
        assert positions["slow"] < positions["fast"], "the slow write took its position first"
        for _ in range(3):  # later reads (wake-ups, the safety poll) must not deliver anything again
            feed.wake()
            await asyncio.sleep(0.2)
        reads = feed.reads
        await asyncio.sleep(changelog.POLL_EVERY + 0.5)
        assert feed.reads > reads, "the safety poll reads without a wake-up"
        assert [m["record"]["title"] for m in got] == ["fast", "slow"]
        assert all(m["type"] == "record" and m["action"] == "create" and m["collection"] == c.id for m in got)
        assert not feed.seen or min(feed.seen.values()) >= (feed.since or 0)
    finally:
        release.set()
        await feed.stop()


async def test_a_rolled_back_write_leaves_no_change(pg_app: tuple[App, str]) -> None:
    app, _ = pg_app
    c = _collection(app)

    def fail(e: Any) -> None:
        e.next()
        raise BadRequestError("no")

    app.hooks.record_create.bind(fail, id="fail")
    with pytest.raises(BadRequestError):
        app.records.create_record(c, {"title": "never"}, RequestInfo())
    app.hooks.record_create.unbind("fail")
    app.records.create_record(c, {"title": "kept"}, RequestInfo())
    with app.db.read() as conn:
        titles = conn.execute(text('SELECT payload::json->\'record\'->>\'title\' FROM "_kbChanges"')).scalars().all()
    assert titles == ["kept"]


async def test_old_changes_are_pruned(pg_app: tuple[App, str], monkeypatch: pytest.MonkeyPatch) -> None:
    app, url = pg_app
    c = _collection(app)
    monkeypatch.setattr(changelog, "PRUNE_EVERY", 0.0)
    monkeypatch.setattr(changelog, "RETENTION", 0.3)
    app.records.create_record(c, {"title": "old"}, RequestInfo())
    feed = ChangeFeed(app.db, conninfo_kwargs(url), node="observer")
    got: list[dict[str, Any]] = []
    await feed.start(got.append)
    try:
        await asyncio.wait_for(feed.connected.wait(), 10)
        feed._samples.clear()
        feed._samples.append((time.monotonic(), feed.since or 0))  # the horizon seen "RETENTION ago"
        await asyncio.sleep(0.4)
        app.records.create_record(c, {"title": "new"}, RequestInfo())
        feed.wake()

        def count() -> int:
            with app.db.read() as conn:
                return int(conn.execute(text('SELECT count(*) FROM "_kbChanges"')).scalar_one())

        await _until(lambda: [m["record"]["title"] for m in got] == ["new"])
        await _until(lambda: count() == 1)  # "old" (below that horizon) is gone, "new" stays
    finally:
        await feed.stop()


async def test_pool_after_a_restart_and_during_an_outage(tmp_path: Path) -> None:
    """Idle pooled connections die with the server: the first reads after it is back must not
    fail; while it is down, reads and writes are 503 and ``available`` says so."""
    cluster = StoppableCluster.create()
    app: App | None = None
    try:
        url = create_database(cluster.url)
        app = create_app(Config(dir=str(tmp_path / "kb"), db=url, pg_pool_size=4, access_log=False))
        c = _collection(app)
        rec = app.records.create_record(c, {"title": "t"}, RequestInfo())
        db = app.db

        def read_in_threads(n: int) -> list[BaseException | None]:
            out: list[BaseException | None] = [None] * n

            def one(i: int) -> None:
                try:
                    assert app is not None
                    app.records.find_record_by_id(c, rec["id"], RequestInfo())
                except BaseException as exc:
                    out[i] = exc

            threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return out

        assert read_in_threads(4) == [None] * 4  # four pooled connections, all idle now
        cluster.stop()
        cluster.start()
        assert db.available
        assert read_in_threads(4) == [None] * 4, "a dead pooled connection reached a request"
        assert db.available

        cluster.stop()
        with pytest.raises(DatabaseUnavailableError):
            app.records.find_record_by_id(c, rec["id"], RequestInfo())
        with pytest.raises(DatabaseUnavailableError):
            app.records.create_record(c, {"title": "lost"}, RequestInfo())
        assert not db.available and db.unavailable_since is not None and db.last_failure
        assert not db.ping()
        cluster.start()
        assert db.ping() and db.available and db.unavailable_since is None
        with pytest.raises(BadRequestError), db.read() as conn:  # a statement timeout stays 400, not 503
            conn.exec_driver_sql("SET LOCAL statement_timeout = 50")
            conn.exec_driver_sql("SELECT pg_sleep(1)")
        assert db.available
    finally:
        if app is not None:
            app.close()
        cluster.close()

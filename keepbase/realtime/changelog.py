"""The change log: record changes that realtime delivers, kept in PostgreSQL so no node misses one.

Why. A NOTIFY (or Redis PUBLISH) sent after a commit is lost when the sender or the receiver is
not connected at that moment, e.g. in the first seconds after PostgreSQL restarts, and nobody
learns about it. So each committed record change is also a row of ``_kbChanges``, written in
the same transaction as the change itself (``Database.journal``, called just before COMMIT):
if the write is acknowledged, its row exists. The broker only *wakes* the other nodes (a
``{"type": "changes"}`` message: NOTIFY sent by the same transaction, or a Redis PUBLISH after
it); each node's :class:`ChangeFeed` then reads the rows it has not dispatched yet. It also
reads after each (re)connection and every ``POLL_EVERY`` seconds, which covers lost wake-ups.

Which rows are new. Positions (a sequence) are not committed in order: a transaction holding
position 10 may commit after the one holding 11, so "position > last seen" would skip 10. Each
row also stores its transaction id (``xid8``, ``pg_current_xact_id()``). A read returns, in one
statement (one snapshot), the snapshot's ``xmin`` (the oldest transaction still running: every
transaction below it has finished) and the committed rows with ``xid >= since``. Every row whose
transaction is below ``xmin`` is final, so after dispatching what was read, ``since`` moves up
to ``xmin``; rows at or above it are read again next time and skipped by position (``seen``).
Nothing is skipped (a row that becomes visible later has ``xid >= xmin`` of every read before
its commit) and nothing is delivered twice. Rows a node wrote itself are skipped: it delivered
them locally at once.

Pruning. Rows are only needed until every node has read them: every ``PRUNE_EVERY`` seconds a
node deletes the rows below the ``xmin`` it saw ``RETENTION`` seconds ago. A node cut off from
the database for longer than that misses the changes made meanwhile by the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, text

from ..store.db import Database
from .access import stored_values
from .broker import Deliver, Message
from .supervisor import Supervisor

log = logging.getLogger("keepbase.realtime")

TABLE = "_kbChanges"
POLL_EVERY = 2.0  # seconds between safety reads without a wake-up
PRUNE_EVERY = 60.0
RETENTION = 900.0  # seconds a change stays readable
WAKE: Message = {"type": "changes"}
_LOCK_KEY = 7_240_117_001  # pg_advisory_xact_lock key: one node creates the table at a time

_DDL = [
    'CREATE TABLE IF NOT EXISTS "_kbChanges" ('
    " position BIGSERIAL PRIMARY KEY,"
    " xid XID8 NOT NULL DEFAULT pg_current_xact_id(),"
    " node TEXT NOT NULL,"
    " payload TEXT NOT NULL)",
    'CREATE INDEX IF NOT EXISTS "_kbChanges_xid" ON "_kbChanges" (xid)',
]
# one round trip per transaction: the rows (in order) and, when asked, the wake-up NOTIFY
_INSERT = text(
    'WITH ins AS (INSERT INTO "_kbChanges" (node, payload) '
    "SELECT CAST(:node AS TEXT), t.p FROM unnest(CAST(:payloads AS TEXT[])) WITH ORDINALITY AS t(p, i) ORDER BY t.i "
    "RETURNING 1) "
    "SELECT pg_notify(:channel, :wake) FROM (SELECT 1) AS one WHERE :channel <> '' AND EXISTS (SELECT 1 FROM ins)"
)
_READ = (
    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text, c.position, c.xid::text, c.payload "
    'FROM (SELECT 1) AS one LEFT JOIN "_kbChanges" AS c ON c.xid >= %s::xid8 AND c.node <> %s '
    "ORDER BY c.position"
)
_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text"
_PRUNE = 'DELETE FROM "_kbChanges" WHERE xid < %s::xid8'


def ensure_table(db: Database) -> None:
    with db.write() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        for ddl in _DDL:
            conn.execute(text(ddl))


def message_of(event: Any) -> Message | None:
    """The broker message of a record change (a ``RecordEvent``), or None if realtime ignores it."""
    c = event.collection
    if c is None or c.is_view:
        return None
    return {"type": "record", "action": event.action, "collection": c.id, "record": stored_values(c, event.record)}


JOURNALED = "_kb_journaled"  # attribute set on a RecordEvent once its change-log row is written


def journal_writer(node: str, channel: str, wake_payload: str) -> Callable[[Connection, list[Any]], None]:
    """The ``Database.journal`` function: the transaction's record changes become rows of the change
    log, with a NOTIFY on ``channel`` (none when ``channel`` is "", e.g. when Redis wakes nodes)."""

    def journal(conn: Connection, events: list[Any]) -> None:
        payloads: list[str] = []
        for event in events:
            message = message_of(event)
            if message is not None:
                payloads.append(orjson.dumps(message).decode())
        if not payloads:
            return
        conn.execute(_INSERT, {"node": node, "payloads": payloads, "channel": channel, "wake": wake_payload})
        for event in events:
            setattr(event, JOURNALED, True)

    return journal


class ChangeFeed:
    """Reads the change log on its own connection and hands new rows of other nodes to ``deliver``."""

    def __init__(self, db: Database, connect_kwargs: dict[str, Any], node: str) -> None:
        self.db = db
        self.connect_kwargs = connect_kwargs
        self.node = node
        self.since: int | None = None  # every row with a lower xid has been dispatched
        self.seen: dict[int, int] = {}  # position -> xid, of dispatched rows with xid >= since
        self.reads = 0
        self.dispatched = 0
        self._deliver: Deliver | None = None
        self._wake = asyncio.Event()
        self._samples: deque[tuple[float, int]] = deque()  # (monotonic time, xmin) for pruning
        self._supervisor = Supervisor(max_delay=2.0, quiet=db.connection_failed)
        self.connected = asyncio.Event()

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._wake = asyncio.Event()  # bound to this event loop (an App may be started again on another)
        self.connected = asyncio.Event()
        self._supervisor.start("pg-changes", self._run)

    async def stop(self) -> None:
        await self._supervisor.stop()
        self._deliver = None

    def wake(self) -> None:
        """Read soon (on the event loop)."""
        self._wake.set()

    async def _run(self) -> None:
        conn = await psycopg.AsyncConnection.connect(**self.connect_kwargs)
        try:
            if self.since is None:  # first start: changes from before it are not ours to deliver
                cur = await conn.execute(_HORIZON)
                row = await cur.fetchone()
                assert row is not None
                self.since = int(row[0])
            self.db.reachable()
            self.connected.set()
            last_prune = time.monotonic()
            while True:
                self._wake.clear()
                await self._read(conn)
                now = time.monotonic()
                if now - last_prune >= PRUNE_EVERY:
                    last_prune = now
                    await self._prune(conn, now)
                try:
                    await asyncio.wait_for(self._wake.wait(), POLL_EVERY)
                except TimeoutError:
                    pass
        finally:
            self.connected.clear()
            await conn.close()

    async def _read(self, conn: psycopg.AsyncConnection[Any]) -> None:
        assert self.since is not None
        cur = await conn.execute(_READ, (str(self.since), self.node))
        rows = await cur.fetchall()
        self.reads += 1
        xmin = max(int(rows[0][0]), self.since) if rows else self.since
        seen = self.seen
        for _, position, xid, payload in rows:
            if position is None or position in seen:
                continue
            seen[position] = int(xid)
            try:
                message: Message = orjson.loads(payload)
            except orjson.JSONDecodeError:
                log.warning("realtime: malformed change-log row %d ignored", position)
                continue
            self.dispatched += 1
            if self._deliver is not None:
                self._deliver(message)
        if xmin > self.since:
            self.since = xmin
            self.seen = {p: x for p, x in seen.items() if x >= xmin}
        now = time.monotonic()
        if not self._samples or now - self._samples[-1][0] >= 10.0:
            self._samples.append((now, xmin))

    async def _prune(self, conn: psycopg.AsyncConnection[Any], now: float) -> None:
        below: int | None = None
        while self._samples and now - self._samples[0][0] >= RETENTION:
            below = self._samples.popleft()[1]
        if below is not None:
            await conn.execute(_PRUNE, (str(below),))

"""Rate-limit counters shared by every node through PostgreSQL.

Same fixed-window semantics as ``security.rate_limiter.MemoryRateLimiter`` (PocketBase's), but
the window of a key lives in one row, read and updated under ``SELECT … FOR UPDATE`` in one
short transaction, so N nodes behind a load balancer count together: no node can hand out a
token another node already spent. Used automatically when keepbase runs on PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from .db import Database
from .schema import text_type

_MD = MetaData()
COUNTERS = Table(
    "_kbRateLimits", _MD,
    Column("key", text_type(), primary_key=True),
    Column("available", Integer, nullable=False),
    Column("last", BigInteger, nullable=False),
)


class PostgresRateLimiter:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.engine = db.writer
        self.clock = clock
        _MD.create_all(self.engine, checkfirst=True)

    def consume(self, key: str, max_requests: int, duration: int) -> int:
        now = int(self.clock())
        t = COUNTERS
        with self.engine.begin() as conn:  # its own short transaction, never the caller's
            conn.execute(pg_insert(t).values(key=key, available=max_requests, last=0)
                         .on_conflict_do_nothing(index_elements=[t.c.key]))
            available, last = conn.execute(
                select(t.c.available, t.c.last).where(t.c.key == key).with_for_update()).one()
            if now - last >= duration:
                available = max_requests
            if available > 0:
                conn.execute(update(t).where(t.c.key == key).values(available=available - 1, last=now))
                return 0
            return int(max(1, duration - (now - last)))

    def release(self, key: str) -> None:
        t = COUNTERS
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.key == key).values(available=t.c.available + 1))

    def reset(self, prefix: str = "") -> None:
        t = COUNTERS
        with self.engine.begin() as conn:
            if prefix:
                conn.execute(delete(t).where(t.c.key.startswith(prefix, autoescape=True)))
            else:
                conn.execute(delete(t))

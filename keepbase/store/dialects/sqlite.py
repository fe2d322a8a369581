"""SQLite engines: one writer connection, a pool of readers.

Why one writer: SQLite allows a single writer at a time anyway, and queueing writes on one
connection (``BEGIN IMMEDIATE`` under a lock) avoids SQLITE_BUSY storms. It is also what keeps
us clear of the WAL-reset corruption bug present in the SQLite 3.40.1 that Python's ``sqlite3``
links here (fixed upstream in 3.51.3): that bug needs two connections writing or checkpointing
the WAL concurrently. Here only the writer writes and only the writer checkpoints — readers are
opened with ``wal_autocheckpoint=0`` and ``query_only``, and the writer is opened first and
closed last, so a reader is never the last connection to close (which would checkpoint).
No mmap (``mmap_size=0``): an I/O error on a mapped page would kill the process.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import QueuePool, StaticPool

BUSY_TIMEOUT_MS = 10000


class TimedConnection(sqlite3.Connection):
    """A sqlite3 connection whose statements are interrupted past a deadline (statement timeout)."""

    deadline: float = 0.0
    timeout_ms: int = 0

    def install_timeout(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self.set_progress_handler(self._progress, 20000)

    def arm(self) -> None:
        self.deadline = time.monotonic() + self.timeout_ms / 1000 if self.timeout_ms else 0.0

    def _progress(self) -> int:
        return 1 if self.deadline and time.monotonic() > self.deadline else 0


def _pragmas(dbapi_conn: sqlite3.Connection, *, sync: str, reader: bool) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = " + ("FULL" if sync == "full" else "NORMAL"))
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA mmap_size = 0")
    cur.execute("PRAGMA temp_store = MEMORY")
    cur.execute("PRAGMA cache_size = -16000")
    if reader:
        cur.execute("PRAGMA wal_autocheckpoint = 0")
        cur.execute("PRAGMA query_only = 1")
    cur.close()


def _engine(path: Path, *, reader: bool, sync: str, pool_size: int, timeout_ms: int) -> Engine:
    url = f"sqlite+pysqlite:///{path}"
    kwargs: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "isolation_level": None, "factory": TimedConnection}
    }
    if reader:
        kwargs.update(poolclass=QueuePool, pool_size=pool_size, max_overflow=pool_size * 2)
    else:
        kwargs.update(poolclass=StaticPool)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _rec: Any) -> None:
        dbapi_conn.isolation_level = None
        _pragmas(dbapi_conn, sync=sync, reader=reader)
        if isinstance(dbapi_conn, TimedConnection):
            dbapi_conn.install_timeout(timeout_ms)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        dbapi_conn = conn.connection.dbapi_connection
        if isinstance(dbapi_conn, TimedConnection):
            dbapi_conn.arm()
        conn.exec_driver_sql("BEGIN" if reader else "BEGIN IMMEDIATE")

    return engine


def create_engines(path: Path, *, sync: str, readers: int, timeout_ms: int) -> tuple[Engine, Engine]:
    """(writer, reader) engines for one database file. Open the writer first."""
    writer = _engine(path, reader=False, sync=sync, pool_size=1, timeout_ms=timeout_ms)
    with writer.connect() as conn:  # creates the file and switches it to WAL before any reader
        conn.exec_driver_sql("SELECT 1")
    reader = _engine(path, reader=True, sync=sync, pool_size=readers, timeout_ms=timeout_ms)
    return writer, reader

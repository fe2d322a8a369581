"""The Database: engines, transactions and the writer queue, for SQLite and PostgreSQL.

``db.read()`` yields a connection inside a read transaction (a consistent snapshot).
``db.write()`` yields a connection inside a write transaction; it commits when the block
exits cleanly and rolls back otherwise. On SQLite every write goes through the one writer
connection, serialised by a lock (``BEGIN IMMEDIATE``). Side effects registered with
``after_commit`` run only after a successful commit; those registered with ``on_rollback``
run only when the work is rolled back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from ..core.errors import BadRequestError
from .dialects.postgres import create_pg_engine
from .dialects.sqlite import create_engines


class Database:
    def __init__(self, *, sqlite_path: Path | None = None, pg_url: str = "", sync: str = "full",
                 readers: int = 8, pool_size: int = 10, timeout_ms: int = 10000) -> None:
        self._write_lock = threading.RLock()
        self._local = threading.local()
        if pg_url:
            self.dialect = "postgresql"
            engine = create_pg_engine(pg_url, pool_size=pool_size, timeout_ms=timeout_ms)
            self.writer: Engine = engine
            self.reader: Engine = engine
        else:
            if sqlite_path is None:
                raise ValueError("sqlite_path is required without a PostgreSQL URL")
            self.dialect = "sqlite"
            self.writer, self.reader = create_engines(
                sqlite_path, sync=sync, readers=readers, timeout_ms=timeout_ms
            )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def _current(self) -> Connection | None:
        return getattr(self._local, "conn", None)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        current = self._current()
        if current is not None:  # reuse an enclosing write transaction
            yield current
            return
        with translate_errors(), self.reader.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One unit of work. Nested calls on the same thread reuse the outer transaction."""
        current = self._current()
        if current is not None:
            yield current
            return
        hooks: list[Callable[[], None]] = []
        rollbacks: list[Callable[[], None]] = []
        lock = self._write_lock if self.is_sqlite else _NULL_LOCK
        try:
            with lock, translate_errors():
                with self.writer.connect() as conn:
                    conn.info["after_commit"] = hooks
                    conn.info["on_rollback"] = rollbacks
                    self._local.conn = conn
                    try:
                        with conn.begin():
                            yield conn
                    finally:
                        self._local.conn = None
                        conn.info.pop("after_commit", None)
                        conn.info.pop("on_rollback", None)
        except BaseException:
            _run_quietly(rollbacks)
            raise
        for hook in hooks:
            hook()

    def run_group(self, fns: list[Callable[[], Any]], tags: list[Any]) -> list[tuple[Any, Any, BaseException | None,
                                                                                  list[Callable[[], None]]]]:
        """Run several write jobs in one transaction, each in a savepoint; commit once.

        Returns (tag, result, error, after-commit hooks) per job, after the COMMIT succeeded.
        """
        out: list[tuple[Any, Any, BaseException | None, list[Callable[[], None]]]] = []
        kept_rollbacks: list[Callable[[], None]] = []
        try:
            with self._write_lock, self.writer.connect() as conn:
                self._local.conn = conn
                try:
                    with conn.begin():
                        for fn, tag in zip(fns, tags, strict=True):
                            hooks: list[Callable[[], None]] = []
                            rollbacks: list[Callable[[], None]] = []
                            conn.info["after_commit"] = hooks
                            conn.info["on_rollback"] = rollbacks
                            try:
                                with translate_errors(), conn.begin_nested():
                                    result = fn()
                                out.append((tag, result, None, hooks))
                                kept_rollbacks.extend(rollbacks)
                            except Exception as exc:
                                _run_quietly(rollbacks)
                                out.append((tag, None, exc, []))
                finally:
                    self._local.conn = None
                    conn.info.pop("after_commit", None)
                    conn.info.pop("on_rollback", None)
        except BaseException:  # the COMMIT failed: every job's work is gone
            _run_quietly(kept_rollbacks)
            raise
        return out

    @contextmanager
    def exclusive(self) -> Iterator[Connection]:
        """SQLite only: hold off every other write for the block (readers carry on) and yield the
        writer connection outside any transaction, for SQLite's online backup API (ops.backups)."""
        if not self.is_sqlite:
            raise RuntimeError("Database.exclusive() is for SQLite")
        with self._write_lock, self.writer.connect() as conn:
            yield conn

    def dispose(self) -> None:
        # readers first: the writer must be the last connection to close (see dialects.sqlite)
        if self.reader is not self.writer:
            self.reader.dispose()
        self.writer.dispose()


def after_commit(conn: Connection, fn: Callable[[], None]) -> None:
    """Run ``fn`` once the transaction that owns ``conn`` has committed (never on rollback)."""
    hooks = conn.info.get("after_commit")
    if hooks is None:
        fn()
    else:
        hooks.append(fn)


def on_rollback(conn: Connection, fn: Callable[[], None]) -> None:
    """Run ``fn`` if the unit of work that owns ``conn`` does not commit (undo a side effect
    done ahead of the commit, such as a stored upload). Never runs after a successful commit."""
    hooks = conn.info.get("on_rollback")
    if hooks is not None:
        hooks.append(fn)


def _run_quietly(fns: list[Callable[[], None]]) -> None:
    for fn in fns:
        try:
            fn()
        except Exception:  # cleanup must never mask the error that caused the rollback
            logging.getLogger("keepbase.store").exception("on-rollback hook failed")


class _NullLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


_NULL_LOCK = _NullLock()


@contextmanager
def translate_errors() -> Iterator[None]:
    """Driver errors that reach here become a generic 400; the cause stays chained for logs."""
    try:
        yield
    except OperationalError as exc:
        text = str(exc.orig) if exc.orig is not None else str(exc)
        if "interrupted" in text or "statement timeout" in text or "canceling statement" in text:
            raise BadRequestError("The query took too long and was cancelled.") from exc
        raise
    except DBAPIError as exc:
        text = str(exc.orig) if exc.orig is not None else ""
        if "NUL" in text or "0x00" in text:
            raise BadRequestError() from exc
        raise

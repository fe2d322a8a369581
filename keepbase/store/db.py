"""The Database: engines, transactions and the writer queue, for SQLite and PostgreSQL.

``db.read()`` yields a connection inside a read transaction (a consistent snapshot).
``db.write()`` yields a connection inside a write transaction; it commits when the block
exits cleanly and rolls back otherwise. On SQLite every write goes through the one writer
connection, serialised by a lock (``BEGIN IMMEDIATE``). Side effects registered with
``after_commit`` run only after a successful commit; those registered with ``on_rollback``
run only when the work is rolled back.

``compile_read`` + ``read_rows`` are the hot read path: a SELECT built once per collection
schema is compiled once, and on SQLite it runs on a bare reader connection, skipping
SQLAlchemy's per-execution bookkeeping (cache key, execution context, result metadata,
transaction events), which costs several times a primary-key lookup.

Reachability (PostgreSQL). A lost or refused connection, or no pooled connection free in time,
becomes ``DatabaseUnavailableError`` (503 with ``Retry-After``) in ``translate_errors``, and the
Database remembers it: ``available`` is False and ``unavailable_since`` set from the first such
failure until the next statement that succeeds (a request, ``ping()``, or a background task that
reconnected and called ``reachable()``). Each change of state is one log line, so an outage
writes two lines however many requests fail meanwhile. Dead pooled connections are dropped at
checkout (``dialects.postgres``), so the first requests after a restart do not fail.

The change journal. ``after_commit(conn, fn, change=event)`` also records ``event`` (a record
change) on the transaction; just before COMMIT, ``Database.journal`` (when set: the realtime
change log on PostgreSQL) gets them all and may write them in the same transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from ..core.errors import BadRequestError, DatabaseUnavailableError
from .dialects.postgres import create_pg_engine, is_connection_error
from .dialects.sqlite import TimedConnection, create_engines
from .write_health import storage_error


class Database:
    def __init__(self, *, sqlite_path: Path | None = None, pg_url: str = "", sync: str = "full",
                 readers: int = 8, pool_size: int = 10, timeout_ms: int = 10000) -> None:
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._spare: list[Any] = []  # one idle SQLite reader kept out of the pool (see read_rows)
        self._state_lock = threading.Lock()
        self._down_since: float | None = None
        #: the last connection failure, one line ("" while available)
        self.last_failure = ""
        #: called inside each write transaction, just before COMMIT, with its record changes
        self.journal: Callable[[Connection, list[Any]], None] | None = None
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

    # --- reachability ---
    @property
    def available(self) -> bool:
        """False from a failed connection until the next statement that succeeds."""
        return self._down_since is None

    @property
    def unavailable_since(self) -> float | None:
        """When the current outage was first noticed (``time.time()``), or None."""
        return self._down_since

    def connection_failed(self, exc: BaseException) -> bool:
        """If ``exc`` means the database cannot be reached, note the outage (one log line when it
        starts) and return True; otherwise return False."""
        if not is_connection_error(exc) or isinstance(exc, PoolTimeoutError):  # a busy pool is not an outage
            return isinstance(exc, PoolTimeoutError)
        with self._state_lock:
            if self._down_since is not None:
                return True
            self._down_since = time.time()
            self.last_failure = _describe(exc)
        _log.error("database unreachable (%s); requests are answered 503 until it is back", self.last_failure)
        return True

    def reachable(self) -> None:
        """A statement succeeded: end the outage, if there was one (one log line)."""
        if self._down_since is None:  # the hot path: no lock
            return
        with self._state_lock:
            since, self._down_since, self.last_failure = self._down_since, None, ""
        if since is not None:
            _log.warning("database reachable again (unreachable for %.1f s)", time.time() - since)

    def ping(self) -> bool:
        """``SELECT 1`` on a pooled connection; updates ``available``. Blocking (at most about
        ``dialects.postgres.CONNECT_TIMEOUT`` seconds when the server cannot be reached)."""
        try:
            with self.read() as conn:
                conn.exec_driver_sql("SELECT 1")
        except DatabaseUnavailableError:
            return False
        return True

    @contextmanager
    def read(self) -> Iterator[Connection]:
        current = self._current()
        if current is not None:  # reuse an enclosing write transaction
            yield current
            return
        with translate_errors(self), self.reader.connect() as conn, conn.begin():
            yield conn
        if self._down_since is not None:
            self.reachable()

    def compile_read(self, stmt: Select[Any]) -> CompiledRead:
        """Compile a SELECT once, for ``read_rows``. Keep the result (per collection schema):
        compiling is the expensive part. Parameters are the statement's ``bindparam`` names."""
        return CompiledRead(stmt, self.reader.dialect if self.is_sqlite else None)

    @contextmanager
    def read_rows(self, *, snapshot: bool = False) -> Iterator[RowReader]:
        """Run statements from ``compile_read``. Inside a write it reuses that transaction.
        ``snapshot``: the statements see one consistent state (a read transaction); a single
        statement always does.

        On SQLite reads run inline on the event loop (``api.deps.run_read``), one at a time,
        so one idle reader connection is kept aside instead of a pool check-out each time."""
        if not self.is_sqlite or self._current() is not None:
            with self.read() as conn:
                yield _SqlaRows(conn)
            return
        try:
            fairy = self._spare.pop()
        except IndexError:
            fairy = self.reader.raw_connection()
        dbapi = fairy.dbapi_connection
        reusable = False
        try:
            with translate_errors(self):
                if isinstance(dbapi, TimedConnection):
                    dbapi.arm()  # the statement timeout, as a transaction begin does
                if snapshot:
                    dbapi.execute("BEGIN")
                try:
                    yield _SqliteRows(dbapi)
                finally:
                    if dbapi.in_transaction:
                        dbapi.rollback()  # read-only: ending it either way is the same
            reusable = True
        finally:
            if reusable and not self._spare:
                self._spare.append(fairy)
            else:
                fairy.close()  # back to the pool

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One unit of work. Nested calls on the same thread reuse the outer transaction."""
        current = self._current()
        if current is not None:
            yield current
            return
        hooks: list[Callable[[], None]] = []
        rollbacks: list[Callable[[], None]] = []
        changes: list[Any] = []
        lock = self._write_lock if self.is_sqlite else _NULL_LOCK
        try:
            with lock, translate_errors(self):
                with self.writer.connect() as conn:
                    conn.info["after_commit"] = hooks
                    conn.info["on_rollback"] = rollbacks
                    conn.info["changes"] = changes
                    self._local.conn = conn
                    try:
                        with conn.begin():
                            yield conn
                            if changes and self.journal is not None:
                                self.journal(conn, changes)
                    finally:
                        self._local.conn = None
                        conn.info.pop("after_commit", None)
                        conn.info.pop("on_rollback", None)
                        conn.info.pop("changes", None)
        except BaseException:
            _run_quietly(rollbacks)
            raise
        if self._down_since is not None:
            self.reachable()
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
            with self._write_lock, translate_errors(self), self.writer.connect() as conn:  # a failed COMMIT too
                self._local.conn = conn
                kept_changes: list[Any] = []
                try:
                    with conn.begin():
                        for fn, tag in zip(fns, tags, strict=True):
                            hooks: list[Callable[[], None]] = []
                            rollbacks: list[Callable[[], None]] = []
                            changes: list[Any] = []
                            conn.info["after_commit"] = hooks
                            conn.info["on_rollback"] = rollbacks
                            conn.info["changes"] = changes
                            try:
                                with translate_errors(self), conn.begin_nested():
                                    result = fn()
                                out.append((tag, result, None, hooks))
                                kept_rollbacks.extend(rollbacks)
                                kept_changes.extend(changes)
                            except Exception as exc:
                                _run_quietly(rollbacks)
                                out.append((tag, None, exc, []))
                        if kept_changes and self.journal is not None:
                            self.journal(conn, kept_changes)
                finally:
                    self._local.conn = None
                    conn.info.pop("after_commit", None)
                    conn.info.pop("on_rollback", None)
                    conn.info.pop("changes", None)
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
        while self._spare:
            self._spare.pop().close()
        if self.reader is not self.writer:
            self.reader.dispose()
        self.writer.dispose()


class CompiledRead:
    """A SELECT compiled once. On SQLite: its SQL text, parameter order, fixed parameter values
    and the type conversions SQLAlchemy would apply, to run on a DB-API connection. On
    PostgreSQL (``sql`` is None) SQLAlchemy runs the statement, from its compiled cache."""

    __slots__ = ("binds", "defaults", "names", "results", "sql", "stmt")

    def __init__(self, stmt: Select[Any], dialect: Any) -> None:
        self.stmt = stmt
        self.sql: str | None = None
        self.names: tuple[str, ...] = ()
        self.defaults: dict[str, Any] = {}
        self.binds: dict[str, Callable[[Any], Any]] = {}
        self.results: tuple[Callable[[Any], Any] | None, ...] | None = None
        if dialect is None:
            return
        compiled = stmt.compile(dialect=dialect)
        if compiled.positiontup is None or compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("compile_read: expanding or literal-execute parameters are not supported")
        for name, bind in compiled.binds.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self.binds[name] = proc
        results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in stmt.selected_columns)
        self.results = results if any(results) else None
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup)
        self.defaults = dict(compiled.params)


class RowReader(Protocol):
    def first(self, q: CompiledRead, params: Mapping[str, Any] | None = None) -> Sequence[Any] | None: ...

    def all(self, q: CompiledRead, params: Mapping[str, Any] | None = None) -> Sequence[Sequence[Any]]: ...

    def scalar(self, q: CompiledRead, params: Mapping[str, Any] | None = None) -> Any: ...


class _SqlaRows:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def first(self, q: CompiledRead, params: Mapping[str, Any] | None = None) -> Sequence[Any] | None:
        return self.conn.execute(q.stmt, params).first()

    def all(self, q: CompiledRead, params: Mapping[str, Any] | None = None) -> Sequence[Sequence[Any]]:
        return self.conn.execute(q.stmt, params).all()

    def scalar(self, q: CompiledRead, params: Mapping[str, Any] | None = None) -> Any:
        return self.conn.execute(q.stmt, params).scalar()


class _SqliteRows:
    def __init__(self, dbapi: sqlite3.Connection) -> None:
        self.dbapi = dbapi

    def _rows(self, q: CompiledRead, params: Mapping[str, Any] | None, one: bool) -> list[Any]:
        assert q.sql is not None, "compiled for another database"
        values = {**q.defaults, **params} if params else q.defaults
        args = [values[n] for n in q.names]
        if q.binds:
            args = [q.binds[n](v) if n in q.binds else v for n, v in zip(q.names, args, strict=True)]
        cur = self.dbapi.execute(q.sql, args)
        try:
            # an unfinished statement would hold its read transaction (and the WAL) open: close it
            rows = cur.fetchmany(1) if one else cur.fetchall()
        finally:
            cur.close()
        procs = q.results
        if procs is not None:
            rows = [tuple(v if p is None else p(v) for p, v in zip(procs, row, strict=True)) for row in rows]
        return rows

    def first(self, q: CompiledRead, params: Mapping[str, Any] | None = None) -> Sequence[Any] | None:
        rows = self._rows(q, params, True)
        return rows[0] if rows else None

    def all(self, q: CompiledRead, params: Mapping[str, Any] | None = None) -> Sequence[Sequence[Any]]:
        return self._rows(q, params, False)

    def scalar(self, q: CompiledRead, params: Mapping[str, Any] | None = None) -> Any:
        row = self.first(q, params)
        return None if row is None else row[0]


def after_commit(conn: Connection, fn: Callable[[], None], *, change: Any = None) -> None:
    """Run ``fn`` once the transaction that owns ``conn`` has committed (never on rollback).

    ``change``: the record change (a ``RecordEvent``) ``fn`` announces; it is handed to
    ``Database.journal`` before the COMMIT, so a change log can be written in the transaction."""
    hooks = conn.info.get("after_commit")
    if hooks is None:
        fn()
    else:
        hooks.append(fn)
        if change is not None:
            changes = conn.info.get("changes")
            if changes is not None:
                changes.append(change)


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
_log = logging.getLogger("keepbase.store")


def _describe(exc: BaseException) -> str:
    cause: Any = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return (" ".join(str(cause).split()) or type(cause).__name__)[:200]


@contextmanager
def translate_errors(db: Database | None = None) -> Iterator[None]:
    """Driver errors that reach here become API errors; the cause stays chained for logs.
    An unreachable database is a 503 (``DatabaseUnavailableError``; noted on ``db``), a full or
    read-only one 507/503 (``write_health``), anything else a generic 400."""
    try:
        yield
    except PoolTimeoutError as exc:  # no pooled connection free in time
        raise DatabaseUnavailableError() from exc
    except (OperationalError, sqlite3.OperationalError) as exc:  # the latter from read_rows' bare connection
        if _unreachable(db, exc):
            raise DatabaseUnavailableError() from exc
        if (full_or_read_only := storage_error(exc)) is not None:  # 507 / 503: see store.write_health
            raise full_or_read_only from exc
        text = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig is not None else str(exc)
        if "interrupted" in text or "statement timeout" in text or "canceling statement" in text:
            raise BadRequestError("The query took too long and was cancelled.") from exc
        raise
    except (DBAPIError, sqlite3.Error) as exc:
        if _unreachable(db, exc):
            raise DatabaseUnavailableError() from exc
        if (full_or_read_only := storage_error(exc)) is not None:
            raise full_or_read_only from exc
        text = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig is not None else ""
        if "NUL" in text or "0x00" in text:
            raise BadRequestError() from exc
        raise


def _unreachable(db: Database | None, exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return False
    if db is not None:
        return db.connection_failed(exc)
    return is_connection_error(exc)

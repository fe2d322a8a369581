"""The ``_logs`` table and its writer: request logs kept for ``settings.logs.maxDays`` days.

Where the rows live: on PostgreSQL in the main database; on SQLite in a separate
``auxiliary.db`` next to ``data.db``, like PocketBase's auxiliary database. Log writes then never
queue behind (or hold) the main writer lock, never add to its fsyncs, and a backup or copy of
``data.db`` stays free of request history. The auxiliary file has its own single writer
connection (a second ``Database``), opened with ``synchronous=NORMAL``: a power cut may lose the
last second of logs, never the data.

How rows get there: the request path only appends a small callable to a bounded in-memory queue
(``LogWriter.add``: a ``deque.append``, no I/O, no JSON, no lock). A background thread wakes every
``FLUSH_INTERVAL`` seconds, or as soon as ``BATCH_SIZE`` entries wait, turns the queued callables
into rows and inserts them in one transaction. When ``MAX_QUEUED`` entries are already waiting the
new one is dropped and counted, and the writer logs one warning per flush saying how many went.
``flush()`` does the same work synchronously (tests, shutdown).

When the rows cannot be written (a full or read-only disk, a database refusing writes) requests
carry on as before: the batch goes back to the front of the queue to be tried at the next flush
(what does not fit under ``MAX_QUEUED`` is dropped and counted), the failure is reported once on
stderr, and ``LogStore.degraded`` is true until a batch is written again (``health.status()``
has the cause and how many entries were lost); then one more line says so.

The logs settings are applied at flush time: ``maxDays: 0`` drops everything, entries under
``minLevel`` are dropped, and data larger than ``maxDataSize`` bytes becomes
``{"__pb_truncated__": true}``. As PocketBase does when the settings are saved, raising
``minLevel`` deletes the stored logs under the new level and ``maxDays: 0`` deletes all of them
(noticed by the writer at its next flush).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from ..core.errors import NotFoundError
from ..core.ids import ALNUM_LOWER
from ..rules.compiler import Compiler
from ..rules.errors import FilterError
from ..rules.joins import json_path
from ..rules.macros import is_macro
from ..rules.parser import parse, parse_sort
from ..rules.resolver import Dialect, Operand
from .db import Database
from .records import ListParams
from .resolver import _sort_keys as sort_keys
from .schema import text_type
from .write_health import WriteHealth, describe

log = logging.getLogger("keepbase.logs")

FLUSH_INTERVAL = 1.0
BATCH_SIZE = 200
MAX_QUEUED = 10_000
TRUNCATED = {"__pb_truncated__": True}

LEVEL_DEBUG, LEVEL_INFO, LEVEL_WARN, LEVEL_ERROR = -4, 0, 4, 8


@dataclass(frozen=True)
class LogEntry:
    """One row to store. ``created`` is a Unix timestamp (seconds)."""

    created: float
    level: int
    message: str
    data: dict[str, Any]


# A queued entry: called on the writer thread with the current ``settings.logs`` object; returns
# the entry to store, or None to skip it. Request logs use this to do their formatting off the
# request path.
Pending = Callable[[dict[str, Any]], LogEntry | None]


def _stored_entry(entry: LogEntry, _settings: dict[str, Any]) -> LogEntry:
    return entry


def logs_table(md: MetaData) -> Table:
    return Table(
        "_logs",
        md,
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("id", text_type(), nullable=False, unique=True),
        Column("created", text_type(), nullable=False, server_default=""),
        Column("level", Integer, nullable=False, server_default="0"),
        Column("message", text_type(), nullable=False, server_default=""),
        Column("data", text_type(), nullable=False, server_default="{}"),
        Index("idx__logs_created", "created"),
        Index("idx__logs_level", "level"),
    )


_last_second: tuple[int, str] = (-1, "")


def format_ts(ts: float) -> str:
    """A Unix timestamp as PocketBase's date text (``2024-01-02 03:04:05.678Z``)."""
    global _last_second
    whole = int(ts)
    second, text = _last_second  # consecutive log entries mostly share their second
    if second != whole:
        text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole))
        _last_second = (whole, text)
    return f"{text}.{int((ts - whole) * 1000):03d}Z"


# Log ids only need to be unique, not unguessable (logs are superuser-only), and one is made
# per logged request: random bytes mapped onto [a-z0-9] in bulk, ~50x cheaper than ``secrets``
# one character at a time (the mapping favours 4 of the 36 characters very slightly).
_ID_TABLE = bytes((ALNUM_LOWER.encode()[b % 36]) for b in range(256))


def new_log_ids(n: int) -> list[str]:
    text = os.urandom(15 * n).translate(_ID_TABLE).decode()
    return [text[i:i + 15] for i in range(0, 15 * n, 15)]


def _data_json(data: dict[str, Any]) -> str:
    text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    if b"\\u0000" in text:  # a NUL (from a %00 in a URL): PostgreSQL's jsonb refuses it
        text = orjson.dumps(_without_nul(data), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return text.decode()


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


# --------------------------------------------------------------------------- filter / sort


_INSERT_COLUMNS = ("id", "created", "level", "message", "data")
_DATA_PATH_RE = re.compile(r"^data\.[\w.:]*\w+$")
_FIELDS = {"id": "text", "created": "text", "message": "text", "data": "text", "level": "int"}


class LogsResolver:
    """PocketBase's ``SimpleFieldResolver`` for the logs: ``id, created, level, message, data``
    and ``data.<path>`` (a JSON extraction); anything else fails to resolve."""

    def __init__(self, table: Table, dialect: str) -> None:
        self.table = table
        self._dialect: Dialect = "postgresql" if dialect == "postgresql" else "sqlite"

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    def resolve(self, name: str) -> Operand:
        kind = _FIELDS.get(name)
        if kind == "int":
            return Operand(self.table.c[name], "int", "numeric")
        if kind == "text":
            return Operand(self.table.c[name], "text", "text")
        parts = name.split(".")
        if _DATA_PATH_RE.match(name) and all(parts):
            expr = json_path(self.table.c.data, parts[1:], self._dialect)
            return Operand(expr, "json", None, no_coalesce=True)
        raise FilterError(f'failed to resolve field "{name}"')


def filter_expression(table: Table, dialect: str, source: str) -> ColumnElement[bool] | None:
    """``source`` compiled against the logs table (None when blank); raises ``FilterError``."""
    if not source.strip():
        return None
    return Compiler(LogsResolver(table, dialect)).compile(parse(source))


def sort_expressions(table: Table, dialect: str, source: str) -> list[Any]:
    out: list[Any] = []
    if not source.strip():
        return out
    resolver = LogsResolver(table, dialect)
    for item in parse_sort(source):
        if item.name == "@random":
            out.append(func.random())
            continue
        if item.name == "@rowid":
            out.append(table.c.seq.desc() if item.descending else table.c.seq.asc())
            continue
        if is_macro(item.name):
            raise FilterError(f'invalid sort field "{item.name}"')
        op = resolver.resolve(item.name)
        for key in sort_keys(op, dialect):
            if dialect == "postgresql":
                out.append(key.desc().nulls_last() if item.descending else key.asc().nulls_first())
            else:
                out.append(key.desc() if item.descending else key.asc())
    return out


# --------------------------------------------------------------------------- the store


class LogStore:
    """Reads and deletes ``_logs`` rows; owns the ``LogWriter`` that inserts them."""

    def __init__(self, db: Database, aux_path: Path | None, settings: Callable[[], dict[str, Any]],
                 *, timeout_ms: int = 10000) -> None:
        self._own_db = db.is_sqlite
        if db.is_sqlite:
            if aux_path is None:
                raise ValueError("SQLite needs a path for the auxiliary log database")
            db = Database(sqlite_path=aux_path, sync="normal", readers=2, timeout_ms=timeout_ms)
        self.db = db
        self._md = MetaData()
        self.table = logs_table(self._md)
        self.settings = settings
        self._insert: tuple[str, tuple[str, ...] | None] | None = None
        self.writer = LogWriter(self)

    def bootstrap(self) -> None:
        with self.db.write() as conn:
            self._md.create_all(conn, checkfirst=True)

    @property
    def health(self) -> WriteHealth:
        return self.writer.health

    @property
    def degraded(self) -> bool:
        """True while request logs cannot be written (see the module docstring)."""
        return self.writer.health.degraded

    def close(self) -> None:
        self.writer.stop()
        if self._own_db:
            self.db.dispose()

    # --- writes ---
    def insert_entries(self, entries: list[LogEntry]) -> None:
        if not entries:
            return
        rows = [(log_id, format_ts(e.created), e.level, e.message.replace("\x00", "\ufffd"), _data_json(e.data))
                for log_id, e in zip(new_log_ids(len(entries)), entries, strict=True)]
        sql, names = self._insert_sql()
        with self.db.write() as conn:
            # the statement compiled once, rows passed to the driver as they are: building
            # SQLAlchemy parameters row by row would cost more than the insert itself
            conn.exec_driver_sql(sql, rows if names is None else [dict(zip(names, r, strict=True)) for r in rows])

    def _insert_sql(self) -> tuple[str, tuple[str, ...] | None]:
        """The INSERT in the driver's own parameter style; ``names`` is None for positional."""
        if self._insert is None:
            stmt = insert(self.table).values({k: bindparam(k) for k in _INSERT_COLUMNS})
            compiled = stmt.compile(dialect=self.db.writer.dialect)
            if compiled.positional:
                assert tuple(compiled.positiontup or ()) == _INSERT_COLUMNS
                self._insert = (str(compiled), None)
            else:
                self._insert = (str(compiled), _INSERT_COLUMNS)
        return self._insert

    def delete_all(self) -> None:
        """Delete every stored log and every queued one (no flush can slip in between)."""
        with self.writer.lock:
            self.writer.discard_pending()
            with self.db.write() as conn:
                conn.execute(delete(self.table))

    def delete_below(self, level: int) -> None:
        with self.db.write() as conn:
            conn.execute(delete(self.table).where(self.table.c.level < level))

    def delete_created_before(self, cutoff: str) -> int:
        """Delete the logs created at or before ``cutoff`` (date text); returns how many went."""
        with self.db.write() as conn:
            return max(conn.execute(delete(self.table).where(self.table.c.created <= cutoff)).rowcount or 0, 0)

    # --- reads ---
    @staticmethod
    def _to_json(row: Any) -> dict[str, Any]:
        return {"id": row.id, "created": row.created, "data": orjson.loads(row.data or "{}"),
                "message": row.message, "level": row.level}

    def find_logs(self, params: ListParams) -> dict[str, Any]:
        """A list envelope; ``FilterError`` (400) for a bad filter or sort."""
        t = self.table
        where = filter_expression(t, self.db.dialect, params.filter)
        order = [*sort_expressions(t, self.db.dialect, params.sort), t.c.seq.asc()]
        stmt = select(t).order_by(*order).limit(params.per_page).offset(params.offset)
        count = select(func.count()).select_from(t)
        if where is not None:
            stmt, count = stmt.where(where), count.where(where)
        with self.db.read() as conn:
            rows = conn.execute(stmt).all()
            total = -1 if params.skip_total else int(conn.execute(count).scalar_one())
        pages = -1 if params.skip_total else (total + params.per_page - 1) // params.per_page
        return {"items": [self._to_json(r) for r in rows], "page": params.page, "perPage": params.per_page,
                "totalItems": total, "totalPages": pages}

    def find_log_by_id(self, log_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(select(self.table).where(self.table.c.id == log_id)).first()
        if row is None:
            raise NotFoundError()
        return self._to_json(row)

    def stats(self, expression: str = "") -> list[dict[str, Any]]:
        """Hourly counts, oldest first: ``[{"date": "2024-01-02 03:00:00.000Z", "total": 5}]``."""
        t = self.table
        hour = func.substr(t.c.created, 1, 13) + literal(":00:00.000Z", text_type())
        stmt = select(hour.label("date"), func.count(t.c.id).label("total")).group_by(hour).order_by(hour)
        where = filter_expression(t, self.db.dialect, expression)
        if where is not None:
            stmt = stmt.where(where)
        with self.db.read() as conn:
            return [{"date": r.date, "total": int(r.total)} for r in conn.execute(stmt).all()]


class LogWriter:
    """The bounded queue and the thread that empties it (see the module docstring)."""

    def __init__(self, store: LogStore, *, background: bool = True) -> None:
        self.store = store
        self.background = background
        self._queue: deque[Pending] = deque()
        self._dropped = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.lock = threading.RLock()  # held while flushing
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.health = WriteHealth("request logs (_logs)", log)
        logs = (store.settings().get("logs") or {})
        self._seen = (int(logs.get("minLevel") or 0), int(logs.get("maxDays") or 0))

    def add(self, pending: Pending) -> None:
        """Queue one entry; never blocks and never raises (a full queue drops it)."""
        queue = self._queue
        if len(queue) >= MAX_QUEUED:
            self._dropped += 1
            return
        queue.append(pending)
        if self._thread is None and self.background:
            self._start()
        elif len(queue) == BATCH_SIZE:
            self._wake.set()

    def add_entry(self, level: int, message: str, data: dict[str, Any] | None = None) -> None:
        """Log an application message (shown by ``/api/logs`` like the request logs)."""
        entry = LogEntry(time.time(), level, message, dict(data or {}))
        self.add(lambda _settings: entry)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def discard_pending(self) -> None:
        self._queue.clear()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._loop, name="keepbase-logs", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.flush()
        except Exception as exc:  # closing must go on (the database is closed next)
            log.error("writing the last %d request logs failed: %s", self.pending, describe(exc))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # the writer must outlive a failing database (flush re-queued the batch)
                self.health.failed(exc, lost=0)

    def flush(self) -> int:
        """Write every queued entry now; returns how many rows were stored."""
        with self.lock:
            logs = self.store.settings().get("logs") or {}
            self._apply_settings_change(logs)
            queue = self._queue
            taken: list[Pending] = []
            for _ in range(len(queue)):
                try:
                    taken.append(queue.popleft())
                except IndexError:  # emptied meanwhile (discard_pending)
                    break
            if self._dropped:
                dropped, self._dropped = self._dropped, 0
                if self.health.degraded:  # already reported; counted for the recovery line
                    self.health.lost += dropped
                else:
                    log.warning("request log queue full (%d entries): %d log entries dropped", MAX_QUEUED, dropped)
            max_days = int(logs.get("maxDays") or 0)
            if not taken or max_days <= 0:
                return 0
            min_level = int(logs.get("minLevel") or 0)
            max_size = int(logs.get("maxDataSize") or 0)
            entries = []
            for pending in taken:
                try:
                    entry = pending(logs)
                except Exception:
                    log.exception("building a log entry failed; skipped")
                    continue
                if entry is None or entry.level < min_level:
                    continue
                if max_size > 0 and len(orjson.dumps(entry.data, option=orjson.OPT_NON_STR_KEYS)) > max_size:
                    entry = LogEntry(entry.created, entry.level, entry.message, dict(TRUNCATED))
                entries.append(entry)
            try:
                self.store.insert_entries(entries)
            except Exception:
                self._requeue(entries)
                raise
            if entries:
                self.health.succeeded()
            return len(entries)

    def _requeue(self, entries: list[LogEntry]) -> None:
        """Put a batch that could not be written back in front of the queue, as far as it fits."""
        room = max(MAX_QUEUED - len(self._queue), 0)
        kept = entries[len(entries) - room:] if room < len(entries) else entries  # keep the newest
        lost = len(entries) - len(kept)
        if lost:
            self.health.lost += lost
        for entry in reversed(kept):
            self._queue.appendleft(partial(_stored_entry, entry))

    def _apply_settings_change(self, logs: dict[str, Any]) -> None:
        current = (int(logs.get("minLevel") or 0), int(logs.get("maxDays") or 0))
        if current == self._seen:
            return
        (old_level, old_days), (level, days) = self._seen, current
        self._seen = current
        if days <= 0 < old_days:
            self.store.delete_all()
        elif level > old_level:
            self.store.delete_below(level)

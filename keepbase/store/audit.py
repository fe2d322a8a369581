"""The ``_audit`` table: who did what to which auth record, when, from where.

Rows are written by the auth services (sign-ins, impersonation, verification, password reset,
email change, token revocation). ``data`` holds small, safe details only: callers never pass a
password, a token, a hash, a tokenKey or a secret, and ``write`` drops such keys defensively.

A row written on its own (a sign-in attempt, a reset request) is best effort: when it cannot be
written (a full or read-only disk, a database that refuses writes) the request still succeeds,
the failure is reported once on stderr and ``AuditLog.degraded`` is true until a row is written
again (``health.status()`` for the details). A row written inside a change's transaction
(``conn``) shares that transaction's fate: no change without its row.

The trail is append-only and hash-chained. Each row stores ``prevHash`` (the ``hash`` of the row
before it, ``""`` for the first) and ``hash`` = SHA-256 of ``prevHash`` + a newline + the row's
canonical content (its other columns as sorted-key JSON, ``seq`` aside). Appends are serialised:
on SQLite by the one writer; on PostgreSQL by a transaction-scoped advisory lock taken before the
previous hash is read, so concurrent writers (threads or nodes) cannot fork the chain, and a
rolled-back transaction takes its row and its link away together. Nothing in keepbase updates or
deletes audit rows (there is no retention); the one exception is the upgrade of a table written
before chaining, whose existing rows are sealed into a chain once, at bootstrap.

``verify_chain`` walks the chain in ``seq`` order and reports the first row whose content no
longer matches its hash (edited) or whose ``prevHash`` is not the hash of the row before it (a
row removed or inserted before it). It cannot see the newest rows removed from the tail: record
the head hash it reports somewhere else (``keepbase audit verify`` prints it) to detect that.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    Table,
    func,
    insert,
    inspect,
    select,
    update,
)

from ..core.clock import now_str
from ..core.ids import new_record_id
from .db import Database
from .records import page_offset
from .schema import text_type
from .write_health import WriteHealth

log = logging.getLogger("keepbase.audit")

_FORBIDDEN_KEYS = frozenset({"password", "passwordconfirm", "oldpassword", "token", "tokenkey", "secret"})


def audit_table(md: MetaData) -> Table:
    return Table(
        "_audit",
        md,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("id", text_type(), nullable=False, unique=True),
        Column("created", text_type(), nullable=False, server_default=""),
        Column("action", text_type(), nullable=False, server_default=""),
        Column("success", Integer, nullable=False, server_default="1"),
        Column("collectionId", text_type(), nullable=False, server_default=""),
        Column("recordId", text_type(), nullable=False, server_default=""),
        Column("actorCollectionId", text_type(), nullable=False, server_default=""),
        Column("actorId", text_type(), nullable=False, server_default=""),
        Column("ip", text_type(), nullable=False, server_default=""),
        Column("data", text_type(), nullable=False, server_default="{}"),
        Column("prevHash", text_type(), nullable=False, server_default=""),
        Column("hash", text_type(), nullable=False, server_default=""),
        Index("idx__audit_record", "collectionId", "recordId"),
        Index("idx__audit_created", "created"),
    )


@dataclass(frozen=True)
class AuditEntry:
    """One row to write. ``collection_id``/``record_id`` name the record acted on; ``actor_*`` the
    authenticated caller when it is someone else (a superuser impersonating or editing)."""

    action: str
    collection_id: str = ""
    record_id: str = ""
    success: bool = True
    ip: str = ""
    actor_collection_id: str = ""
    actor_id: str = ""
    data: dict[str, Any] | None = None


#: the columns a row's hash covers (everything but ``seq`` and the two hashes)
CHAINED_COLUMNS = ("id", "created", "action", "success", "collectionId", "recordId", "actorCollectionId",
                   "actorId", "ip", "data")
#: pg_advisory_xact_lock key serialising chain appends on PostgreSQL ("kbaudit" as an int64)
_PG_LOCK_KEY = int.from_bytes(b"kbaudit", "big")
_BATCH = 1000


def entry_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``prev_hash`` + a newline + the row's canonical content."""
    content = {k: int(row[k]) if k == "success" else str(row[k]) for k in CHAINED_COLUMNS}
    payload = prev_hash.encode() + b"\n" + orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    """The first row at which the chain does not hold."""

    seq: int
    id: str
    created: str
    reason: str


@dataclass(frozen=True)
class ChainReport:
    entries: int
    head: str  # the last row's hash ("" when there is no row)
    broken: BrokenLink | None = None


def _safe_data(data: dict[str, Any] | None) -> str:
    clean = {k: v for k, v in (data or {}).items() if k.lower() not in _FORBIDDEN_KEYS}
    return orjson.dumps(clean, option=orjson.OPT_SORT_KEYS).decode()


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._md = MetaData()
        self.table = audit_table(self._md)
        self.health = WriteHealth("audit rows (_audit)", log)

    @property
    def degraded(self) -> bool:
        """True while rows written on their own fail (see the module docstring)."""
        return self.health.degraded

    def bootstrap(self) -> None:
        with self.db.write() as conn:
            self._md.create_all(conn, checkfirst=True)
            columns = {c["name"] for c in inspect(conn).get_columns("_audit")}
            if "hash" not in columns:  # a table from before chaining: add the columns, seal its rows once
                for name in ("prevHash", "hash"):
                    conn.exec_driver_sql(f"ALTER TABLE _audit ADD COLUMN \"{name}\" TEXT NOT NULL DEFAULT ''")
                self._seal(conn)

    def _seal(self, conn: Connection) -> None:
        t, prev = self.table, ""
        for r in conn.execute(select(t).order_by(t.c.seq)).mappings().all():
            h = entry_hash(prev, r)
            conn.execute(update(t).where(t.c.seq == r["seq"]).values(prevHash=prev, hash=h))
            prev = h

    def _append(self, conn: Connection, row: dict[str, Any]) -> None:
        """Insert ``row`` as the chain's new head; the caller's transaction holds the chain until it ends."""
        t = self.table
        if not self.db.is_sqlite:  # SQLite: the one writer already serialises appends
            conn.execute(select(func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        prev = conn.execute(select(t.c.hash).order_by(t.c.seq.desc()).limit(1)).scalar() or ""
        conn.execute(insert(t).values({**row, "prevHash": prev, "hash": entry_hash(prev, row)}))

    def write(self, entry: AuditEntry, conn: Connection | None = None) -> None:
        """Append one row; inside ``conn``'s transaction when given (atomic with the change), else
        on its own and best effort (never raises)."""
        row = {"id": new_record_id(), "created": now_str(), "action": entry.action,
               "success": 1 if entry.success else 0, "collectionId": entry.collection_id,
               "recordId": entry.record_id, "actorCollectionId": entry.actor_collection_id,
               "actorId": entry.actor_id, "ip": entry.ip, "data": _safe_data(entry.data)}
        if conn is None and self.db._current() is not None:
            conn = self.db._current()  # inside a caller's transaction: a swallowed error would leave it broken
        if conn is not None:
            self._append(conn, row)
            return
        try:
            with self.db.write() as wconn:
                self._append(wconn, row)
        except Exception as exc:  # best effort: the request that caused the row goes on
            self.health.failed(exc)
            return
        self.health.succeeded()

    def find_entries(self, page: int, per_page: int, filters: dict[str, str] | None = None) -> dict[str, Any]:
        """A PocketBase-style list envelope, newest first; ``filters`` are exact column matches."""
        t = self.table
        conds = [t.c[k] == v for k, v in (filters or {}).items()]
        with self.db.read() as conn:
            total = conn.execute(select(func.count()).select_from(t).where(*conds)).scalar_one()
            rows = conn.execute(select(t).where(*conds).order_by(t.c.seq.desc())
                                .limit(per_page).offset(page_offset(page, per_page))).all()
        items = [{"action": r.action, "actorCollectionId": r.actorCollectionId, "actorId": r.actorId,
                  "collectionId": r.collectionId, "created": r.created, "data": orjson.loads(r.data or "{}"),
                  "id": r.id, "ip": r.ip, "recordId": r.recordId, "success": bool(r.success)} for r in rows]
        return {"items": items, "page": page, "perPage": per_page, "totalItems": int(total),
                "totalPages": (int(total) + per_page - 1) // per_page}


def _rows_in_order(db: Database, table: Table) -> Iterator[Mapping[str, Any]]:
    after = None
    while True:
        q = select(table).order_by(table.c.seq).limit(_BATCH)
        if after is not None:
            q = q.where(table.c.seq > after)
        with db.read() as conn:
            rows = conn.execute(q).mappings().all()
        yield from rows
        if len(rows) < _BATCH:
            return
        after = rows[-1]["seq"]


def verify_chain(db: Database) -> ChainReport:
    """Walk ``_audit`` in ``seq`` order (in batches) and return the first broken link, if any."""
    table = audit_table(MetaData())
    count, prev = 0, ""
    for r in _rows_in_order(db, table):
        count += 1
        reason = ""
        if r["prevHash"] != prev:
            reason = "does not follow the entry before it (an entry was removed or inserted)"
        elif entry_hash(prev, r) != r["hash"]:
            reason = "content does not match its hash (the entry was changed)"
        if reason:
            return ChainReport(count, prev, BrokenLink(int(r["seq"]), str(r["id"]), str(r["created"]), reason))
        prev = str(r["hash"])
    return ChainReport(count, prev)


FILTER_COLUMNS = ("action", "collectionId", "recordId", "actorId", "ip")

"""The ``_audit`` table: who did what to which auth record, when, from where.

Rows are written by the auth services (sign-ins, impersonation, verification, password reset,
email change, token revocation). ``data`` holds small, safe details only: callers never pass a
password, a token, a hash, a tokenKey or a secret, and ``write`` drops such keys defensively.

A row written on its own (a sign-in attempt, a reset request) is best effort: when it cannot be
written (a full or read-only disk, a database that refuses writes) the request still succeeds,
the failure is reported once on stderr and ``AuditLog.degraded`` is true until a row is written
again (``health.status()`` for the details). A row written inside a change's transaction
(``conn``) shares that transaction's fate: no change without its row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Column, Connection, Index, Integer, MetaData, Table, func, insert, select

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
            conn.execute(insert(self.table).values(row))
            return
        try:
            with self.db.write() as wconn:
                wconn.execute(insert(self.table).values(row))
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


FILTER_COLUMNS = ("action", "collectionId", "recordId", "actorId", "ip")

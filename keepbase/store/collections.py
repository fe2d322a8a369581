"""The collections service: a cached registry plus create/update/delete/import.

The cache is rebuilt from ``_collections`` after every schema change (and on ``refresh()``),
so readers always see a complete, consistent set of collections.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Connection, Table, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..core.clock import now_str
from ..core.errors import BadRequestError, FieldError, NotFoundError, ValidationError
from ..core.ids import collection_id
from ..security.keyring import Keyring
from . import builtin
from .collection_validate import RuleValidator, collection_from_payload, raw_message, validate_collection
from .db import Database, after_commit
from .encryption import RecordCipher, check_collection, finish_columns, prepare_columns, sealed_fields
from .migrate import alter_collection_table, create_collection_table, drop_collection_table
from .models import Collection, Field
from .option_secrets import open_options, seal_options
from .schema import system_metadata

log = logging.getLogger("keepbase.collections")


def _to_row(c: Collection, seq: int, keyring: Keyring | None = None) -> dict[str, Any]:
    return {
        "id": c.id, "system": 1 if c.system else 0, "type": c.type, "name": c.name,
        "fields": orjson.dumps([f.to_dict() for f in c.fields]).decode(),
        "indexes": orjson.dumps(c.indexes).decode(),
        "rules": orjson.dumps(c.rules).decode(),
        "options": orjson.dumps(seal_options(c.id, c.options, keyring)).decode(),  # OAuth2 client secrets
        "created": c.created, "updated": c.updated, "seq": seq,
    }


def _field_from_dict(d: dict[str, Any]) -> Field:
    common = {"id", "name", "type", "system", "hidden", "presentable"}
    return Field(id=d["id"], name=d["name"], type=d["type"], system=d.get("system", False),
                 hidden=d.get("hidden", False), presentable=d.get("presentable", False),
                 options={k: v for k, v in d.items() if k not in common})


def _from_row(row: Any, keyring: Keyring | None = None) -> Collection:
    return Collection(
        id=row.id, name=row.name, type=row.type, system=bool(row.system),
        fields=[_field_from_dict(d) for d in orjson.loads(row.fields)],
        indexes=orjson.loads(row.indexes), rules=orjson.loads(row.rules),
        options=open_options(row.id, orjson.loads(row.options), keyring), created=row.created, updated=row.updated,
    )


def _no_rule_check(_c: Collection, _rule: str) -> str | None:
    return None


class CollectionStore:
    def __init__(self, db: Database, cipher: RecordCipher | None = None) -> None:
        self.db = db
        #: seals encrypted fields (None without configured keys); given to the collections that have one
        self.cipher = cipher
        #: seals the OAuth2 client secrets in ``options`` (``option_secrets``; None: stored in clear)
        self.options_keyring: Keyring | None = None
        self._md, self.table, self.params = system_metadata()
        self._lock = threading.Lock()
        self._by_key: dict[str, Collection] = {}
        self._ordered: list[Collection] = []
        self.rule_validator: RuleValidator = _no_rule_check
        self._tables: dict[tuple[str, str, str], Table] = {}
        #: called after a committed schema change (the app turns it into ``collection_after_change``)
        self.on_change: list[Callable[[], None]] = []
        #: called with each deleted collection once its delete has committed (e.g. to remove files)
        self.on_deleted: list[Callable[[Collection], None]] = []

    # --- bootstrap and cache ---
    def bootstrap(self) -> None:
        """Create system tables and built-in collections on first start."""
        with self.db.write() as conn:
            self._md.create_all(conn, checkfirst=True)
            if conn.execute(select(func.count()).select_from(self.table)).scalar_one() == 0:
                now = now_str()
                for i, c in enumerate(builtin.builtin_collections(now)):
                    create_collection_table(conn, c)
                    conn.execute(insert(self.table).values(_to_row(c, i + 1, self.options_keyring)))
        self.refresh()

    def refresh(self, conn: Connection | None = None) -> None:
        if conn is None:
            with self.db.read() as rconn:
                rows = rconn.execute(select(self.table).order_by(self.table.c.seq)).all()
        else:
            rows = conn.execute(select(self.table).order_by(self.table.c.seq)).all()
        ordered = [_from_row(r, self.options_keyring) for r in rows]
        for c in ordered:
            if sealed_fields(c):
                c.cipher = self.cipher
        by_key: dict[str, Collection] = {}
        for c in ordered:
            by_key[c.id] = c
            by_key.setdefault(c.name.lower(), c)
        with self._lock:
            self._ordered, self._by_key = ordered, by_key
        if conn is None and not self.db.is_sqlite:  # after a commit, or a change made on another node
            from .dialects.postgres import forget_prepared_statements

            forget_prepared_statements(self.db.reader)

    def all(self) -> list[Collection]:
        return list(self._ordered)

    def find(self, id_or_name: str) -> Collection | None:
        return self._by_key.get(id_or_name) or self._by_key.get(id_or_name.lower())

    def get(self, id_or_name: str) -> Collection:
        c = self.find(id_or_name)
        if c is None:
            raise NotFoundError()
        return c

    # --- changes ---
    def _save(self, payload: dict[str, Any], old: Collection | None, fail_message: str) -> Collection:
        with self.db.write() as conn:
            self.refresh(conn)
            others = [c for c in self._ordered if old is None or c.id != old.id]
            new = collection_from_payload(payload, old, now_str(), {c.id for c in others})
            try:
                validate_collection(new, old, others, self.rule_validator, fail_message)
                check_collection(new, old, self.cipher)
            except ValidationError as exc:
                raise ValidationError(fail_message, exc.data) from exc
            if new.type == "view":
                from .views import infer_view_fields

                try:
                    new.fields = infer_view_fields(conn, new, others)
                except ValidationError as exc:
                    raise ValidationError(fail_message, exc.data) from exc
            try:
                with conn.begin_nested():
                    if old is None:
                        create_collection_table(conn, new)
                        seq = (conn.execute(select(func.max(self.table.c.seq))).scalar() or 0) + 1
                        conn.execute(insert(self.table).values(_to_row(new, seq, self.options_keyring)))
                    else:
                        prepare_columns(conn, old, new)
                        alter_collection_table(conn, old, new)
                        finish_columns(conn, old, new, self.cipher)
                        row = _to_row(new, 0, self.options_keyring)
                        row.pop("seq")
                        conn.execute(update(self.table).where(self.table.c.id == old.id).values(row))
            except SQLAlchemyError as exc:
                if new.type == "view":
                    from .views import db_error_detail

                    raise ValidationError(fail_message, {
                        "viewQuery": _view_error(db_error_detail(exc))}) from exc
                raise BadRequestError(fail_message) from exc
            self.refresh(conn)
        self.refresh()
        self._changed()
        return new

    def create(self, payload: dict[str, Any]) -> Collection:
        return self._save(payload, None, "Failed to create collection.")

    def update(self, id_or_name: str, payload: dict[str, Any]) -> Collection:
        return self._save(payload, self.get(id_or_name), "Failed to update collection.")

    def delete(self, id_or_name: str, ignore_refs_from: set[str] | None = None) -> None:
        c = self.get(id_or_name)
        if c.system:
            raise BadRequestError("Failed to delete collection.")
        refs = self.referencing(c) - (ignore_refs_from or set())
        if refs:
            raise BadRequestError(
                "Failed to delete collection probably due to existing reference in " + ", ".join(sorted(refs)) + ".")
        with self.db.write() as conn:
            drop_collection_table(conn, c)
            conn.execute(delete(self.table).where(self.table.c.id == c.id))
            after_commit(conn, lambda: self._deleted(c))
        self.refresh()
        self._changed()

    def referencing(self, c: Collection) -> set[str]:
        refs: set[str] = set()
        for o in self._ordered:
            if o.id == c.id:
                continue
            for f in o.fields:
                if f.type == "relation" and f.options.get("collectionId") == c.id:
                    refs.add(o.name)
            if o.type == "view" and c.name.lower() in o.options.get("viewQuery", "").lower():
                refs.add(o.name)
        return refs

    def import_collections(self, items: list[dict[str, Any]], delete_missing: bool) -> None:
        """All-or-nothing import: every change in one transaction.

        The registry is refreshed only after the transaction has ended: refreshing inside it
        would cache collections that a rollback then removes.
        """
        try:
            with self.db.write():
                item: dict[str, Any] = {}
                try:
                    if delete_missing:  # first, as PocketBase does; references among them don't block
                        keep = ({str(i.get("id") or "") for i in items}
                                | {str(i.get("name") or "").lower() for i in items})
                        missing = [c for c in self.all()
                                   if not c.system and c.id not in keep and c.name.lower() not in keep]
                        gone = {c.name for c in missing}
                        for c in missing:
                            self.delete(c.id, ignore_refs_from=gone)
                    for item in items:
                        key = item.get("id") or item.get("name") or ""
                        old = self.find(key) if isinstance(key, str) and key else None
                        self._save(item, old, "Failed to import collections.")
                except ValidationError as exc:
                    raise ValidationError("Failed to import collections.", {"collections": FieldError(
                        "validation_collections_import_failure",
                        _import_failure_message(item, exc.data))}) from exc
        finally:
            self.refresh()
        self._changed()

    def _deleted(self, c: Collection) -> None:
        for fn in list(self.on_deleted):
            try:
                fn(c)
            except Exception:  # a failed clean-up must not fail the committed delete
                log.exception("clean-up after deleting collection %s failed", c.name)

    def _changed(self) -> None:
        for fn in list(self.on_change):
            fn()

    def records_table(self, c: Collection) -> Table:
        """The (cached) Table of a collection; reusing it keeps SQLAlchemy's statement cache warm."""
        key = (c.id, c.name, c.updated)
        table = self._tables.get(key)
        if table is None:
            from sqlalchemy import MetaData

            from .schema import table_for, view_table_for

            table = view_table_for(c, MetaData()) if c.type == "view" else table_for(c, MetaData(), self.db.dialect)
            if len(self._tables) > 1024:
                self._tables.clear()
            self._tables[key] = table
        return table


def _import_failure_message(item: dict[str, Any], data: dict[str, Any]) -> str:
    """PocketBase's text: the failing collection, then its errors as an indented message map."""
    name = item.get("name", "")
    name = name if isinstance(name, str) else ""
    cid = item.get("id") or ""
    if not isinstance(cid, str) or not cid:
        ctype = item.get("type") if isinstance(item.get("type"), str) else "base"
        cid = collection_id(str(ctype), name)
    detail = orjson.dumps(_messages(data), option=orjson.OPT_INDENT_2).decode()
    return f'Data validations failed for collection "{name}" ({cid}):\n{detail}'


def _messages(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, FieldError):
            out[key] = raw_message(value)
        elif isinstance(value, dict):
            out[key] = _messages(value)
        else:
            out[key] = "Invalid value."
    return out


def _view_error(detail: str) -> Any:
    from ..core.errors import FieldError

    return FieldError("validation_invalid_view_query", f"Invalid query - {detail}")

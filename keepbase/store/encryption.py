"""Encrypted fields: values sealed with the keyring on the way into the database, opened on the way out.

A field with ``encrypted: true`` (text, email, editor, json, url; see ``FieldType.check_encryption``)
stores ``security.keyring`` ciphertext in its column, bound to the record: the associated data is
``<collection id> NUL <field id> NUL <record id>``, so a value copied to another row or field does
not open (``OpenError``, never garbage). Next to it, the column ``<field id>:bi`` (``schema``)
holds the value's blind index: HMAC-SHA-256 over ``<collection id> NUL <field id> NUL <normalised
value>`` (``FieldType.blind_text``), which equality filters and rules (``resolver``) and unique
indexes (``indexes.build_index``) use. Empty values are stored as they are (see
``FieldType.seal_text``).

The API reads and writes plain values: ``seal_row`` runs in the record writes, ``open_values`` in
``record_input.row_values`` and the output plans in ``record_output``. A collection without an
encrypted field has ``cipher = None`` and none of this runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, MetaData, Table, and_, func, literal, not_, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from ..core.errors import ApiError, FieldError, StartupError, ValidationError
from ..security.keyring import PREFIX, Keyring, KeyringError, key_id_of
from .fields import get_type
from .models import Collection, Field
from .schema import blind_index_column, blind_index_name, table_for

log = logging.getLogger("keepbase.encryption")
KEYS_SETTING = "KEEPBASE_ENCRYPTION_KEYS"
MIGRATE_BATCH = 500


class OpenError(ApiError):
    """500: a stored encrypted value cannot be opened (altered, copied from another record or
    field, or written under a key that is not configured). Never answered with garbage."""

    def __init__(self, c: Collection, f: Field, record_id: str, why: str) -> None:
        super().__init__(500, f'The encrypted value of field "{f.name}" of record "{record_id}" in collection '
                              f'"{c.name}" cannot be decrypted: {why}.')


def sealed_fields(c: Collection) -> list[Field]:
    return [f for f in c.fields if f.options.get("encrypted")] if not c.is_view else []


def _aad(c: Collection, f: Field, record_id: str) -> bytes:
    return f"{c.id}\x00{f.id}\x00{record_id}".encode()


def _blind_message(c: Collection, f: Field, text: str) -> bytes:
    return f"{c.id}\x00{f.id}\x00{text}".encode()


@dataclass(frozen=True)
class RecordCipher:
    """The keyring applied to records. ``Collection.cipher`` holds it for collections with an
    encrypted field."""

    keyring: Keyring

    def seal(self, c: Collection, f: Field, record_id: str, value: Any) -> tuple[Any, str | None]:
        """(stored value, blind index) of a field value as ``to_db`` gives it."""
        handler = get_type(f.type)
        assert handler is not None
        text = handler.seal_text(f, value)
        if text is None:
            return value, None
        bt = handler.blind_text(f, value)
        blind = None if bt is None else self.keyring.blind_index(_blind_message(c, f, bt))
        return self.keyring.encrypt(text.encode(), _aad(c, f, record_id)), blind

    def open(self, c: Collection, f: Field, record_id: str, stored: Any) -> Any:
        """The stored column value back as ``to_db`` gave it (empty values pass as they are)."""
        if not isinstance(stored, str) or stored == "":
            return stored
        try:
            plain = self.keyring.decrypt(stored, _aad(c, f, record_id))
        except KeyringError as exc:
            log.error("cannot decrypt %s.%s of record %s: %s", c.name, f.name, record_id, exc)
            raise OpenError(c, f, record_id, str(exc)) from None
        handler = get_type(f.type)
        assert handler is not None
        return handler.unseal_text(f, plain.decode())

    def blind_literals(self, c: Collection, f: Field, value: Any) -> list[str]:
        """The blind indexes a filter value may be stored under (one per key: during a rotation some
        values are still under an older key); [] for an empty value."""
        handler = get_type(f.type)
        assert handler is not None
        text = handler.blind_literal(f, value)
        return [] if text is None else self.keyring.blind_indexes(_blind_message(c, f, text))

    def blind(self, c: Collection, f: Field, value: Any) -> str | None:
        """The blind index a value is stored with under the primary key."""
        handler = get_type(f.type)
        assert handler is not None
        text = handler.blind_text(f, value)
        return None if text is None else self.keyring.blind_index(_blind_message(c, f, text))


# --------------------------------------------------------------------------- records


def seal_row(c: Collection, record_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` (column → ``to_db`` value) with its encrypted fields sealed and their blind indexes
    added. Unchanged (and free) for a collection without encrypted fields."""
    cipher: RecordCipher | None = c.cipher
    if cipher is None:
        return row
    out = dict(row)
    for f in sealed_fields(c):
        if f.name in out:
            out[f.name], out[blind_index_name(f)] = cipher.seal(c, f, record_id, out[f.name])
    return out


def open_values(c: Collection, mapping: Any, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (``row_values``) with the encrypted fields opened; ``mapping`` is the row (its ``id``
    names the record)."""
    cipher: RecordCipher | None = c.cipher
    if cipher is None or "id" not in mapping:
        return values
    record_id = mapping["id"]
    for f in sealed_fields(c):
        if f.name in values:
            opened = cipher.open(c, f, record_id, values[f.name])
            values[f.name] = opened if opened is not None or f.type == "json" else ""
    return values


def blind_labels(c: Collection, values: dict[str, Any], table: Table) -> list[ColumnElement[Any]]:
    """The blind index columns of a would-be record, for the one-row CTE a create rule runs on."""
    cipher: RecordCipher | None = c.cipher
    if cipher is None:
        return []
    return [literal(cipher.blind(c, f, values.get(f.name)), table.c[blind_index_name(f)].type)
            .label(blind_index_name(f)) for f in sealed_fields(c)]


def blind_index_names(c: Collection) -> list[str]:
    """The blind index columns of a collection (none without encrypted fields)."""
    return [blind_index_name(f) for f in sealed_fields(c)] if c.cipher is not None else []


def field_of_column(c: Collection, column: str) -> str:
    """The field a column belongs to (a blind index column → its field's name)."""
    for f in sealed_fields(c):
        if blind_index_name(f) == column:
            return f.name
    return column


# --------------------------------------------------------------------------- collections


def check_collection(new: Collection, old: Collection | None, cipher: RecordCipher | None) -> None:
    """Raise ValidationError for encrypted fields the collection may not have: a type that
    cannot be encrypted, a system field, no configured keys, or an index that needs more than
    equality (COLLATE, a WHERE clause) on one."""
    from .indexes import IndexParseError, parse_index

    if new.is_view:
        return
    errors: dict[str, Any] = {}
    for i, f in enumerate(new.fields):
        handler = get_type(f.type)
        error = handler.check_encryption(f) if handler is not None else None
        if error is None and f.options.get("encrypted") and cipher is None:
            error = FieldError("validation_encryption_keys_missing",
                               f"Encrypted fields need encryption keys: set {KEYS_SETTING} (or "
                               f"{KEYS_SETTING}_FILE) and restart the server.")
        if error is not None:
            errors[str(i)] = {"encrypted": error}
    if errors:
        raise ValidationError("", {"fields": errors})
    sealed = {f.name.lower() for f in sealed_fields(new)}
    for i, sql in enumerate(new.indexes):
        try:
            parsed = parse_index(sql)
        except IndexParseError:
            continue
        where_cols = {col.lower() for col, _op, _v in parsed.where}
        if any((col.name.lower() in sealed and (col.collate or col.desc)) for col in parsed.columns) or (
                where_cols & sealed):
            raise ValidationError("", {"indexes": {str(i): FieldError(
                "validation_encrypted_index",
                "An index on an encrypted field can only list it as a plain column (no COLLATE, DESC or "
                "WHERE on it): the index is built on its blind index.")}})


def prepare_columns(conn: Connection, old: Collection, new: Collection) -> None:
    """Before a schema change: add the blind index column of every field that becomes encrypted
    (the change's index rebuild may need it)."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    before = {f.id for f in sealed_fields(old)}
    ops = Operations(MigrationContext.configure(conn))
    for f in sealed_fields(new):
        if f.id not in before:
            ops.add_column(old.name, blind_index_column(f))


def finish_columns(conn: Connection, old: Collection, new: Collection, cipher: RecordCipher | None) -> None:
    """After a schema change: drop the blind index columns no field needs any more, and seal (or
    open) the stored values of a field whose ``encrypted`` option changed, in batches."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    now = {f.id for f in sealed_fields(new)}
    by_id = {f.id: f for f in new.fields}
    ops = Operations(MigrationContext.configure(conn))
    turned_off: list[Field] = []
    for f in sealed_fields(old):
        if f.id not in now:
            if f.id in by_id:
                turned_off.append(by_id[f.id])
            else:
                ops.drop_column(new.name, blind_index_name(f))
    turned_on = [f for f in sealed_fields(new) if f.id not in {g.id for g in sealed_fields(old)}
                 and f.id in {g.id for g in old.fields}]
    if not (turned_on or turned_off):
        return
    if cipher is None:
        raise ValidationError("", {"fields": FieldError("validation_encryption_keys_missing",
                                                        f"Set {KEYS_SETTING} to change encrypted fields.")})
    from dataclasses import replace

    sealing = replace(new, cipher=cipher)  # the field keeps its id: values are bound to it either way
    table = table_for(new, MetaData(), conn.dialect.name)
    for f in turned_on:
        _migrate_field(conn, table, f, lambda rid, v, f=f: cipher.seal(sealing, f, rid, v))
    for f in turned_off:
        _migrate_field(conn, table, f, lambda rid, v, f=f: (cipher.open(sealing, f, rid, v), None))
        ops.drop_column(new.name, blind_index_name(f))


def _migrate_field(conn: Connection, table: Table, f: Field,
                   convert: Callable[[str, Any], tuple[Any, str | None]]) -> None:
    col, bi = table.c[f.name], blind_index_name(f)
    last = ""
    while True:  # in id order, a batch at a time (memory stays flat on large tables)
        rows = conn.execute(select(table.c.id, col).where(table.c.id > last).order_by(table.c.id)
                            .limit(MIGRATE_BATCH)).all()
        if not rows:
            return
        for rid, value in rows:
            stored, blind = convert(rid, value)
            values = {f.name: stored, bi: blind} if bi in table.c else {f.name: stored}
            conn.execute(update(table).where(table.c.id == rid).values(values))
        last = rows[-1][0]


# --------------------------------------------------------------------------- start-up and rotation


def _value_columns(c: Collection, table: Table) -> Iterator[tuple[Field, Any]]:
    for f in sealed_fields(c):
        yield f, table.c[f.name]


def _not_under(col: Any, key_ids: tuple[str, ...]) -> ColumnElement[bool]:
    """Values (not empty) that are not sealed under any of ``key_ids``."""
    under = or_(*[col.startswith(f"{PREFIX}{kid}.", autoescape=True) for kid in key_ids])
    return and_(col.is_not(None), col != "", not_(under))


def check_keys(collections: Any, db: Any, cipher: RecordCipher | None) -> None:
    """Raise StartupError when stored values need a key that is not configured (one line naming
    the collection, field and key id, and the setting)."""
    for c in collections.all():
        fields = sealed_fields(c)
        if not fields:
            continue
        if cipher is None:
            raise StartupError(f'collection "{c.name}" has encrypted fields ({", ".join(f.name for f in fields)}) '
                               f"but no encryption keys are configured; set {KEYS_SETTING} or {KEYS_SETTING}_FILE")
        table = collections.records_table(c)
        with db.read() as conn:
            for f, col in _value_columns(c, table):
                stored = conn.execute(select(col).where(_not_under(col, cipher.keyring.ids)).limit(1)).scalar()
                if stored is not None:
                    kid = key_id_of(stored)
                    what = f"the key {kid!r}" if kid else "a key"
                    raise StartupError(
                        f'field "{f.name}" of collection "{c.name}" holds values encrypted with {what}, which '
                        f"is not in {KEYS_SETTING} (configured: {', '.join(cipher.keyring.ids)}); add that key "
                        "back (after the newest one) and run `keepbase keys rotate` before removing it")


@dataclass
class RotationStep:
    rotated: int
    remaining: int


def rotate_batch(collections: Any, db: Any, batch: int) -> RotationStep:
    """Re-encrypt up to ``batch`` records whose encrypted values are not all under the newest key
    (values already under it are left alone), in one write transaction, then count what is left.
    ``batch`` 0 only counts. Safe to interrupt and run again."""
    rotated = 0
    for c in collections.all():
        cipher: RecordCipher | None = c.cipher
        fields = sealed_fields(c)
        if cipher is None or not fields or rotated >= batch:
            continue
        table = collections.records_table(c)
        primary = (cipher.keyring.primary.id,)
        stale = or_(*[_not_under(table.c[f.name], primary) for f in fields])
        with db.write() as conn:
            stmt = select(table.c.id, *[table.c[f.name] for f in fields]).where(stale).limit(batch - rotated)
            if conn.dialect.name == "postgresql":
                stmt = stmt.with_for_update()
            for row in conn.execute(stmt).all():
                rid, values = row[0], {}
                for f, stored in zip(fields, row[1:], strict=True):
                    if key_id_of(stored or "") not in (None, primary[0]):
                        plain = cipher.open(c, f, rid, stored)
                        values[f.name], values[blind_index_name(f)] = cipher.seal(c, f, rid, plain)
                conn.execute(update(table).where(table.c.id == rid).values(values))
                rotated += 1
    remaining = 0
    with db.read() as conn:
        for c in collections.all():
            fields = sealed_fields(c)
            if c.cipher is None or not fields:
                continue
            table = collections.records_table(c)
            stale = or_(*[_not_under(table.c[f.name], (c.cipher.keyring.primary.id,)) for f in fields])
            remaining += conn.execute(select(func.count()).select_from(table).where(stale)).scalar_one()
    return RotationStep(rotated, remaining)

"""Collections → SQLAlchemy ``Table`` objects, and the system tables.

How values are stored (identical on SQLite and PostgreSQL, so rules mean the same on both):

| field type                                            | column                                  |
| ----------------------------------------------------- | --------------------------------------- |
| text, email, url, editor, date, autodate, password,   | TEXT NOT NULL DEFAULT '' (PG: "C"       |
| single select / file / relation                       | collation, byte order like SQLite)      |
| select / file / relation with maxSelect > 1           | TEXT NOT NULL DEFAULT '[]' (JSON array) |
| number                                                | FLOAT NOT NULL DEFAULT 0                |
| bool                                                  | INTEGER NOT NULL DEFAULT 0 (0 or 1)     |
| json                                                  | TEXT NULL (JSON text; NULL is null)     |
| geoPoint                                              | TEXT NOT NULL (JSON ``{"lon","lat"}``)  |

Insertion order: SQLite's implicit ``rowid``; on PostgreSQL an identity column ``_rowid``.

An encrypted field (``encrypted: true``) stores ciphertext in its column, plus its blind index in
a column ``<field id>:bi`` (TEXT NULL; named after the id, which renames never change, with a
``:`` no field name can hold) that equality filters and unique indexes use (``store.encryption``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Identity,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    literal_column,
)
from sqlalchemy.sql.elements import ColumnElement

from .models import Collection, Field

PG_ROWID = "_rowid"

_TEXT_TYPES = frozenset({"text", "email", "url", "editor", "date", "autodate", "password"})


def text_type() -> Any:
    return Text().with_variant(Text(collation="C"), "postgresql")


def column_for(f: Field) -> Column[Any]:
    """The SQL column that stores field ``f``."""
    if f.type == "number":
        return Column(f.name, Float, nullable=False, server_default="0")
    if f.type == "bool":
        return Column(f.name, Integer, nullable=False, server_default="0")
    if f.type == "json":
        return Column(f.name, text_type(), nullable=True)
    if f.type == "geoPoint":
        return Column(f.name, text_type(), nullable=False, server_default='{"lon":0,"lat":0}')
    if f.multiple:
        return Column(f.name, text_type(), nullable=False, server_default="[]")
    if f.name == "id" and f.options.get("primaryKey"):
        return Column(f.name, text_type(), primary_key=True)
    return Column(f.name, text_type(), nullable=False, server_default="")


def blind_index_name(f: Field) -> str:
    """The column holding the blind index of an encrypted field."""
    return f"{f.id}:bi"


def blind_index_column(f: Field) -> Column[Any]:
    return Column(blind_index_name(f), text_type(), nullable=True)


def table_for(collection: Collection, metadata: MetaData | None = None, dialect: str = "sqlite",
              name: str | None = None) -> Table:
    """Build the ``Table`` for a (non-view) collection's records."""
    md = metadata if metadata is not None else MetaData()
    cols: list[Column[Any]] = []
    for f in collection.fields:
        cols.append(column_for(f))
        if f.options.get("encrypted"):  # its indexes are built on the blind index (indexes.build_index)
            cols[-1].info["blind_index"] = blind_index_name(f)
            cols.append(blind_index_column(f))
    if dialect == "postgresql":
        cols.append(Column(PG_ROWID, BigInteger, Identity(always=False), nullable=False))
    return Table(name or collection.name, md, *cols)


def view_table_for(collection: Collection, metadata: MetaData | None = None) -> Table:
    """A lightweight table object for a view (read-only, no DDL)."""
    md = metadata if metadata is not None else MetaData()
    cols = [Column(f.name, _view_col_type(f)) for f in collection.fields]
    return Table(collection.name, md, *cols)


def _view_col_type(f: Field) -> Any:
    if f.type == "number":
        return Float
    if f.type == "bool":
        return Integer
    return String


def rowid_column(table: Table, dialect: str) -> ColumnElement[Any]:
    """The insertion-order key of a records table (``@rowid``)."""
    if dialect == "postgresql":
        return table.c[PG_ROWID]
    return literal_column(f'"{table.name}".rowid')


def system_metadata() -> tuple[MetaData, Table, Table]:
    """The tables keepbase keeps about itself: collections and key/value params."""
    md = MetaData()
    collections = Table(
        "_collections",
        md,
        Column("id", text_type(), primary_key=True),
        Column("system", Integer, nullable=False, server_default="0"),
        Column("type", text_type(), nullable=False, server_default="base"),
        Column("name", text_type(), nullable=False, unique=True),
        Column("fields", text_type(), nullable=False, server_default="[]"),
        Column("indexes", text_type(), nullable=False, server_default="[]"),
        Column("rules", text_type(), nullable=False, server_default="{}"),
        Column("options", text_type(), nullable=False, server_default="{}"),
        Column("created", text_type(), nullable=False, server_default=""),
        Column("updated", text_type(), nullable=False, server_default=""),
        Column("seq", BigInteger, nullable=False, server_default="0"),
    )
    params = Table(
        "_params",
        md,
        Column("id", text_type(), primary_key=True),
        Column("value", text_type(), nullable=True),
        Column("created", text_type(), nullable=False, server_default=""),
        Column("updated", text_type(), nullable=False, server_default=""),
    )
    return md, collections, params

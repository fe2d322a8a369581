"""Schema changes as real migrations, inside the caller's transaction.

Both engines have transactional DDL, so a failing change rolls back schema and data together.
Columns are matched by field id: a renamed field keeps its values (RENAME COLUMN), an added
field gets its type's default, a removed field's column is dropped, and a field switching
between one value and many (maxSelect 1 ↔ n) has its values converted row by row.
Identifiers are quoted by SQLAlchemy/alembic; no value is ever written into DDL text.
"""

from __future__ import annotations

from typing import Any

import orjson
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, MetaData, Table, select, update
from sqlalchemy.schema import CreateTable, DropTable

from .indexes import build_index, parse_index
from .models import Collection, Field
from .schema import column_for, table_for


def _ops(conn: Connection) -> Operations:
    return Operations(MigrationContext.configure(conn))


def dialect_of(conn: Connection) -> str:
    return conn.dialect.name


def create_indexes(conn: Connection, c: Collection) -> None:
    table = table_for(c, MetaData(), dialect_of(conn))
    for sql in c.indexes:
        build_index(parse_index(sql), table, dialect_of(conn)).create(conn)


def drop_indexes(conn: Connection, c: Collection) -> None:
    ops = _ops(conn)
    for sql in c.indexes:
        ops.drop_index(parse_index(sql).name, table_name=c.name)


def create_collection_table(conn: Connection, c: Collection) -> None:
    if c.type == "view":
        create_view(conn, c)
        return
    table = table_for(c, MetaData(), dialect_of(conn))
    conn.execute(CreateTable(table))
    create_indexes(conn, c)


def drop_collection_table(conn: Connection, c: Collection) -> None:
    if c.type == "view":
        drop_view(conn, c.name)
        return
    conn.execute(DropTable(Table(c.name, MetaData())))


def create_view(conn: Connection, c: Collection) -> None:
    name = conn.dialect.identifier_preparer.quote(c.name)
    # The view query is SQL written by a superuser (as in PocketBase); it is the one place where
    # SQL text from the API reaches the database, and only superusers may submit it.
    query = c.options.get("viewQuery", "").strip().strip(";")
    conn.exec_driver_sql(f"CREATE VIEW {name} AS {query}")
    # SQLite resolves a view's tables only when it is queried: run it once so that a view over a
    # missing table or column fails here, at save time, as it does on PostgreSQL.
    result = conn.exec_driver_sql(f"SELECT * FROM {name} LIMIT 0")  # noqa: S608 - quoted identifier only
    description = list(result.cursor.description or []) if result.cursor else []
    result.close()
    if not _view_id_is_text(conn, name, description):
        # PocketBase's normalizeViewQueryId: a computed id (``ROW_NUMBER() OVER()``, an integer) is
        # wrapped in CAST(id AS TEXT), so lookups by id, filters and sort treat it as the text it is
        q = conn.dialect.identifier_preparer.quote
        text_id = 'CAST("id" AS TEXT) COLLATE "C"' if dialect_of(conn) == "postgresql" else 'CAST("id" AS TEXT)'
        cols = ", ".join(f'{text_id} AS "id"' if d[0] == "id" else q(d[0]) for d in description)
        drop_view(conn, c.name)
        conn.exec_driver_sql(f"CREATE VIEW {name} AS SELECT {cols} FROM ({query}) AS _kb_view")  # noqa: S608


def _view_id_is_text(conn: Connection, name: str, description: list[Any]) -> bool:
    """Whether the view's ``id`` column is declared TEXT (SQLite) or is of type text (PostgreSQL)."""
    if dialect_of(conn) == "postgresql":
        return any(d[0] == "id" and d[1] == 25 for d in description)  # 25: the oid of text
    rows = conn.exec_driver_sql(f"PRAGMA table_info({name})").all()
    return any(r[1] == "id" and str(r[2]).upper() == "TEXT" for r in rows)


def drop_view(conn: Connection, name: str) -> None:
    conn.exec_driver_sql(f"DROP VIEW IF EXISTS {conn.dialect.identifier_preparer.quote(name)}")


def alter_collection_table(conn: Connection, old: Collection, new: Collection) -> None:
    if new.type == "view":
        drop_view(conn, old.name)
        create_view(conn, new)
        return
    ops = _ops(conn)
    drop_indexes(conn, old)
    if old.name != new.name:
        ops.rename_table(old.name, new.name)
    old_by_id = {f.id: f for f in old.fields}
    new_ids = {f.id for f in new.fields}
    for f in old.fields:
        if f.id not in new_ids:
            ops.drop_column(new.name, f.name)
    renamed = [(old_by_id[f.id], f) for f in new.fields if f.id in old_by_id and old_by_id[f.id].name != f.name]
    for prev, _f in renamed:  # two phases so that swapping two names never collides
        ops.alter_column(new.name, prev.name, new_column_name=f"_kb_tmp_{prev.id}")
    for prev, f in renamed:
        ops.alter_column(new.name, f"_kb_tmp_{prev.id}", new_column_name=f.name)
    for f in new.fields:
        if f.id not in old_by_id:
            ops.add_column(new.name, column_for(f))
    for f in new.fields:
        prev = old_by_id.get(f.id)
        if prev is not None and prev.multiple != f.multiple:
            _convert_cardinality(conn, new, f)
    create_indexes(conn, new)


def _convert_cardinality(conn: Connection, c: Collection, f: Field) -> None:
    table = table_for(c, MetaData(), dialect_of(conn))
    col = table.c[f.name]
    rows = conn.execute(select(table.c.id, col)).all()
    for rid, value in rows:
        new_value: Any
        if f.multiple:  # one → many
            new_value = orjson.dumps([value] if value else []).decode()
        else:  # many → one: keep the last element, as PocketBase does
            try:
                items = orjson.loads(value or "[]")
            except orjson.JSONDecodeError:
                items = []
            new_value = items[-1] if isinstance(items, list) and items else ""
        conn.execute(update(table).where(table.c.id == rid).values({f.name: new_value}))

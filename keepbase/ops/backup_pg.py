"""PostgreSQL backups in keepbase's own archive format (see ``backup_archive``).

*Dump*: one READ ONLY, REPEATABLE READ transaction reads keepbase's tables: every collection
table, plus every table of the current schema whose name starts with ``_`` (``_collections``,
``_params``, ``_audit``, ...; not ``_logs``; other tables in a shared database are not keepbase's
and are left out). Each table becomes ``db/<table>.jsonl``, one JSON object per row, streamed from a
server-side cursor straight into the zip. ``_collections`` is among them: it *is* the schema.

*Load*: in one transaction on the live database: drop the current collection tables and views,
replace the rows of every archived system table, create the archived collections' tables
(then their views) with keepbase's own DDL, and insert their rows. Identity sequences are moved
past the restored values. Any error rolls the whole transaction back: nothing changes.
"""

from __future__ import annotations

import re
import types
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from sqlalchemy import Connection, MetaData, Table, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from ..store.collections import _from_row
from ..store.db import Database
from ..store.migrate import create_collection_table, drop_collection_table
from ..store.models import Collection
from ..store.schema import PG_ROWID, table_for
from .backup_archive import TABLE_PREFIX, InvalidArchiveError

BATCH = 1000
# request logs are not data (and live in auxiliary.db on SQLite, outside its backups too); the
# realtime change log (realtime/changelog.py) only wakes live nodes: its rows mean nothing elsewhere
EXCLUDED = frozenset({"_logs", "_kbChanges"})
_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")


def _quoted(conn: Connection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))


def _collections(conn: Connection, table: Table) -> list[Collection]:
    return [_from_row(r) for r in conn.execute(select(table).order_by(table.c.seq)).all()]


def _table_names(conn: Connection, collections: list[Collection]) -> list[str]:
    rows = conn.exec_driver_sql(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'").all()
    existing = {str(r[0]) for r in rows}
    wanted = {c.name for c in collections if not c.is_view} | {n for n in existing if n.startswith("_")}
    return sorted(n for n in wanted if n in existing and n not in EXCLUDED)


def dump(db: Database, collections_table: Table, zf: zipfile.ZipFile,
         after_snapshot: Callable[[], None]) -> list[dict[str, Any]]:
    """Write every keepbase table into ``zf``; returns the manifest's table list. ``after_snapshot``
    runs once the transaction's snapshot is taken (the caller stages the storage tree there)."""
    out: list[dict[str, Any]] = []
    with db.reader.connect() as raw:
        conn = raw.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            conn.exec_driver_sql("SET LOCAL idle_in_transaction_session_timeout = 0")
            collections = _collections(conn, collections_table)  # the first read: the snapshot
            after_snapshot()
            collection_names = {c.name for c in collections if not c.is_view}
            for name in _table_names(conn, collections):
                table = Table(name, MetaData(), autoload_with=conn)
                rows = 0
                columns = [str(c.name) for c in table.columns]  # quoted_name → str (orjson keys)
                with zf.open(f"{TABLE_PREFIX}{name}.jsonl", "w", force_zip64=True) as fh:
                    result = conn.execution_options(yield_per=BATCH).execute(select(table))
                    try:
                        for part in result.partitions():
                            fh.write(b"".join(orjson.dumps(dict(zip(columns, row, strict=True)), default=str)
                                              + b"\n" for row in part))
                            rows += len(part)
                    finally:
                        result.close()
                out.append({"name": name, "columns": columns, "rows": rows,
                            "collection": name in collection_names})
    return out


def _rows(zf: zipfile.ZipFile, name: str) -> Iterator[list[dict[str, Any]]]:
    """The archived rows of table ``name``, in batches."""
    try:
        fh = zf.open(f"{TABLE_PREFIX}{name}.jsonl")
    except KeyError:
        raise InvalidArchiveError(f"missing {TABLE_PREFIX}{name}.jsonl") from None
    with fh:
        batch: list[dict[str, Any]] = []
        for line in fh:
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InvalidArchiveError(f"{name}: bad row: {exc}") from exc
            if not isinstance(row, dict):
                raise InvalidArchiveError(f"{name}: a row is not an object")
            batch.append(row)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch


def _load_rows(conn: Connection, zf: zipfile.ZipFile, name: str, table: Table) -> int:
    known = set(table.c.keys())
    count = 0
    for batch in _rows(zf, name):
        unknown = {k for row in batch for k in row} - known
        if unknown:
            raise InvalidArchiveError(f"{name}: unknown columns {sorted(unknown)}")
        conn.execute(insert(table), batch)
        count += len(batch)
    return count


def _reset_sequences(conn: Connection, table: Table) -> None:
    """Move identity/serial sequences past the restored values."""
    for col in table.columns:
        seq = conn.execute(select(func.pg_get_serial_sequence(_quoted(conn, table.name), col.name))).scalar()
        if not seq:
            continue
        top = conn.execute(select(func.max(col))).scalar()
        if top is None:
            conn.execute(select(func.setval(seq, 1, False)))
        else:
            conn.execute(select(func.setval(seq, int(top))))


def check_manifest(info: dict[str, Any]) -> list[dict[str, Any]]:
    tables = info.get("tables")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise InvalidArchiveError("manifest has no table list")
    names = [t.get("name") for t in tables]
    if not all(isinstance(n, str) and _NAME_RE.match(n) for n in names):
        raise InvalidArchiveError("manifest has an invalid table name")
    if "_collections" not in names or "_params" not in names:
        raise InvalidArchiveError("manifest lists no _collections/_params table (not a keepbase backup)")
    return tables


def load(conn: Connection, zf: zipfile.ZipFile, info: dict[str, Any], collections_table: Table) -> None:
    """Replace every keepbase table's content with the archive's, inside the caller's transaction."""
    tables = check_manifest(info)
    try:
        _load(conn, zf, tables, collections_table)
    except SQLAlchemyError as exc:
        raise InvalidArchiveError(f"the database rejected the archive: {str(exc).splitlines()[0]}") from exc


def _load(conn: Connection, zf: zipfile.ZipFile, tables: list[dict[str, Any]], collections_table: Table) -> None:
    conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
    conn.exec_driver_sql("SET LOCAL idle_in_transaction_session_timeout = 0")
    conn.exec_driver_sql('LOCK TABLE "_collections" IN ACCESS EXCLUSIVE MODE')  # no schema change meanwhile
    archived = _archived_collections(zf)
    archived_tables = {c.name for c in archived if not c.is_view}
    listed = {str(t["name"]) for t in tables}
    if not archived_tables <= listed:
        raise InvalidArchiveError(f"no rows for collections {sorted(archived_tables - listed)}")

    live = _collections(conn, collections_table)
    for c in sorted((c for c in live if c.is_view), key=lambda c: -live.index(c)):
        drop_collection_table(conn, c)
    for c in live:
        if not c.is_view:
            drop_collection_table(conn, c)

    for name in sorted(listed - archived_tables):  # system tables: keep the live DDL, replace the rows
        try:
            table = Table(name, MetaData(), autoload_with=conn)
        except SQLAlchemyError as exc:
            raise InvalidArchiveError(f"table {name} does not exist here") from exc
        conn.execute(delete(table))
        _load_rows(conn, zf, name, table)
        _reset_sequences(conn, table)

    for c in [c for c in archived if not c.is_view] + [c for c in archived if c.is_view]:
        create_collection_table(conn, c)
    for c in archived:
        if c.is_view:
            continue
        table = table_for(c, MetaData(), "postgresql")
        if _load_rows(conn, zf, c.name, table):
            top = conn.execute(select(func.max(table.c[PG_ROWID]))).scalar()
            seq = conn.execute(select(func.pg_get_serial_sequence(_quoted(conn, c.name), PG_ROWID))).scalar()
            if seq and top is not None:
                conn.execute(select(func.setval(seq, int(top))))


def _archived_collections(zf: zipfile.ZipFile) -> list[Collection]:
    rows = [row for batch in _rows(zf, "_collections") for row in batch]
    try:
        rows.sort(key=lambda r: int(r.get("seq") or 0))
        out = [_from_row(types.SimpleNamespace(**r)) for r in rows]
    except (AttributeError, KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidArchiveError(f"_collections: unreadable collection: {exc}") from exc
    for c in out:
        if not _NAME_RE.match(c.name):
            raise InvalidArchiveError(f"_collections: invalid collection name {c.name!r}")
    return out

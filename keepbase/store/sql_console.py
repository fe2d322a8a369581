"""The SQL console (``POST /api/sql``, superusers only): run one statement a superuser wrote.

The answer is PocketBase's: ``{execTime, affectedRows, columns: [{name, type, nullable}], rows}``
with at most ``MAX_ROWS`` rows and every value as text (numbers formatted as Go prints them).

Where it runs, and why:

* SQLite: a statement that only reads (``SELECT``/``WITH``/``VALUES``/``EXPLAIN``) runs on a reader
  connection, which is ``query_only``: if it tries to write after all (``WITH … DELETE``) SQLite
  refuses it there and it is run again on the writer. Everything else (DML, DDL, ``PRAGMA``) runs
  in ``Database.write()``, on keepbase's one writer connection under its lock: never a second
  writer. ``PRAGMA`` may change a connection's settings, so it is refused when it assigns a value
  (``PRAGMA x = …``): the writer's and readers' pragmas are part of keepbase's safety.
* PostgreSQL: every statement runs in one transaction on a pooled connection, in pipeline mode so
  the extended protocol refuses more than one statement.

One statement only (SQLite's driver and PostgreSQL's extended protocol both refuse more), and the
configured statement timeout applies (``statement_timeout_ms``, not PocketBase's 3 minutes).
After any statement that may write, the collections registry is reloaded, so a record change or
a collection row edited by SQL is seen; DDL on a collection's table is not supported
(docs/compatibility.md).
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from sqlalchemy.exc import DBAPIError

from ..core.errors import ApiError, BadRequestError, FieldError, ValidationError
from .collections import CollectionStore
from .db import Database, translate_errors
from .views import db_error_detail

MAX_QUERY = 5000
MAX_ROWS = 1000
_READ_KEYWORDS = frozenset({"select", "with", "values", "explain"})
#: command tags of PostgreSQL statements that change nothing (``VALUES`` answers ``SELECT``)
_PG_READ_STATUSES = frozenset({"SELECT", "EXPLAIN", "SHOW", ""})
_LEADING = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.DOTALL)
_PRAGMA_SET = re.compile(r"^\s*pragma\s+[\w.\"`\[\]]+\s*=", re.IGNORECASE)


def validate_query(query: Any) -> str:
    """The query of a request body, or the 400 PocketBase answers (blank, longer than 5000)."""
    if not isinstance(query, str) or query == "":
        raise ValidationError("An error occurred while validating the submitted data.", {
            "query": FieldError("validation_required", "Cannot be blank.")})
    if len(query) > MAX_QUERY:
        raise ValidationError("An error occurred while validating the submitted data.", {
            "query": FieldError("validation_length_too_long", f"The length must be no more than {MAX_QUERY}.",
                                {"max": MAX_QUERY, "min": 0})})
    return query


def first_keyword(query: str) -> str:
    rest = _LEADING.sub("", query, count=1)
    m = re.match(r"[A-Za-z]+", rest)
    return m.group(0).lower() if m else ""


def go_text(value: Any) -> str | None:
    """A column value as PocketBase's console shows it (Go's ``%v``); None stays null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def go_float(f: float) -> str:
    """Go's ``%v`` of a float64: the shortest digits, in exponent form below 1e-4 and from 1e+06
    (``strconv``'s 'g' with the shortest precision decides with precision 6)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(f)).as_tuple()
    digits = "".join(map(str, digit_tuple))
    assert isinstance(exponent, int)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    point = len(digits) + exponent  # digits before the decimal point
    exp10 = point - 1
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        text = f"{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    elif point <= 0:
        text = "0." + "0" * -point + digits
    elif point >= len(digits):
        text = digits + "0" * (point - len(digits))
    else:
        text = digits[:point] + "." + digits[point:]
    return ("-" if sign else "") + text


def _failed(detail: str) -> BadRequestError:
    return BadRequestError(f"Failed to execute query. Raw error:\n{detail}.")


class SqlConsole:
    def __init__(self, db: Database, collections: CollectionStore) -> None:
        self.db = db
        self.collections = collections

    def execute(self, query: str) -> dict[str, Any]:
        if not query.strip():
            raise _failed("empty query")
        start = time.monotonic()
        try:
            if self.db.is_sqlite:
                columns, rows, affected, wrote = self._sqlite(query)
            else:
                columns, rows, affected, wrote = self._postgres(query)
        except ApiError:
            raise
        except (DBAPIError, sqlite3.Error, psycopg.Error) as exc:
            raise _failed(_detail(exc)) from exc
        if wrote:
            self.collections.refresh()  # a collection row or a record may have changed under the registry
        return {"execTime": int((time.monotonic() - start) * 1000), "affectedRows": affected,
                "columns": columns, "rows": rows}

    # --- SQLite ---
    def _sqlite(self, query: str) -> tuple[list[dict[str, Any]], list[list[str | None]], int, bool]:
        keyword = first_keyword(query)
        if keyword == "pragma" and _PRAGMA_SET.match(_LEADING.sub("", query, count=1)):
            raise _failed("setting a PRAGMA is not supported by keepbase's SQL console")
        if keyword in _READ_KEYWORDS or keyword == "pragma":
            try:
                return (*self._sqlite_read(query), 0, False)
            except sqlite3.OperationalError as exc:
                if "readonly database" not in str(exc) or keyword == "pragma":
                    raise
        with self.db.write() as conn:  # the one writer, under its lock, in BEGIN IMMEDIATE
            dbapi: Any = conn.connection.dbapi_connection
            before = dbapi.total_changes
            cur = dbapi.execute(query)
            try:
                columns, rows = self._sqlite_result(cur, None)
                # the driver's rowcount misses DML behind a WITH: count SQLite's changes instead
                affected = dbapi.total_changes - before
            finally:
                cur.close()
        return columns, rows, affected, True

    def _sqlite_read(self, query: str) -> tuple[list[dict[str, Any]], list[list[str | None]]]:
        fairy = self.db.reader.raw_connection()
        dbapi: Any = fairy.dbapi_connection
        try:
            if hasattr(dbapi, "arm"):
                dbapi.arm()  # the statement timeout
            types = _sqlite_decltypes(dbapi, query)
            cur = dbapi.execute(query)
            try:
                return self._sqlite_result(cur, types)
            finally:
                cur.close()
                if dbapi.in_transaction:
                    dbapi.rollback()
        finally:
            fairy.close()

    @staticmethod
    def _sqlite_result(cur: Any, types: list[str] | None) -> tuple[list[dict[str, Any]], list[list[str | None]]]:
        names = [d[0] for d in cur.description or []]
        if types is None or len(types) != len(names):
            types = [""] * len(names)
        columns = [{"name": n, "type": t, "nullable": True} for n, t in zip(names, types, strict=True)]
        rows = [[go_text(v) for v in row] for row in cur.fetchmany(MAX_ROWS)] if names else []
        return columns, rows

    # --- PostgreSQL ---
    def _postgres(self, query: str) -> tuple[list[dict[str, Any]], list[list[str | None]], int, bool]:
        with translate_errors(self.db), self.db.write() as conn:
            dbapi: Any = conn.connection.dbapi_connection
            cur = dbapi.cursor()
            try:
                with dbapi.pipeline():  # the extended protocol: one statement only
                    cur.execute(query, prepare=False)
                names_types = [(d.name, _pg_type(d.type_code)) for d in cur.description or []]
                columns = [{"name": n, "type": t, "nullable": True} for n, t in names_types]
                rows = [[go_text(v) for v in row] for row in cur.fetchmany(MAX_ROWS)] if names_types else []
                status = (cur.statusmessage or "").split(" ")[0].upper()
                wrote = status not in _PG_READ_STATUSES
                affected = max(cur.rowcount, 0) if wrote else 0
            finally:
                cur.close()
        return columns, rows, affected, wrote


def _sqlite_decltypes(dbapi: Any, query: str) -> list[str] | None:
    """The declared type of each result column, as PocketBase reports it (``TEXT``, ``NUMERIC``,
    ``""`` for an expression). Python's sqlite3 does not expose ``sqlite3_column_decltype``, so
    the query is put in a TEMP view (in memory; it never runs) and the view's columns are read;
    the reader is ``query_only``, lifted for that one statement only."""
    name = "_kb_sql_console"
    try:
        dbapi.execute("PRAGMA query_only = 0")
        try:
            dbapi.execute(f"CREATE TEMP VIEW {name} AS {query.strip().rstrip(';')}")
        finally:
            dbapi.execute("PRAGMA query_only = 1")
    except sqlite3.Error:
        return None
    try:
        return [str(r[2]) for r in dbapi.execute(f"PRAGMA temp.table_info({name})").fetchall()]
    except sqlite3.Error:
        return None
    finally:
        dbapi.execute("PRAGMA query_only = 0")
        try:
            dbapi.execute(f"DROP VIEW IF EXISTS temp.{name}")
        finally:
            dbapi.execute("PRAGMA query_only = 1")


def _pg_type(oid: int) -> str:
    info = psycopg.adapters.types.get(oid)
    return info.name.upper() if info is not None else ""


def _detail(exc: BaseException) -> str:
    orig: Any = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if isinstance(orig, psycopg.Error):
        text = str(orig).strip().splitlines()
        return text[0] if text else type(orig).__name__
    return db_error_detail(orig).rstrip(".")


# --- the view preview (POST /api/collections/meta/dry-run-view) ---
PREVIEW_ROWS = 10


def preview_view(db: Database, collections: CollectionStore, query: str) -> dict[str, Any]:
    """The fields a view query would get and up to ten of its records, under a temporary
    collection name (``temp_view_xxxxx``), as PocketBase's dry run answers; nothing is saved."""
    import secrets

    from ..core.ids import collection_id
    from .models import Collection
    from .record_output import output_plan, row_to_json
    from .views import infer_view_fields

    name = "temp_view_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(5))
    c = Collection(id=collection_id("view", name), name=name, type="view", options={"viewQuery": query})
    with translate_errors(db), db.read() as conn:
        try:
            c.fields = infer_view_fields(conn, c, collections.all())
        except ValidationError as exc:
            problem = exc.data.get("viewQuery")
            detail = problem.message if isinstance(problem, FieldError) else str(exc)
            raise BadRequestError(
                f"Invalid view query. Raw error: \n{detail.removeprefix('Invalid query - ')}.") from exc
        plan = output_plan(c, True)
        quote = conn.dialect.identifier_preparer.quote
        # the id as text, as the saved view has it (migrate.create_view)
        cols = ", ".join('CAST("id" AS TEXT) AS "id"' if n == "id" else quote(n) for n in plan.columns)
        body = query.strip().rstrip(";")
        # the view query is SQL a superuser wrote (as in PocketBase); only column names are added
        rows = conn.exec_driver_sql(
            f"SELECT {cols} FROM ({body}) AS _kb_view LIMIT {PREVIEW_ROWS}").all()  # noqa: S608
    return {"fields": [f.to_dict() for f in c.fields], "sample": [row_to_json(plan, row, True) for row in rows]}


_ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

"""Parse PocketBase's SQLite ``CREATE INDEX`` strings into SQLAlchemy ``Index`` objects.

The original strings are echoed back to clients; what reaches the database is rebuilt from the
parsed form with SQLAlchemy, so both engines get the same index and nothing from the string is
spliced into SQL. Supported: ``[UNIQUE]``, ``IF NOT EXISTS``, plain columns with optional
``COLLATE NOCASE`` (→ ``lower(col)`` on PostgreSQL) and ``ASC/DESC``, and a ``WHERE`` clause made
of ``col <op> literal`` / ``col IS [NOT] NULL`` terms joined by ``AND``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Index, Table, and_, func, literal
from sqlalchemy.sql.elements import ColumnElement

_IDENT = r'(?:`[^`]*`|"[^"]+"|\[[^\]]+\]|\w+)'
_CREATE_RE = re.compile(
    rf"^\s*CREATE\s+(?P<unique>UNIQUE\s+)?INDEX\s+(?P<optional>IF\s+NOT\s+EXISTS\s+)?(?P<name>{_IDENT})\s+"
    rf"ON\s+(?P<table>{_IDENT})?\s*\((?P<cols>[^()]*)\)\s*(?:WHERE\s+(?P<where>.+?))?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_COL_RE = re.compile(rf"^\s*(?P<col>{_IDENT})(?:\s+COLLATE\s+(?P<collate>\w+))?(?:\s+(?P<dir>ASC|DESC))?\s*$",
                     re.IGNORECASE)
_TERM_RE = re.compile(
    rf"^\s*(?P<col>{_IDENT})\s*(?:(?P<op>!=|<>|=|>=|<=|>|<)\s*(?P<lit>'(?:[^']|'')*'|\"[^\"]*\"|-?\d+(?:\.\d+)?)"
    r"|\s+IS\s+(?P<not>NOT\s+)?NULL)\s*$",
    re.IGNORECASE,
)


class IndexParseError(ValueError):
    pass


def unquote(ident: str) -> str:
    if ident[:1] in ("`", '"', "["):
        return ident[1:-1]
    return ident


@dataclass
class IndexColumn:
    name: str
    nocase: bool = False
    desc: bool = False
    collate: str = ""  # as written
    sort: str = ""  # as written (ASC/DESC, any case)


@dataclass
class ParsedIndex:
    name: str
    unique: bool
    table: str
    columns: list[IndexColumn]
    where: list[tuple[str, str, Any]] = field(default_factory=list)  # (column, op, value)
    where_sql: str = ""  # the WHERE clause as written
    optional: bool = False  # IF NOT EXISTS


def parse_index(sql: str) -> ParsedIndex:
    m = _CREATE_RE.match(sql)
    if not m:
        raise IndexParseError(sql)
    cols: list[IndexColumn] = []
    for part in m.group("cols").split(","):
        cm = _COL_RE.match(part)
        if not cm:
            raise IndexParseError(part)
        cols.append(IndexColumn(unquote(cm.group("col")), (cm.group("collate") or "").lower() == "nocase",
                                (cm.group("dir") or "").upper() == "DESC", cm.group("collate") or "",
                                cm.group("dir") or ""))
    if not cols:
        raise IndexParseError(sql)
    where: list[tuple[str, str, Any]] = []
    if m.group("where"):
        for term in re.split(r"\s+AND\s+", m.group("where"), flags=re.IGNORECASE):
            tm = _TERM_RE.match(term)
            if not tm:
                raise IndexParseError(term)
            col = unquote(tm.group("col"))
            if tm.group("op"):
                lit = tm.group("lit")
                value: Any
                if lit[0] in "'\"":
                    value = lit[1:-1].replace("''", "'")
                else:
                    value = float(lit) if "." in lit else int(lit)
                op = "!=" if tm.group("op") == "<>" else tm.group("op")
                where.append((col, op, value))
            else:
                where.append((col, "isnotnull" if tm.group("not") else "isnull", None))
    return ParsedIndex(unquote(m.group("name")), bool(m.group("unique")), unquote(m.group("table") or ""),
                       cols, where, (m.group("where") or "").strip(), bool(m.group("optional")))


def build_index_sql(parsed: ParsedIndex, table_name: str) -> str:
    """The index string PocketBase stores when it rewrites one for another table name
    (``dbutils.Index.Build``): backtick-quoted names, one column per line when there are
    several, the WHERE clause as written."""
    cols = []
    for c in parsed.columns:
        col = f"`{c.name}`"
        if c.collate:
            col += f" COLLATE {c.collate}"
        if c.sort:
            col += f" {c.sort.upper()}"
        cols.append(col)
    body = "\n  " + ",\n  ".join(cols) + "\n" if len(cols) > 1 else cols[0]
    out = (f"CREATE {'UNIQUE ' if parsed.unique else ''}INDEX {'IF NOT EXISTS ' if parsed.optional else ''}"
           f"`{parsed.name}` ON `{table_name}` ({body})")
    if parsed.where_sql:
        out += f" WHERE {parsed.where_sql}"
    return out


def sync_table_name(sql: str, table_name: str) -> str:
    """An index string with its table name set to ``table_name``: unchanged when it already names
    that table (PocketBase echoes indexes as submitted), rebuilt otherwise."""
    try:
        parsed = parse_index(sql)
    except IndexParseError:
        return sql
    return sql if parsed.table == table_name else build_index_sql(parsed, table_name)


def render_index(parsed: ParsedIndex, table_name: str) -> str:
    """A normalised form (backtick-quoted identifiers), used to compare index definitions."""
    cols = ", ".join(
        f"`{c.name}`" + (" COLLATE NOCASE" if c.nocase else "") + (" DESC" if c.desc else "") for c in parsed.columns
    )
    out = f"CREATE {'UNIQUE ' if parsed.unique else ''}INDEX `{parsed.name}` ON `{table_name}` ({cols})"
    if parsed.where:
        terms = []
        for col, op, value in parsed.where:
            if op == "isnull":
                terms.append(f"`{col}` IS NULL")
            elif op == "isnotnull":
                terms.append(f"`{col}` IS NOT NULL")
            elif isinstance(value, str):
                terms.append(f"`{col}` {op} '" + value.replace("'", "''") + "'")
            else:
                terms.append(f"`{col}` {op} {value}")
        out += " WHERE " + " AND ".join(terms)
    return out


def _cmp(col: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    if op == "isnull":
        return col.is_(None)
    if op == "isnotnull":
        return col.is_not(None)
    v = literal(value)
    return {"=": col == v, "!=": col != v, ">": col > v, ">=": col >= v, "<": col < v, "<=": col <= v}[op]


def build_index(parsed: ParsedIndex, table: Table, dialect: str) -> Index:
    exprs: list[Any] = []
    by_lower = {c.name.lower(): c for c in table.c}  # SQLite column names are case-insensitive
    for c in parsed.columns:
        col: Any = by_lower[c.name.lower()]
        if "blind_index" in col.info:  # an encrypted field: equal values have equal blind indexes
            col = table.c[col.info["blind_index"]]
        if c.nocase:
            col = func.lower(col) if dialect == "postgresql" else col.collate("NOCASE")
        if c.desc:
            col = col.desc()
        exprs.append(col)
    kwargs: dict[str, Any] = {}
    if parsed.where:
        cond = and_(*(_cmp(by_lower[col.lower()], op, value) for col, op, value in parsed.where))
        kwargs["sqlite_where"] = cond
        kwargs["postgresql_where"] = cond
    return Index(parsed.name, *exprs, unique=parsed.unique, **kwargs)

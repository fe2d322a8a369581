"""Join bookkeeping for field paths, emitted as correlated subqueries.

PocketBase resolves relation paths with ``LEFT JOIN``s on the main query plus ``SELECT
DISTINCT``. A ``JoinSet`` collects the same joins (keyed by path, so equal paths share one
join) and ``wrap`` turns the compiled filter into ``EXISTS (SELECT 1 FROM (SELECT 1) LEFT JOIN
… WHERE <filter>)`` correlated to the outer row: a row matches iff some combination of joined
rows satisfies the filter, exactly like the DISTINCT join, without touching the outer query.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ARRAY, Text, cast, exists, func, literal, select, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause, Select


class JoinSet:
    def __init__(self) -> None:
        self._by_key: dict[str, FromClause] = {}
        self._joins: list[tuple[FromClause, ColumnElement[bool]]] = []

    def __bool__(self) -> bool:
        return bool(self._joins)

    def get(self, key: str) -> FromClause | None:
        return self._by_key.get(key)

    def add(self, key: str, target: FromClause, on: ColumnElement[bool]) -> FromClause:
        """Register ``LEFT JOIN target ON on`` under ``key`` (first registration wins)."""
        existing = self._by_key.get(key)
        if existing is not None:
            return existing
        self._by_key[key] = target
        self._joins.append((target, on))
        return target

    def elements(self, key: str, value: ColumnElement[Any], dialect: str) -> FromClause:
        """The shared ``LEFT JOIN`` over the elements of JSON array ``value`` (see ``json_elements``)."""
        existing = self._by_key.get(key)
        if existing is not None:
            return existing
        return self.add(key, json_elements(value, dialect), true())

    def from_clause(self) -> FromClause:
        joined: FromClause = select(literal(1).label("one")).subquery()
        for target, on in self._joins:
            joined = joined.join(target, on, isouter=True)
        return joined

    def wrap(self, expr: ColumnElement[bool], correlate: FromClause) -> ColumnElement[bool]:
        """``expr`` evaluated over every combination of joined rows (any must match)."""
        if not self._joins:
            return expr
        return exists(select(literal(1)).select_from(self.from_clause()).where(expr).correlate(correlate))

    def values(self, expr: ColumnElement[Any], correlate: FromClause) -> Select[Any]:
        """Every value of ``expr`` over the joined rows (one column), for all-of checks."""
        return select(expr.label("v")).select_from(self.from_clause()).correlate(correlate)

    def scalar(self, expr: ColumnElement[Any], correlate: FromClause) -> ColumnElement[Any]:
        """The first value of ``expr`` over the joined rows (for ``sort``)."""
        if not self._joins:
            return expr
        return select(expr).select_from(self.from_clause()).limit(1).correlate(correlate).scalar_subquery()


def json_elements(value: ColumnElement[Any], dialect: str) -> FromClause:
    """A table of the elements of a JSON array (column ``value``, as text)."""
    if dialect == "postgresql":
        fn = func.jsonb_array_elements_text(cast(value, JSONB))
        return fn.table_valued("value").render_derived().alias()
    return func.json_each(value).table_valued("value").alias()


def json_array_length(value: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.jsonb_array_length(cast(value, JSONB))
    return func.json_array_length(value)


def json_path(value: ColumnElement[Any], keys: list[str], dialect: str) -> ColumnElement[Any]:
    """``json_extract(value, '$.a[0]')`` on SQLite; ``value::jsonb #> '{a,0}'`` (jsonb) on PostgreSQL."""
    if dialect == "postgresql":
        return cast(value, JSONB).op("#>")(literal(keys, ARRAY(Text)))
    path = "$" + "".join(f"[{k}]" if k.isdigit() else f".{k}" for k in keys)
    return func.json_extract(value, literal(path, Text()))

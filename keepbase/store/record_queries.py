"""The statements of the hot record reads, built and compiled once per collection schema.

Building a ``select()`` and letting SQLAlchemy find its compiled form again costs more than
running it, so the reads that need no per-request condition (rule ``""``, or a superuser; no
filter, no sort) reuse one compiled statement with bound parameters. The table and the output
plan they are built from are themselves cached per schema version, so a schema change brings
new ones.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, and_, bindparam, func, select, true

from .db import CompiledRead, Database
from .record_output import OutputPlan
from .schema import rowid_column

MAX_CACHED = 4096


class RecordQueries:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[tuple[str, int, int], tuple[Table, OutputPlan, Any]] = {}

    def _get(self, kind: str, table: Table, plan: OutputPlan) -> Any:
        key = (kind, id(table), id(plan))
        hit = self._cache.get(key)
        if hit is not None and hit[0] is table and hit[1] is plan:  # ids of dead objects get reused
            return hit[2]
        return None

    def _put(self, kind: str, table: Table, plan: OutputPlan, value: Any) -> Any:
        if len(self._cache) > MAX_CACHED:
            self._cache.clear()
        self._cache[(kind, id(table), id(plan))] = (table, plan, value)
        return value

    def columns(self, table: Table, plan: OutputPlan) -> Any:
        """``SELECT <the plan's columns> FROM table``, to add conditions to."""
        stmt = self._get("columns", table, plan)
        if stmt is None:
            stmt = self._put("columns", table, plan, select(*[table.c[name] for name in plan.columns]))
        return stmt

    def by_id(self, table: Table, plan: OutputPlan) -> CompiledRead:
        """One record by id (parameter ``record_id``)."""
        q: CompiledRead | None = self._get("by_id", table, plan)
        if q is None:
            stmt = self.columns(table, plan).where(table.c.id == bindparam("record_id"))
            q = self._put("by_id", table, plan, self.db.compile_read(stmt))
        return q

    def by_id_where(self, table: Table, plan: OutputPlan, cond: Any) -> CompiledRead:
        """One record by id (parameter ``record_id``) that also meets ``cond``, a condition the
        rule compiler shares between requests (``resolver.is_shared_condition``)."""
        cached: tuple[Any, CompiledRead] | None = self._get(f"by_id_where:{id(cond)}", table, plan)
        if cached is not None and cached[0] is cond:
            return cached[1]
        q = self.db.compile_read(self.by_id(table, plan).stmt.where(cond))
        self._put(f"by_id_where:{id(cond)}", table, plan, (cond, q))
        return q

    def page(self, table: Table, plan: OutputPlan, is_view: bool,
             conds: tuple[Any, ...] = ()) -> tuple[CompiledRead, CompiledRead]:
        """(one page in insertion order, parameters ``limit`` and ``offset``; the row count),
        both restricted by ``conds``: conditions the rule compiler shares between requests."""
        kind = "page:" + ",".join(str(id(cond)) for cond in conds)
        cached: tuple[tuple[Any, ...], tuple[CompiledRead, CompiledRead]] | None = self._get(kind, table, plan)
        if cached is not None and len(cached[0]) == len(conds) and all(
                a is b for a, b in zip(cached[0], conds, strict=True)):
            return cached[1]
        stmt = self.columns(table, plan)
        count = select(func.count()).select_from(table)
        if conds:
            where = and_(true(), *conds)
            stmt, count = stmt.where(where), count.where(where)
        if not is_view:
            stmt = stmt.order_by(rowid_column(table, self.db.dialect))
        stmt = stmt.limit(bindparam("limit")).offset(bindparam("offset"))
        qs = (self.db.compile_read(stmt), self.db.compile_read(count))
        self._put(kind, table, plan, (conds, qs))
        return qs

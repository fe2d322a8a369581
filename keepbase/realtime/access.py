"""Per-subscriber access checks and payloads for one record event (blocking: run it in a thread).

The event's record (its committed column values) becomes a one-row CTE named after the
collection; for each distinct viewer — auth record, topic kind, options — one SELECT over that
CTE applies the topic's rule (``listRule`` for ``c/*``, ``viewRule`` for ``c/<id>``) with
``@request.context = "realtime"`` and reads the columns that viewer may see. Deletes work the
same way (the row is gone, the CTE is not), so every action is checked against the record
exactly as it was committed. Superusers bypass rules; a ``null`` rule admits superusers only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import case, false, literal, select

from ..core.types import AuthInfo, RequestInfo
from ..store.models import Collection
from ..store.record_input import to_db
from ..store.record_output import output_plan, row_to_json
from ..store.record_rules import rule_condition
from ..store.records import RecordService
from .subscriptions import Subscription

log = logging.getLogger("keepbase.realtime")

Project = Callable[[Any, str], Any]
ViewerKey = tuple[str, str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Viewer:
    auth: AuthInfo | None
    sub: Subscription

    @property
    def key(self) -> ViewerKey:
        a = self.auth
        return (a.collection_id if a else "", a.id if a else "", self.sub.rule_name, self.sub.query, self.sub.headers)


def stored_values(c: Collection, record: dict[str, Any]) -> dict[str, Any]:
    """Service-level record values → column values (what the broker ships)."""
    out: dict[str, Any] = {}
    for f in c.fields:
        if f.name in record:
            out[f.name] = to_db(f, record[f.name])
    if c.is_auth and "password" in out:
        out["password"] = ""  # never ship password hashes to other nodes; no rule needs them
    return out


def render(records: RecordService, c: Collection, action: str, values: dict[str, Any], viewers: list[Viewer],
           project: Project | None) -> dict[ViewerKey, bytes | None]:
    """``{viewer key: event JSON or None (not allowed)}`` for the distinct viewers of one event."""
    table = records.table(c)
    cols = []
    for f in c.fields:
        col = table.c[f.name]
        cols.append(literal(values.get(f.name), col.type).label(f.name))
    cte = select(*cols).cte("_kb_event_record")  # never shadow the real table: rules may join it
    out: dict[ViewerKey, bytes | None] = {}
    with records.db.read() as conn:
        for viewer in viewers:
            key = viewer.key
            if key in out:
                continue
            try:
                out[key] = _render_one(records, conn, c, cte, values, action, viewer, project)
            except Exception:
                log.exception("realtime: access check failed for %s on %s", viewer.sub.raw, c.name)
                out[key] = None
    return out


def _render_one(records: RecordService, conn: Any, c: Collection, cte: Any, values: dict[str, Any], action: str,
                viewer: Viewer, project: Project | None) -> bytes | None:
    query = viewer.sub.query_dict
    info = RequestInfo(auth=viewer.auth, method="GET", context="realtime", query=query,
                       headers=dict(viewer.sub.headers))
    rule = c.rules.get(viewer.sub.rule_name)
    if rule is None and not info.is_superuser:
        return None
    lookup = records.collections.find
    dialect = records.db.dialect
    cond = rule_condition(c, cte, rule, info, lookup, dialect)
    plan = output_plan(c, info.is_superuser)
    columns: list[Any] = [cte.c[name] for name in plan.columns]
    manage_rule = c.rules.get("manageRule") if c.is_auth else None
    if c.is_auth and manage_rule and not info.is_superuser and viewer.auth is not None:
        manage = rule_condition(c, cte, manage_rule, info, lookup, dialect)
        columns.append(case((manage if manage is not None else false(), True), else_=False).label("_kb_manage"))
    row: Any
    if cond is None and len(columns) == len(plan.columns):
        # nothing to check in SQL: the committed values are the row (saves a round trip per event)
        row = tuple(values.get(name) for name in plan.columns)
    else:
        stmt = select(*columns).select_from(cte)
        if cond is not None:
            stmt = stmt.where(cond)
        row = conn.execute(stmt).first()
        if row is None:
            return None
    show_email = True
    if c.is_auth and not info.is_superuser:
        own = viewer.auth is not None and viewer.auth.collection_id == c.id and viewer.auth.id == row[0]
        show_email = own or (len(row) > len(plan.columns) and bool(row[-1]))
    record = row_to_json(plan, row, show_email)
    expand = query.get("expand", "")
    if expand:
        record = _expand(records, c, record, expand, info)
    fields = query.get("fields", "")
    if fields and project is not None:
        record = project(record, fields)
    return orjson.dumps({"record": record, "action": action})


def _expand(records: RecordService, c: Collection, record: dict[str, Any], expand: str,
            info: RequestInfo) -> dict[str, Any]:
    try:
        from ..store.expand import expand_records
    except ImportError:  # expand not available in this build: send the record unexpanded
        return record
    expand_records(records, c, [record], expand, info)
    return record

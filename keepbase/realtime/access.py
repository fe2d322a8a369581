"""Per-subscriber access checks and payloads for record events.

An event reaches many subscriptions, but few *viewers*: a viewer is what the check depends on —
the auth record, the topic's rule (``listRule`` for ``c/*``, ``viewRule`` for ``c/<id>``) and the
options (query, headers) — so each distinct viewer is checked once per event, with
``@request.context = "realtime"``, and subscriptions sharing a viewer share its payload.

Checks run in two steps. :func:`prepare` (cheap, on the event loop) settles every viewer that
needs no query: superusers, an empty rule, a ``null`` rule (superusers only), no ``expand``.
:func:`finish` (blocking: run it in a worker thread) settles the rest of a batch of events over
one connection. There the event's record (its committed column values) becomes a one-row CTE
named apart from the real table (rules may join it), and one SELECT over it evaluates the rule of
every pending viewer at once, one column each holding the rule's value (plus ``manageRule`` for
the email of auth records). Deletes work the same way (the row is gone, the CTE is not), so every
action is checked against the record exactly as it was committed. If that combined statement
fails, each viewer is checked alone, so one failing rule denies only its own viewers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import literal, literal_column, select

from ..core.types import AuthInfo, RequestInfo
from ..store.encryption import blind_index_names, seal_row
from ..store.models import Collection
from ..store.record_input import to_db
from ..store.record_output import OutputPlan, output_plan, row_to_json
from ..store.record_rules import rule_condition
from ..store.records import RecordService
from .subscriptions import Subscription

log = logging.getLogger("keepbase.realtime")

Project = Callable[[Any, str], Any]
ViewerKey = tuple[str, str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]
_CHUNK = 100  # pending viewers evaluated by one SELECT


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
    # encrypted fields travel (and sit in the change log) sealed, with their blind indexes for rules
    return seal_row(c, str(record.get("id", "")), out) if c.cipher is not None else out


@dataclass
class _Check:
    """What deciding one viewer takes."""

    viewer: Viewer
    info: RequestInfo
    rule: str | None
    plan: OutputPlan
    manage_rule: str  # "" when the email's visibility needs no query


@dataclass
class EventRender:
    """The payloads of one record event: ``out`` maps each viewer key to event JSON or None (denied);
    ``pending`` holds the viewers that still need a query (see :func:`finish`)."""

    c: Collection
    action: str
    values: dict[str, Any]
    out: dict[ViewerKey, bytes | None] = field(default_factory=dict)
    pending: list[_Check] = field(default_factory=list)
    _encoded: dict[tuple[bool, bool, str, bool], bytes] = field(default_factory=dict)


def prepare(c: Collection, action: str, values: dict[str, Any], viewers: Iterable[Viewer],
            project: Project | None) -> EventRender:
    """Decide, without the database, every viewer of one event that needs no query."""
    ev = EventRender(c, action, values)
    for viewer in viewers:
        key = viewer.key
        if key in ev.out:
            continue
        try:
            check = _check(c, viewer)
            if check is None:
                ev.out[key] = None
            elif check.manage_rule or _needs_query(check):
                ev.out[key] = None  # until finish() decides
                ev.pending.append(check)
            else:
                ev.out[key] = _payload(None, ev, check, tuple(values.get(n) for n in check.plan.columns), None,
                                       project)
        except Exception:
            log.exception("realtime: access check failed for %s on %s", viewer.sub.raw, c.name)
            ev.out[key] = None
    return ev


def finish(records: RecordService, events: list[EventRender], project: Project | None) -> None:
    """Decide the pending viewers of ``events`` (blocking: database reads)."""
    todo = [ev for ev in events if ev.pending]
    if not todo:
        return
    with records.db.read() as conn:
        for ev in todo:
            _finish_event(records, conn, ev, project)


def _check(c: Collection, viewer: Viewer) -> _Check | None:
    """None when the viewer is denied whatever the record holds."""
    info = RequestInfo(auth=viewer.auth, method="GET", context="realtime", query=viewer.sub.query_dict,
                       headers=dict(viewer.sub.headers))
    rule = c.rules.get(viewer.sub.rule_name)
    superuser = info.is_superuser
    if rule is None and not superuser:
        return None
    manage_rule = ""
    if c.is_auth and not superuser and viewer.auth is not None:
        manage_rule = c.rules.get("manageRule") or ""
    return _Check(viewer, info, rule, output_plan(c, superuser), manage_rule)


def _needs_query(check: _Check) -> bool:
    return not (check.info.is_superuser or check.rule == "") or bool(check.info.query.get("expand"))


def _finish_event(records: RecordService, conn: Any, ev: EventRender, project: Project | None) -> None:
    c, values = ev.c, ev.values
    table = records.table(c)
    cte = select(*[literal(values.get(f.name), table.c[f.name].type).label(f.name) for f in c.fields],
                 *[literal(values.get(n), table.c[n].type).label(n) for n in blind_index_names(c)]
                 ).cte("_kb_event_record")  # never shadow the real table: rules may join it
    lookup, dialect = records.collections.find, records.db.dialect
    # compile each viewer's conditions alone: a rule that cannot compile denies only that viewer
    compiled: list[tuple[_Check, Any, Any]] = []
    for check in ev.pending:
        try:
            cond = rule_condition(c, cte, check.rule, check.info, lookup, dialect)
            manage = None
            if check.manage_rule:
                manage = rule_condition(c, cte, check.manage_rule, check.info, lookup, dialect)
                if manage is None:
                    manage = literal_column("1")
            compiled.append((check, cond, manage))
        except Exception:
            log.exception("realtime: access check failed for %s on %s", check.viewer.sub.raw, c.name)
    names = list(dict.fromkeys(n for check, _, _ in compiled for n in check.plan.columns))
    index = {n: i for i, n in enumerate(names)}
    for start in range(0, len(compiled), _CHUNK):
        chunk = compiled[start:start + _CHUNK]
        try:
            rows = [_evaluate(conn, cte, names, chunk)]
        except Exception:
            log.warning("realtime: combined access check failed on %s; checking each viewer alone", c.name,
                        exc_info=True)
            rows = []
        for i, (check, cond, manage) in enumerate(chunk):
            try:
                if rows:
                    row = rows[0]
                    allowed, managed = row[len(names) + 2 * i], row[len(names) + 2 * i + 1]
                else:
                    with records.db.read() as alone:
                        row = _evaluate(alone, cte, names, [(check, cond, manage)])
                    allowed, managed = row[len(names)], row[len(names) + 1]
                if allowed is not True and allowed != 1:  # false, NULL: denied
                    continue
                ev.out[check.viewer.key] = _payload(records, ev, check, tuple(row[index[n]] for n in check.plan.columns),
                                                    bool(managed), project)
            except Exception:
                log.exception("realtime: access check failed for %s on %s", check.viewer.sub.raw, c.name)
    ev.pending = []


def _evaluate(conn: Any, cte: Any, names: list[str], chunk: list[tuple[_Check, Any, Any]]) -> Any:
    """One row: the record's columns, then (allowed, manage) for each viewer of ``chunk``."""
    columns: list[Any] = [cte.c[n] for n in names]
    for _, cond, manage in chunk:
        # the rule itself as a column: only a true value admits; false and NULL (unknown) deny,
        # as in a WHERE clause
        columns.append(literal_column("1") if cond is None else cond)
        columns.append(literal_column("0") if manage is None else manage)
    return conn.execute(select(*columns).select_from(cte)).one()


def _payload(records: RecordService | None, ev: EventRender, check: _Check, row: tuple[Any, ...],
             managed: bool | None, project: Project | None) -> bytes:
    c, info, viewer = ev.c, check.info, check.viewer
    show_email = True
    if c.is_auth and not info.is_superuser:
        own = viewer.auth is not None and viewer.auth.collection_id == c.id and viewer.auth.id == ev.values.get("id")
        show_email = own or bool(managed)
    expand = info.query.get("expand", "")
    fields = info.query.get("fields", "")
    memo = (info.is_superuser, show_email, fields, managed is None)
    if not expand:  # the same record for everyone with the same view of it: encode it once
        cached = ev._encoded.get(memo)
        if cached is not None:
            return cached
    record = row_to_json(check.plan, row, show_email)
    if expand and records is not None:
        record = _expand(records, c, record, expand, info)
    if fields and project is not None:
        record = project(record, fields)
    data = orjson.dumps({"record": record, "action": ev.action})
    if not expand:
        ev._encoded[memo] = data
    return data


def _expand(records: RecordService, c: Collection, record: dict[str, Any], expand: str,
            info: RequestInfo) -> dict[str, Any]:
    try:
        from ..store.expand import expand_records
    except ImportError:  # expand not available in this build: send the record unexpanded
        return record
    expand_records(records, c, [record], expand, info)
    return record

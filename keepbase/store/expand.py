"""``?expand=``: related records attached under each record's ``expand`` key.

PocketBase's semantics (03-records.md §Expand):

* comma-separated paths, spaces stripped, ``.`` descends up to 6 levels (deeper parts are
  ignored); a path that is a prefix of another (``a`` next to ``a.b``) is dropped;
* a segment is a relation field, a back-relation ``<collection>_via_<field>`` or the legacy
  ``<collection>(<field>)``;
* every fetched collection's ``viewRule`` applies to the requester (``@request.context`` is
  ``"expand"``; superusers bypass); records failing it are left out, a ``null`` rule makes the
  whole path fail;
* a failing path (unknown relation, null rule, bad rule) is skipped silently and leaves no
  trace; once a path succeeds every record gets an ``expand`` object, possibly ``{}``.

Each path is expanded level by level: one query per level (ids batched with ``IN``), never one
per record. Paths are processed one after another like PocketBase does, the records a later
path fetches inheriting what earlier paths expanded on the same records (``MergeExpand``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Table, exists, literal, select
from sqlalchemy.sql.elements import ColumnElement

from ..core.errors import ApiError
from ..core.types import RequestInfo
from ..rules.joins import json_elements
from ..rules.limits import MAX_RELATION_DEPTH
from .indexes import IndexParseError, parse_index
from .models import Collection, Field
from .record_input import from_db
from .record_output import output_plan
from .record_rules import rule_condition
from .schema import rowid_column

if TYPE_CHECKING:
    from .records import RecordService

MAX_EXPAND_DEPTH = MAX_RELATION_DEPTH
BACK_RELATION_LIMIT = 1000  # PocketBase's (arbitrary) cap of back-related records per record
_CHUNK = 5000  # ids per IN (...): well under every driver's bound-parameter limit
_VIA_RE = re.compile(r"^(\w+)_via_(\w+)$")
_LEGACY_RE = re.compile(r"^(\w+)\((\w+)\)$")

Record = dict[str, Any]


class ExpandError(Exception):
    """A path that cannot be expanded; it is skipped without telling the client."""


def normalize_expands(expand: str) -> list[str]:
    """``"a.b , a, c."`` → ``["a.b", "c"]``: spaces removed, dots trimmed, prefixes merged."""
    paths = [p.replace(" ", "").strip(".") for p in expand.split(",")]
    paths = [p for p in paths if p]
    out: list[str] = []
    for i, p in enumerate(paths):
        if any(j != i and q.startswith(p + ".") for j, q in enumerate(paths)):
            continue
        if p not in out:
            out.append(p)
    return out


def expand_records(records: RecordService, collection: Collection, items: list[Record], expand: str,
                   info: RequestInfo) -> None:
    """Expand ``items`` (JSON-ready records of ``collection``) in place."""
    paths = normalize_expands(expand)
    if not paths or not items:
        return
    expander = _Expander(records, replace(info, context="expand"))
    for path in paths:
        try:
            with records.db.read() as conn:
                expander.expand(conn, collection, items, path, 1)
        except (ExpandError, ApiError):
            continue
    seen: set[int] = set()
    for item in items:
        _finalize(item, seen)


def unique_single(c: Collection, field_name: str) -> bool:
    """True when ``field_name`` has a single-column UNIQUE index (without WHERE) in ``c``."""
    for sql in c.indexes:
        try:
            parsed = parse_index(sql)
        except IndexParseError:
            continue
        if (parsed.unique and not parsed.where and len(parsed.columns) == 1
                and parsed.columns[0].name.lower() == field_name.lower()):
            return True
    return False


def _ids(value: Any) -> list[str]:
    if isinstance(value, orjson.Fragment):
        value = orjson.loads(orjson.dumps(value))  # Fragment exposes no accessor for its text
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i:i + _CHUNK] for i in range(0, len(ids), _CHUNK)] or [[]]


class _Expander:
    def __init__(self, records: RecordService, info: RequestInfo) -> None:
        self.svc = records
        self.info = info
        self.dialect = records.db.dialect

    def _view_condition(self, c: Collection, table: Table) -> ColumnElement[bool] | None:
        if self.info.is_superuser:
            return None
        rule = c.rules.get("viewRule")
        if rule is None:
            raise ExpandError(f"only superusers can view collection {c.name!r} records")
        return rule_condition(c, table, rule, self.info, self.svc.collections.find, self.dialect)

    def expand(self, conn: Connection, c: Collection, records: list[Record], path: str, level: int) -> None:
        if not path or level > MAX_EXPAND_DEPTH or not records:
            return
        head, _, rest = path.partition(".")
        via = _LEGACY_RE.match(head) if "(" in head else _VIA_RE.match(head)
        if via:
            target, links, multiple = self._back_relation(conn, c, records, via.group(1), via.group(2))
        else:
            target, links, multiple = self._relation(conn, c, records, head)
        if rest:
            fetched: dict[int, Record] = {}
            for rels in links:
                for rel in rels:
                    fetched[id(rel)] = rel
            self.expand(conn, target, list(fetched.values()), rest, level + 1)
        for record, rels in zip(records, links, strict=True):
            data = record.get("expand")
            if not isinstance(data, dict):
                data = record["expand"] = {}
            if not rels:
                continue
            old = data.get(head)
            for previous in (old if isinstance(old, list) else [old] if isinstance(old, dict) else []):
                for rel in rels:
                    if rel.get("id") == previous.get("id"):
                        merge_expand(rel, previous.get("expand"))
            data[head] = list(rels) if multiple else rels[0]

    # --- direct relations -------------------------------------------------------------------

    def _relation(self, conn: Connection, c: Collection, records: list[Record], name: str
                  ) -> tuple[Collection, list[list[Record]], bool]:
        f = c.get_field(name)
        if f is None or f.type != "relation":
            raise ExpandError(f"couldn't find relation field {name!r} in collection {c.name!r}")
        target = self.svc.collections.find(str(f.options.get("collectionId") or ""))
        if target is None:
            raise ExpandError(f"couldn't find related collection {f.options.get('collectionId')!r}")
        per_record = self._relation_ids(conn, c, f, records)
        wanted = list(dict.fromkeys(i for ids in per_record for i in ids))
        table = self.svc.table(target)
        cond = self._view_condition(target, table)
        by_id: dict[str, Record] = {}
        if wanted:
            plan = output_plan(target, self.info.is_superuser)
            cols = [table.c[n] for n in plan.columns]
            for chunk in _chunks(wanted):
                stmt = select(*cols).where(table.c.id.in_(chunk))
                if cond is not None:
                    stmt = stmt.where(cond)
                for row in conn.execute(stmt).all():
                    by_id[row[0]] = self.svc.to_json(target, row, self.info)
        links = [[by_id[i] for i in ids if i in by_id] for ids in per_record]
        return target, links, f.multiple

    def _relation_ids(self, conn: Connection, c: Collection, f: Field, records: list[Record]) -> list[list[str]]:
        """The stored ids of ``f`` per record; hidden fields are absent from the output, so read them."""
        if all(f.name in r for r in records):
            return [_ids(r[f.name]) for r in records]
        table = self.svc.table(c)
        stored: dict[str, Any] = {}
        record_ids = list(dict.fromkeys(str(r.get("id", "")) for r in records))
        for chunk in _chunks(record_ids):
            stmt = select(table.c.id, table.c[f.name]).where(table.c.id.in_(chunk))
            for rid, value in conn.execute(stmt).all():
                stored[rid] = from_db(f, value)
        return [_ids(r[f.name] if f.name in r else stored.get(str(r.get("id", "")))) for r in records]

    # --- back-relations ---------------------------------------------------------------------

    def _back_relation(self, conn: Connection, c: Collection, records: list[Record], coll: str, name: str
                       ) -> tuple[Collection, list[list[Record]], bool]:
        back = self.svc.collections.find(coll)
        if back is None:
            raise ExpandError(f"couldn't find back-related collection {coll!r}")
        f = back.get_field(name)
        if f is None or f.type != "relation" or f.options.get("collectionId") != c.id:
            raise ExpandError(f"couldn't find back-relation field {name!r} in collection {back.name!r}")
        table = self.svc.table(back)
        cond = self._view_condition(back, table)
        parents = list(dict.fromkeys(str(r.get("id", "")) for r in records))
        plan = output_plan(back, self.info.is_superuser)
        col = table.c[f.name]
        children: dict[str, list[Record]] = {p: [] for p in parents}
        for chunk in _chunks(parents):
            if f.multiple:
                elements = json_elements(col, self.dialect)
                link = exists(select(literal(1)).select_from(elements).where(elements.c.value.in_(chunk)))
            else:
                link = col.in_(chunk)
            stmt = select(*[table.c[n] for n in plan.columns], col.label("__back")).where(link)
            if cond is not None:
                stmt = stmt.where(cond)
            if not back.is_view:
                stmt = stmt.order_by(rowid_column(table, self.dialect))
            for row in conn.execute(stmt).all():
                rel = self.svc.to_json(back, row, self.info)
                for parent in _ids(from_db(f, row[-1])):
                    linked = children.get(parent)
                    if linked is not None and len(linked) < BACK_RELATION_LIMIT:
                        linked.append(rel)
        links = [children.get(str(r.get("id", "")), []) for r in records]
        return back, links, f.multiple or not unique_single(back, f.name)


def merge_expand(record: Record, expand: Any) -> None:
    """PocketBase's ``Record.MergeExpand``: fold an earlier path's ``expand`` into ``record``'s."""
    if not isinstance(expand, dict) or not expand:
        return
    current = record.get("expand")
    if not isinstance(current, dict):
        record["expand"] = dict(expand)
        return
    for key, new in expand.items():
        if key not in current:
            current[key] = new
            continue
        old = current[key]
        if isinstance(old, dict):
            old_list, old_was_list = [old], False
        elif isinstance(old, list):
            old_list, old_was_list = list(old), True
        else:
            current[key] = new
            continue
        if isinstance(new, dict):
            new_list, new_was_list = [new], False
        elif isinstance(new, list):
            new_list, new_was_list = new, True
        else:
            continue
        indexed = {o.get("id"): o for o in old_list}
        for n in new_list:
            o = indexed.get(n.get("id"))
            if o is not None:
                merge_expand(o, n.get("expand"))
            else:
                old_list.append(n)
        current[key] = old_list if (old_was_list or new_was_list or not old_list) else old_list[0]


def _finalize(record: Record, seen: set[int]) -> None:
    """Put ``expand`` (and its keys) where PocketBase's sorted JSON keys put them."""
    if id(record) in seen or "expand" not in record:
        return
    seen.add(id(record))
    data = record["expand"]
    for value in data.values():
        for rel in value if isinstance(value, list) else [value]:
            if isinstance(rel, dict):
                _finalize(rel, seen)
    items = sorted(record.items(), key=lambda kv: kv[0].encode())
    record.clear()
    record.update(items)
    record["expand"] = dict(sorted(data.items(), key=lambda kv: kv[0].encode()))

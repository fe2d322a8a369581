"""Stored rows → JSON-ready record dicts, keys in ascending byte order (hot path).

A plan per (collection, viewer kind) is computed once: which columns to read, which handler
turns each into JSON, in which order. Multi-valued and json columns become ``orjson.Fragment``
so their stored JSON text is emitted without parsing it. A view's columns may hold anything
its query computed (a number in a json column, an integer id), so they are read as PocketBase
reads every column — as text (``fields.base.sql_text``) — and each field type turns that text
into its value (``FieldType.view_output``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .fields import get_type
from .fields.base import sql_text
from .models import Collection

NEVER_OUTPUT = frozenset({"password", "tokenKey"})


@dataclass(frozen=True)
class OutputPlan:
    keys: tuple[str, ...]  # output keys in order (incl. collectionId/collectionName)
    columns: tuple[str, ...]  # columns to select, in row order
    steps: tuple[tuple[str, int, Callable[[Any], Any] | None], ...]  # (key, row index or -1, converter)
    collection_id: str
    collection_name: str
    email_index: int  # row index of email (auth), else -1
    visibility_index: int
    #: encrypted fields: (key, row index, field), opened with ``collection.cipher`` (row 0 is the id)
    sealed: tuple[tuple[str, int, Any], ...] = ()
    collection: Collection | None = None


_PLANS: dict[tuple[str, str, bool, int], OutputPlan] = {}


def output_plan(c: Collection, superuser: bool) -> OutputPlan:
    key = (c.id, c.updated, superuser, id(c.cipher))  # apps with other keys get their own plans
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    fields = [f for f in c.fields if not (c.is_auth and f.name in NEVER_OUTPUT)
              and not (f.hidden and not superuser)]
    columns = tuple(f.name for f in fields)
    entries: list[tuple[str, int, Callable[[Any], Any] | None]] = []
    sealed: list[tuple[str, int, Any]] = []
    for i, f in enumerate(fields):
        handler = get_type(f.type)
        assert handler is not None
        conv: Callable[[Any], Any] | None
        if c.cipher is not None and f.options.get("encrypted") and not c.is_view:
            sealed.append((f.name, i, f))  # opened per row (the record id is part of what it is bound to)
            conv = None
        elif c.is_view:  # a view column holds whatever its query computed: read it as PocketBase does
            conv = _bind_view(handler.view_output, f)
        elif f.type in ("text", "email", "url", "editor", "date", "autodate") or (
            f.type in ("select", "relation", "file") and not f.multiple
        ):
            conv = None
        else:
            conv = _bind(handler.output, f)
        entries.append((f.name, i, conv))
    entries.append(("collectionId", -1, None))
    entries.append(("collectionName", -2, None))
    entries.sort(key=lambda e: e[0].encode())
    plan = OutputPlan(
        keys=tuple(e[0] for e in entries), columns=columns, steps=tuple(entries),
        collection_id=c.id, collection_name=c.name,
        email_index=columns.index("email") if c.is_auth and "email" in columns else -1,
        visibility_index=columns.index("emailVisibility") if c.is_auth and "emailVisibility" in columns else -1,
        sealed=tuple(sealed), collection=c if sealed else None,
    )
    if len(_PLANS) > 4096:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _bind(fn: Callable[[Any, Any], Any], f: Any) -> Callable[[Any], Any]:
    return lambda v: fn(f, v)


def _bind_view(fn: Callable[[Any, Any], Any], f: Any) -> Callable[[Any], Any]:
    return lambda v: fn(f, sql_text(v))


def row_to_json(plan: OutputPlan, row: Sequence[Any], show_email: bool | Callable[[Sequence[Any]], bool] = True
                ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cid, cname = plan.collection_id, plan.collection_name
    for key, idx, conv in plan.steps:
        if idx >= 0:
            v = row[idx]
            out[key] = v if conv is None else conv(v)
        elif idx == -1:
            out[key] = cid
        else:
            out[key] = cname
    if plan.sealed:
        _open_sealed(plan, row, out)
    if plan.email_index >= 0:
        visible = show_email(row) if callable(show_email) else show_email
        if not visible and not row[plan.visibility_index]:
            del out["email"]
    return out


def _open_sealed(plan: OutputPlan, row: Sequence[Any], out: dict[str, Any]) -> None:
    c = plan.collection
    assert c is not None and c.cipher is not None
    for key, idx, f in plan.sealed:
        value = c.cipher.open(c, f, row[0], row[idx])
        handler = get_type(f.type)
        assert handler is not None
        out[key] = handler.output(f, value)

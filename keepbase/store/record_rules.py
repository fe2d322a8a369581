"""API rules → SQL conditions, through the rule language compiler (``store.resolver``).

``None`` (superusers only) is handled by callers before any lookup. ``""`` means everyone.
Any other rule is compiled into a WHERE condition; superusers bypass rules entirely.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, false
from sqlalchemy.sql.elements import ColumnElement

from ..core.errors import BadRequestError
from ..core.types import RequestInfo
from .models import Collection

Lookup = Callable[[str], Collection | None]


def _resolver() -> Any:
    try:
        from . import resolver
    except ImportError:  # the rule language is not installed: deny rather than allow
        return None
    return resolver


def rule_condition(c: Collection, table: Any, rule: str | None, info: RequestInfo, lookup: Lookup,
                   dialect: str) -> ColumnElement[bool] | None:
    """The WHERE condition a non-empty rule adds, or None when nothing is added."""
    if info.is_superuser or rule == "":
        return None
    if rule is None:
        return false()
    mod = _resolver()
    if mod is None:
        return false()
    cond: ColumnElement[bool] = mod.build_filter(c, table, rule, info, lookup, dialect, is_rule=True)
    return cond


def filter_condition(c: Collection, table: Table, expression: str, info: RequestInfo, lookup: Lookup,
                     dialect: str) -> ColumnElement[bool] | None:
    if not expression.strip():
        return None
    mod = _resolver()
    if mod is None:
        raise BadRequestError()
    cond: ColumnElement[bool] = mod.build_filter(c, table, expression, info, lookup, dialect, is_rule=False)
    return cond


def sort_clauses(c: Collection, table: Table, sort: str, info: RequestInfo, lookup: Lookup,
                 dialect: str) -> list[Any]:
    if not sort.strip():
        return []
    mod = _resolver()
    if mod is None:
        out: list[Any] = []
        for part in sort.split(","):
            part = part.strip()
            desc = part.startswith("-")
            name = part.lstrip("+-")
            f = c.get_field(name)
            if f is None or (f.hidden and not info.is_superuser):
                raise BadRequestError()
            out.append(table.c[name].desc() if desc else table.c[name].asc())
        return out
    clauses: list[Any] = mod.build_sort(c, table, sort, info, lookup, dialect)
    return clauses


def rule_error(lookup: Lookup, dialect: str) -> Callable[[Collection, str], str | None]:
    """A validator for rules at collection save time (PocketBase's raw error text, or None)."""

    def check(c: Collection, rule: str) -> str | None:
        mod = _resolver()
        if mod is None or not hasattr(mod, "validate_rule"):
            return None

        def scoped(key: str) -> Collection | None:
            if key in (c.id, c.name) or key.lower() == c.name.lower():
                return c
            return lookup(key)

        result: str | None = mod.validate_rule(c, rule, scoped, dialect)
        return result

    return check

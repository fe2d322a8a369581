"""Submitted bodies → record values: key filtering, modifiers, coercion.

Record values inside services are Python values after coercion: str for text-like and single
select/relation/file, float for numbers, bool, list[str] for multi fields, JSON text (or None)
for json, JSON text for geoPoint. ``from_db``/``to_db`` convert to and from columns.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..core.errors import FieldError
from .encryption import open_values
from .fields import SaveContext, get_type
from .fields.base import Invalid
from .fields.numeric import parse_number
from .fields.relational import to_list
from .fields.textual import generate_from_pattern
from .models import Collection, Field

AUTH_EXTRA_KEYS = frozenset({"password", "passwordConfirm", "oldPassword"})


def from_db(f: Field, value: Any) -> Any:
    if f.type == "bool":
        return bool(value)
    if f.multiple:
        try:
            items = orjson.loads(value or "[]")
        except orjson.JSONDecodeError:
            return []
        return items if isinstance(items, list) else []
    if value is None and f.type != "json":
        handler = get_type(f.type)
        return handler.empty(f) if handler else ""
    return value


def to_db(f: Field, value: Any) -> Any:
    handler = get_type(f.type)
    assert handler is not None
    return handler.to_db(f, value)


def row_values(c: Collection, row: Any) -> dict[str, Any]:
    mapping = row._mapping if hasattr(row, "_mapping") else row
    values = {f.name: from_db(f, mapping[f.name]) for f in c.fields if f.name in mapping}
    return values if c.cipher is None else open_values(c, mapping, values)


def split_key(key: str) -> tuple[str, str]:
    """``tags+`` → (tags, append); ``+tags`` → (tags, prepend); ``n-`` → (n, remove)."""
    if key.endswith(":autogenerate"):
        return key[: -len(":autogenerate")], "autogenerate"
    if key.startswith("+"):
        return key[1:], "prepend"
    if key.endswith("+"):
        return key[:-1], "append"
    if key.endswith("-"):
        return key[:-1], "remove"
    return key, ""


def apply_body(c: Collection, body: dict[str, Any], values: dict[str, Any], ctx: SaveContext,
               allowed: set[str]) -> tuple[dict[str, FieldError], set[str]]:
    """Apply body keys (shortest first) onto ``values`` in place. Returns (errors, changed fields)."""
    fields = c.field_map
    errors: dict[str, FieldError] = {}
    changed: set[str] = set()
    for key in sorted(body, key=len):
        name, mod = split_key(key)
        f = fields.get(name)
        if f is None or name not in allowed or f.type == "autodate":
            continue
        if c.is_auth and name == "password":
            continue  # handled by the auth password flow
        handler = get_type(f.type)
        assert handler is not None
        raw = body[key]
        try:
            if not mod:
                values[name] = handler.coerce(f, raw, ctx)
            elif mod == "autogenerate" and f.type == "text":
                pattern = f.options.get("autogeneratePattern") or ""
                values[name] = (values.get(name) or "") + handler.coerce(f, raw, ctx) + (
                    generate_from_pattern(pattern) if pattern else "")
            elif f.type == "number" and mod in ("append", "remove"):
                delta = parse_number(raw)
                values[name] = (values.get(name) or 0.0) + (delta if mod == "append" else -delta)
            elif f.type in ("select", "relation", "file") and mod in ("append", "prepend", "remove"):
                current = values.get(name)
                cur = list(current) if isinstance(current, list) else ([current] if current else [])
                items = to_list(raw)
                if mod == "append":
                    merged = cur + [i for i in items if i not in cur]
                elif mod == "prepend":
                    merged = items + [i for i in cur if i not in items]
                else:
                    merged = [i for i in cur if i not in items]
                values[name] = merged if f.multiple else (merged[-1] if merged else "")
            else:
                continue
            changed.add(name)
        except Invalid as exc:
            errors[name] = exc.error
    return errors, changed

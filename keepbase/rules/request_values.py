"""How submitted request values look to rules (PocketBase's Go conversions)."""

from __future__ import annotations

import json
from typing import Any


def go_json(value: Any) -> str:
    """Go's ``json.Marshal``: compact, non-ASCII kept, ``<``, ``>``, ``&`` escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def go_string(value: Any) -> str:
    """Go's ``cast.ToString`` for JSON-like values."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, list | dict):
        return go_json(value)
    return str(value)


def body_items(value: Any) -> list[str]:
    """PocketBase's ``list.ToUniqueStringSlice``: the submitted items of a multi-valued field."""
    if value is None:
        return []
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            try:
                parsed = json.loads(stripped)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                return body_items(parsed)
        return [value] if value != "" else []
    raw = value if isinstance(value, list | tuple) else [value]
    out: list[str] = []
    for item in raw:
        s = go_string(item)
        if s not in out:
            out.append(s)
    return out


def body_value(value: Any, is_number_field: bool) -> Any:
    """A submitted value as bound by ``@request.body.<field>``.

    Numeric strings of ``number`` fields compare as numbers; JSON numbers are float64;
    arrays/objects compare as their JSON text; booleans bind as 1/0.
    """
    if isinstance(value, str) and is_number_field:
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, list | dict):
        return go_json(value)
    return value

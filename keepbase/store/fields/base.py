"""The FieldType base class and the registry of field types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ...core.errors import FieldError
from ..models import Field

COMMON_KEYS = ("hidden", "id", "name", "presentable", "system", "type")


class Invalid(Exception):
    """Raised by ``coerce``/``validate`` with the field's error."""

    def __init__(self, error: FieldError) -> None:
        super().__init__(error.message)
        self.error = error


def invalid(code: str, message: str, params: dict[str, Any] | None = None) -> Invalid:
    return Invalid(FieldError(code, message, params))


@dataclass
class SaveContext:
    """What a field may need to know while a record is being saved."""

    is_create: bool
    is_superuser: bool = False
    from_form: bool = False  # value came from multipart/urlencoded text
    old: dict[str, Any] = field(default_factory=dict)
    # new uploads of this save: field name -> new stored name -> files.UploadedFile
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)


class FieldType:
    """Base handler. Subclasses override what differs."""

    name = ""
    has_required = True
    has_help = True
    defaults: dict[str, Any] = {}

    # --- collection schema side ---
    def option_defaults(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.has_help:
            out["help"] = ""
        if self.has_required:
            out["required"] = False
        out.update(orjson.loads(orjson.dumps(self.defaults)))
        return out

    def check_options(self, f: Field, errors: dict[str, FieldError]) -> None:
        """Add ``option -> FieldError`` entries for invalid settings."""

    # --- record side ---
    def empty(self, f: Field) -> Any:
        return ""

    def coerce(self, f: Field, raw: Any, ctx: SaveContext) -> Any:
        """Turn submitted input into the stored Python value, or raise Invalid."""
        return raw

    def is_empty(self, f: Field, value: Any) -> bool:
        return value in ("", None, [], {})

    def validate(self, f: Field, value: Any, ctx: SaveContext) -> None:
        """Raise Invalid for a value that breaks the field's options (after ``required``)."""

    def to_db(self, f: Field, value: Any) -> Any:
        return value

    def output(self, f: Field, db_value: Any) -> Any:
        """Stored column value → JSON-ready value (hot path: keep it cheap)."""
        return db_value if db_value is not None else self.empty(f)


_REGISTRY: dict[str, FieldType] = {}


def register(ft: FieldType) -> None:
    _REGISTRY[ft.name] = ft


def get_type(name: str) -> FieldType | None:
    return _REGISTRY.get(name)


def type_names() -> list[str]:
    return sorted(_REGISTRY)


def register_all() -> None:
    from . import datetime_types, json_types, numeric, relational, textual

    for module in (textual, numeric, datetime_types, relational, json_types):
        for ft in module.TYPES:
            register(ft)


def as_text(raw: Any) -> str:
    """Scalars become text; structures are refused rather than silently stringified."""
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return format_number(raw)
    raise invalid("validation_invalid_value", "Must be a string.")


def format_number(n: float | int) -> str:
    if isinstance(n, float) and n.is_integer() and abs(n) < 1e21:
        return str(int(n))
    return str(n)

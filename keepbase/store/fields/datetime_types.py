"""date and autodate fields (stored as text in PocketBase's datetime format)."""

from __future__ import annotations

from typing import Any

from ...core.clock import format_dt, parse_datetime
from ...core.errors import FieldError
from ..models import Field
from .base import FieldType, SaveContext, invalid


def normalize_date(raw: Any) -> str:
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, str):
        raise invalid("validation_invalid_date", "Must be a valid date.")
    dt = parse_datetime(raw)
    if dt is None:
        raise invalid("validation_invalid_date", "Must be a valid date.")
    return format_dt(dt)


class DateType(FieldType):
    name = "date"
    defaults = {"max": "", "min": ""}

    kinds = {"max": "date", "min": "date"}

    def coerce(self, f: Field, raw: Any, ctx: SaveContext) -> Any:
        return normalize_date(raw)

    def validate(self, f: Field, value: Any, ctx: SaveContext) -> None:
        mn, mx = f.options.get("min") or "", f.options.get("max") or ""
        if mn and value < mn:
            raise invalid("validation_min_greater_equal_than_required", f"Must be no less than {_go_string(mn)}.",
                          {"threshold": _go_json(mn)})
        if mx and value > mx:
            raise invalid("validation_max_less_equal_than_required", f"Must be no greater than {_go_string(mx)}.",
                          {"threshold": _go_json(mx)})


def _split(stored: str) -> tuple[str, str, str]:
    """``YYYY-MM-DD HH:MM:SS.fffZ`` → date, time, fraction digits without trailing zeros."""
    date, rest = stored.rstrip("Z").split(" ", 1)
    clock, _, frac = rest.partition(".")
    return date, clock, frac.rstrip("0")


def _go_string(stored: str) -> str:
    """How PocketBase's messages print a date bound (Go's ``time.Time.String`` in UTC)."""
    date, clock, frac = _split(stored)
    return f"{date} {clock}{'.' + frac if frac else ''} +0000 UTC"


def _go_json(stored: str) -> str:
    """How PocketBase's error params serialise a date bound (RFC 3339 with trimmed fraction)."""
    date, clock, frac = _split(stored)
    return f"{date}T{clock}{'.' + frac if frac else ''}Z"


class AutodateType(FieldType):
    name = "autodate"
    has_required = False
    has_help = False
    defaults = {"onCreate": False, "onUpdate": False}

    def check_options(self, f: Field, errors: dict[str, Any]) -> None:
        if not f.options.get("onCreate") and not f.options.get("onUpdate"):
            for key in ("onCreate", "onUpdate"):
                errors[key] = FieldError("validation_required", "Either onCreate or onUpdate must be enabled.")


TYPES = [DateType(), AutodateType()]

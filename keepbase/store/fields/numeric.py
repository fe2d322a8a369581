"""number and bool fields."""

from __future__ import annotations

import math
from typing import Any

from ...core.errors import FieldError
from ..models import Field
from .base import FieldType, SaveContext, go_number, go_parse_float, invalid


def parse_number(raw: Any) -> float:
    """Numbers and numeric strings; anything else is refused (PocketBase would store 0)."""
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if raw is None or raw == "":
        return 0.0
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise invalid("validation_not_a_number", "Must be a valid number.") from None
    else:
        raise invalid("validation_not_a_number", "Must be a valid number.")
    if math.isnan(value) or math.isinf(value):
        raise invalid("validation_not_a_number", "The submitted number is not properly formatted.")
    return value


class NumberType(FieldType):
    name = "number"
    defaults = {"max": None, "min": None, "onlyInt": False}

    kinds = {"max": "number", "min": "number"}

    def check_options(self, f: Field, errors: dict[str, Any]) -> None:
        mn, mx = f.options.get("min"), f.options.get("max")
        only_int = bool(f.options.get("onlyInt"))
        for key, v in (("min", mn), ("max", mx)):
            if only_int and v is not None and not float(v).is_integer():
                errors[key] = FieldError("validation_only_int_constraint", "Decimal numbers are not allowed.")
        if "max" not in errors and mn is not None and mx is not None and mx < mn:
            errors["max"] = FieldError("validation_min_number_constraint", f"Must be greater or equal than {go_number(mn)}.",
                                       {"min": mn})

    def empty(self, f: Field) -> Any:
        return 0

    def is_empty(self, f: Field, value: Any) -> bool:
        return value == 0

    def coerce(self, f: Field, raw: Any, ctx: SaveContext) -> Any:
        return parse_number(raw)

    def validate(self, f: Field, value: Any, ctx: SaveContext) -> None:
        if value == 0:
            return
        if f.options.get("onlyInt") and not float(value).is_integer():
            raise invalid("validation_only_int_constraint", "Decimal numbers are not allowed.")
        mn, mx = f.options.get("min"), f.options.get("max")
        if mn is not None and value < mn:
            raise invalid("validation_min_number_constraint", f"Must be greater or equal than {mn:g}.", {"min": mn})
        if mx is not None and value > mx:
            raise invalid("validation_max_number_constraint", f"Must be less or equal than {mx:g}.", {"max": mx})

    def view_output(self, f: Field, text: str | None) -> Any:
        return self.output(f, go_parse_float(text))

    def output(self, f: Field, db_value: Any) -> Any:
        if db_value is None:
            return 0
        if isinstance(db_value, float) and db_value.is_integer() and abs(db_value) < 9007199254740992:
            return int(db_value)
        return db_value


_TRUE = ("true", "1", "t", "yes", "on")
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = ("false", "0", "f", "no", "off", "")


class BoolType(FieldType):
    name = "bool"
    defaults: dict[str, Any] = {}

    def empty(self, f: Field) -> Any:
        return False

    def is_empty(self, f: Field, value: Any) -> bool:
        return value is not True

    def coerce(self, f: Field, raw: Any, ctx: SaveContext) -> Any:
        if isinstance(raw, bool):
            return raw
        if raw is None:
            return False
        if isinstance(raw, int | float) and raw in (0, 1):
            return bool(raw)
        if isinstance(raw, str) and raw.strip().lower() in _TRUE:
            return True
        if isinstance(raw, str) and raw.strip().lower() in _FALSE:
            return False
        raise invalid("validation_invalid_bool", "Must be a boolean (true or false).")

    def to_db(self, f: Field, value: Any) -> Any:
        return 1 if value else 0

    def output(self, f: Field, db_value: Any) -> Any:
        return bool(db_value)

    def view_output(self, f: Field, text: str | None) -> Any:
        return text in _GO_TRUE  # Go's strconv.ParseBool: anything else (2, "yes") is false


TYPES = [NumberType(), BoolType()]

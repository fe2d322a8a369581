"""The FieldType base class and the registry of field types."""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...core.errors import REQUIRED, FieldError
from ..models import Field

COMMON_KEYS = ("hidden", "id", "name", "presentable", "system", "type")
MAX_SAFE_INT = 2**53 - 1  # PocketBase's upper bound for integer settings


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
    #: how a submitted option is decoded when its default does not tell (see ``option_kind``)
    kinds: dict[str, str] = {}

    # --- collection schema side ---
    def option_defaults(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.has_help:
            out["help"] = ""
        if self.has_required:
            out["required"] = False
        out.update(orjson.loads(orjson.dumps(self.defaults)))
        return out

    def option_kind(self, key: str) -> str:
        """The Go type PocketBase decodes an option into: ``str``, ``int``, ``bool``, ``strlist``,
        ``number`` (a float or null) or ``date`` (a datetime string, unparseable → "")."""
        if key in self.kinds:
            return self.kinds[key]
        default = self.option_defaults().get(key)
        if isinstance(default, bool):
            return "bool"
        if isinstance(default, int):
            return "int"
        if isinstance(default, list):
            return "strlist"
        return "str"

    def check_options(self, f: Field, errors: dict[str, Any]) -> None:
        """Add ``option -> FieldError`` entries for invalid settings (PocketBase's
        ``ValidateSettings`` for the type; id, name and help are checked for every type by the
        collection validator)."""

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

    # --- encryption at rest (``store.encryption`` seals what these return) ---
    #: whether the type accepts the ``encrypted`` option
    encryptable = False

    def check_encryption(self, f: Field) -> FieldError | None:
        """The error of an ``encrypted: true`` this field may not have, or None."""
        if not f.options.get("encrypted"):
            return None
        if not self.encryptable:
            return FieldError("validation_encryption_unsupported",
                              f"Fields of type {self.name} cannot be encrypted (text, email, editor, json and "
                              "url fields can).")
        if f.system or f.options.get("primaryKey"):
            return FieldError("validation_encryption_unsupported", "System fields cannot be encrypted.")
        return None

    def seal_text(self, f: Field, value: Any) -> str | None:
        """The plain text to encrypt for a stored value, or None when the value is stored as it
        is: empty values ("" or NULL) are not encrypted, so a field added to existing records
        needs no rewrite and ``= ""`` filters keep working (an observer of the database learns
        only which records leave the field empty)."""
        return value if isinstance(value, str) and value != "" else None

    def unseal_text(self, f: Field, text: str) -> Any:
        """The stored value (as ``to_db`` gives it) back from its decrypted text."""
        return text

    def blind_text(self, f: Field, value: Any) -> str | None:
        """The normalised form of a stored value that its blind index is computed over (None for
        an empty value, whose blind index column stays as empty as the value)."""
        return self.seal_text(f, value)

    def blind_literal(self, f: Field, value: Any) -> str | None:
        """The normalised form of a filter or rule value compared with ``=``/``!=`` (as a text
        column compares with it: a number ``5`` equals the text ``"5"``)."""
        if value is None or value == "":
            return None
        return value if isinstance(value, str) else format_number(value)

    def view_output(self, f: Field, text: str | None) -> Any:
        """A view column's value → JSON-ready value. ``text`` is the value as PocketBase reads
        every column, as text (see ``sql_text``): a view column may hold whatever the query
        computed, whatever type the field was inferred as."""
        return self.output(f, text)


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


def sql_text(value: Any) -> str | None:
    """A database value as PocketBase's driver hands it over when it scans a row into strings:
    integers in decimal, floats as ``strconv.FormatFloat(v, 'g', -1, 64)`` (``2``, ``1.5``,
    ``1e+21``), booleans as SQLite stores them (``1``/``0``), bytes as text; NULL stays None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return "NaN" if value != value else ("+Inf" if value > 0 else "-Inf")
        return go_number(value)
    if isinstance(value, decimal.Decimal):  # PostgreSQL numeric (sum/avg of integers)
        if not value.is_finite():
            return "NaN"
        return str(int(value)) if value == value.to_integral_value() else go_number(float(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


_GO_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def go_parse_float(text: str | None) -> float | int:
    """``cast.ToFloat64`` of a string as PocketBase reads a number column: the decimal value,
    0 when Go's ``strconv.ParseFloat`` would fail (and for infinities, which JSON cannot hold)."""
    if not text or not _GO_FLOAT.fullmatch(text):
        return 0
    n = float(text)
    return 0 if n in (float("inf"), float("-inf")) else n


def format_number(n: float | int) -> str:
    if isinstance(n, float) and n.is_integer() and abs(n) < 1e21:
        return str(int(n))
    return str(n)


# --------------------------------------------------------------------------- settings rules
# ozzo-validation's threshold and length rules as PocketBase's field settings use them: a zero
# value is never checked, and each rule has ozzo's code, wording and params.


def go_number(n: float | int) -> str:
    """An int as Go prints it; a float as ``strconv.FormatFloat(n, 'g', -1, 64)`` writes it
    (``1e+20``, ``1.5``, ``10``)."""
    if isinstance(n, int):
        return str(n)
    sign, digits, exp = decimal.Decimal(repr(float(n))).normalize().as_tuple()
    assert isinstance(exp, int)
    text = "".join(map(str, digits))
    point = len(text) + exp  # position of the decimal point
    e = point - 1
    prefix = "-" if sign else ""
    if e < -4 or e >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def min_rule(value: Any, threshold: float | int) -> FieldError | None:
    if not value or value >= threshold:
        return None
    return FieldError("validation_min_greater_equal_than_required", f"Must be no less than {go_number(threshold)}.",
                      {"threshold": threshold})


def max_rule(value: Any, threshold: float | int) -> FieldError | None:
    if not value or value <= threshold:
        return None
    return FieldError("validation_max_less_equal_than_required", f"Must be no greater than {go_number(threshold)}.",
                      {"threshold": threshold})


def length_rule(value: str, low: int, high: int) -> FieldError | None:
    n = len(value)
    if not value or low <= n <= high:
        return None
    return FieldError("validation_length_out_of_range", f"The length must be between {low} and {high}.",
                      {"max": high, "min": low})


def first_error(*errors: FieldError | None) -> FieldError | None:
    """ozzo's rules for one value stop at the first failing rule."""
    for e in errors:
        if e is not None:
            return e
    return None


def required_rule(value: Any) -> FieldError | None:
    return REQUIRED if not value else None

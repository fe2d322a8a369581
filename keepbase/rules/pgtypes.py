"""SQLite comparison semantics on PostgreSQL.

SQLite compares values of different storage classes without error (``NULL < numbers <
text``) and converts operands by *affinity* first: a numeric column turns a numeric-looking
text operand into a number (``n = '2'`` is true), a text column turns a literal number into
text (``name = 2`` compares with ``'2.0'``). ``json_extract`` results have a per-row class.
PostgreSQL has none of this, so each operand is expanded into *variants* — (condition, class,
expression) — and a comparison becomes a ``CASE`` over the pairs, with constant results where
the classes differ. Plain same-class comparisons stay plain SQL.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from .resolver import Operand

NUMERIC_PATTERN = r"^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"
_NUMERIC_RE = re.compile(NUMERIC_PATTERN)
NULL_BOOL: ColumnElement[bool] = cast(null(), Boolean)


@dataclass(frozen=True)
class Variant:
    cond: ColumnElement[bool] | None
    cls: str  # "num" | "text"
    expr: ColumnElement[Any]
    text: ColumnElement[Any] | None = None  # SQLite's text form, when it differs from CAST


def sqlite_real_text(value: float) -> str:
    """SQLite's REAL → TEXT conversion (``%!.15g``): ``2.0`` → ``'2.0'``."""
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    s = f"{value:.15g}"
    if "e" in s:
        mant, exp = s.split("e")
        if "." not in mant:
            mant += ".0"
        return f"{mant}e{exp}"
    return s if "." in s else s + ".0"


def sqlite_numeric(value: str) -> float | int | None:
    """SQLite NUMERIC affinity applied to a text value (``None`` when it stays text)."""
    if not _NUMERIC_RE.match(value):
        return None
    stripped = value.strip()
    if re.fullmatch(r"[+-]?[0-9]+", stripped) and abs(int(stripped)) < 2**63:
        return int(stripped)
    return float(stripped)


def json_text(j: ColumnElement[Any]) -> ColumnElement[Any]:
    return j.op("#>>")(literal_column("'{}'::text[]"))


def real_as_text(x: ColumnElement[Any]) -> ColumnElement[Any]:
    whole = and_(x == func.trunc(x), func.abs(x) < 1e15)
    return case((whole, cast(cast(x, BigInteger), Text) + literal(".0", Text())), else_=cast(x, Text))


def is_null(o: Operand) -> ColumnElement[bool]:
    if o.cls == "null":
        return true()
    if o.literal and o.value is not None:
        return false()
    if o.cls == "json":
        return or_(o.expr.is_(None), func.jsonb_typeof(o.expr) == literal("null", Text()))
    return o.expr.is_(None)


def variants(o: Operand) -> list[Variant]:
    """The possible (non-NULL) classes of ``o``."""
    if o.cls == "null":
        return [Variant(None, "null", null())]
    if o.cls == "int":
        return [Variant(None, "num", o.expr, cast(o.expr, Text))]
    if o.cls == "real":
        text = literal(sqlite_real_text(o.value), Text()) if o.literal else real_as_text(o.expr)
        return [Variant(None, "num", o.expr, text)]
    if o.cls == "json":
        j = o.expr
        kind = func.jsonb_typeof(j)
        as_text = json_text(j)
        return [
            Variant(kind == literal("number", Text()), "num", cast(as_text, Float), as_text),
            Variant(
                kind == literal("boolean", Text()),
                "num",
                case((j == cast(literal("true", Text()), JSONB), 1), else_=0),
                case((j == cast(literal("true", Text()), JSONB), "1"), else_="0"),
            ),
            Variant(kind == literal("string", Text()), "text", as_text),
            Variant(kind.in_(["object", "array"]), "text", cast(j, Text)),
        ]
    return [Variant(None, "text", o.expr)]


def _and(a: ColumnElement[bool] | None, b: ColumnElement[bool] | None) -> ColumnElement[bool] | None:
    if a is None:
        return b
    if b is None:
        return a
    return and_(a, b)


def _to_numeric(vs: list[Variant], o: Operand) -> list[Variant]:
    out: list[Variant] = []
    for v in vs:
        if v.cls != "text":
            out.append(v)
        elif o.literal and isinstance(o.value, str):
            num = sqlite_numeric(o.value)
            if num is None:
                out.append(v)
            else:
                out.append(Variant(v.cond, "num", literal(float(num), Float()), v.expr))
        else:
            looks = v.expr.op("~")(literal(NUMERIC_PATTERN, Text()))
            out.append(Variant(_and(v.cond, looks), "num", cast(func.trim(v.expr), Float), v.expr))
            out.append(v)
    return out


def _to_text(vs: list[Variant]) -> list[Variant]:
    return [Variant(v.cond, "text", v.text) if v.cls == "num" and v.text is not None else v for v in vs]


def _direct(op: str, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[bool]:
    if op == "IS":
        return a.is_not_distinct_from(b)
    if op == "IS NOT":
        return a.is_distinct_from(b)
    return a.op(op, is_comparison=True)(b)


def _cross(op: str, lcls: str, rcls: str) -> ColumnElement[bool]:
    """Comparison of two non-NULL values of different classes (numbers sort before text)."""
    if op in ("=", "IS"):
        return false()
    if op == "IS NOT":
        return true()
    if op in ("<", "<="):
        return true() if lcls == "num" else false()
    return true() if lcls == "text" else false()


def compare(op: str, left: Operand, right: Operand) -> ColumnElement[bool]:
    """``left op right`` with SQLite semantics; ``op`` is one of = IS IS NOT < <= > >=."""
    lv, rv = variants(left), variants(right)
    if left.affinity == "numeric" and right.affinity != "numeric":
        rv = _to_numeric(rv, right)
    elif right.affinity == "numeric" and left.affinity != "numeric":
        lv = _to_numeric(lv, left)
    elif left.affinity == "text" and right.affinity is None:
        rv = _to_text(rv)
    elif right.affinity == "text" and left.affinity is None:
        lv = _to_text(lv)
    if len(lv) == 1 and len(rv) == 1 and lv[0].cond is None and rv[0].cond is None:
        if lv[0].cls == rv[0].cls:
            return _direct(op, lv[0].expr, rv[0].expr)
    whens: list[tuple[ColumnElement[bool], ColumnElement[bool]]] = []
    for lvar in lv:
        for rvar in rv:
            if "null" in (lvar.cls, rvar.cls):
                continue
            res = (
                _direct(op, lvar.expr, rvar.expr) if lvar.cls == rvar.cls else _cross(op, lvar.cls, rvar.cls)
            )
            cond = _and(lvar.cond, rvar.cond)
            whens.append((cond if cond is not None else true(), res))
    ln, rn = is_null(left), is_null(right)
    if op == "IS":
        null_result: ColumnElement[bool] = and_(ln, rn)
    elif op == "IS NOT":
        null_result = ~and_(ln, rn)
    else:
        null_result = NULL_BOOL
    body = case(*whens, else_=NULL_BOOL) if whens else NULL_BOOL
    return case((or_(ln, rn), null_result), else_=body)


def as_text(o: Operand) -> ColumnElement[Any]:
    """SQLite's text form of ``o`` (what ``LIKE`` sees)."""
    vs = variants(o)
    if len(vs) == 1 and vs[0].cond is None:
        v = vs[0]
        return null() if v.cls == "null" else (v.text if v.cls == "num" and v.text is not None else v.expr)
    whens = [(v.cond if v.cond is not None else true(), v.text if v.text is not None else v.expr) for v in vs]
    return case(*whens, else_=null())


def as_number(o: Operand) -> ColumnElement[Any]:
    """A float8 expression for math (``geoDistance`` args); non-numbers become NULL."""
    if o.cls in ("int", "real"):
        return cast(o.expr, Float)
    if o.cls == "null":
        return null()
    if o.cls == "json":
        return case((func.jsonb_typeof(o.expr) == literal("number", Text()), cast(json_text(o.expr), Float)))
    looks = o.expr.op("~")(literal(NUMERIC_PATTERN, Text()))
    return case((looks, cast(func.trim(o.expr), Float)))

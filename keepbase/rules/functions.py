"""Filter functions: ``geoDistance(lonA, latA, lonB, latB)`` and ``strftime(format, time, ...)``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    Float,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
)
from sqlalchemy.sql.elements import ColumnElement

from . import pgtypes
from .ast import Call, Identifier, Number, Operand
from .ast import Text as TextNode
from .errors import FilterError
from .limits import MAX_STRFTIME_ARGS
from .resolver import Operand as Resolved

ResolveArg = Callable[[Operand], Resolved]

_PG_DATE_PREFIX = (
    r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"(?:[ T](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?)?"
)
_PG_DATE = _PG_DATE_PREFIX + r"(?:Z|[+-][0-9]{2}:[0-9]{2})?$"
_TO_CHAR = {"d": "DD", "H": "HH24", "j": "DDD", "m": "MM", "M": "MI", "S": "SS", "Y": "YYYY", "f": "SS.MS"}


def call(node: Call, resolve_arg: ResolveArg, dialect: str) -> Resolved:
    if node.name == "geoDistance":
        return _geo_distance(node, resolve_arg, dialect)
    if node.name == "strftime":
        return _strftime(node, resolve_arg, dialect)
    raise FilterError(f'unknown function "{node.name}"')


def _single(arg: Resolved, fn: str, i: int) -> Resolved:
    if arg.multi is not None:
        raise FilterError(f"[{fn}] argument {i} must not be multi-valued")
    return arg


def _geo_distance(node: Call, resolve_arg: ResolveArg, dialect: str) -> Resolved:
    if len(node.args) != 4:
        raise FilterError(f"[geoDistance] expected 4 arguments, got {len(node.args)}")
    nums: list[ColumnElement[Any]] = []
    for i, arg in enumerate(node.args):
        if not isinstance(arg, Identifier | Number | Call):
            raise FilterError(f"[geoDistance] argument {i} must be an identifier, number or function")
        res = _single(resolve_arg(arg), "geoDistance", i)
        nums.append(pgtypes.as_number(res) if dialect == "postgresql" else res.expr)
    lon_a, lat_a, lon_b, lat_b = (func.radians(n) for n in nums)
    inner = func.cos(lat_a) * func.cos(lat_b) * func.cos(lon_b - lon_a) + func.sin(lat_a) * func.sin(lat_b)
    if dialect == "postgresql":
        # SQLite's acos() yields NULL outside [-1, 1]; PostgreSQL would raise instead.
        acos: ColumnElement[Any] = case((and_(inner >= -1.0, inner <= 1.0), func.acos(inner)), else_=null())
    else:
        acos = func.acos(inner)
    expr = literal(6371.0, Float()) * acos
    return Resolved(expr, "real", None, no_coalesce=True)


def _strftime(node: Call, resolve_arg: ResolveArg, dialect: str) -> Resolved:
    if not node.args:
        raise FilterError("[strftime] expected at least 1 argument")
    if len(node.args) > MAX_STRFTIME_ARGS:
        raise FilterError("[strftime] too many arguments")
    if not isinstance(node.args[0], TextNode):
        raise FilterError("[strftime] expects the first argument to be a format string")
    args = [_single(resolve_arg(a), "strftime", i) for i, a in enumerate(node.args)]
    if dialect != "postgresql":
        return Resolved(func.strftime(*(a.expr for a in args)), "text")
    if len(args) > 2:
        raise FilterError("[strftime] modifiers are not supported on PostgreSQL")
    ts = _pg_timestamp(args[1] if len(args) > 1 else None)
    return Resolved(_pg_format(node.args[0].value, ts), "text")


def _pg_timestamp(arg: Resolved | None) -> ColumnElement[Any]:
    now: ColumnElement[Any] = literal_column("(now() AT TIME ZONE 'UTC')")
    if arg is None:
        return now
    value = pgtypes.as_text(arg)
    parsed = cast(func.substring(value, literal(_PG_DATE_PREFIX, Text())), TIMESTAMP)
    return case(
        (value == literal("now", Text()), now),
        (value.op("~")(literal(_PG_DATE, Text())), parsed),
        else_=null(),
    )


def _pg_format(fmt: str, ts: ColumnElement[Any]) -> ColumnElement[Any]:
    """Translate an SQLite strftime format into concatenated ``to_char`` pieces."""
    pieces: list[ColumnElement[Any]] = []
    for token in re.findall(r"%.|%$|[^%]+", fmt, flags=re.S):
        if not token.startswith("%"):
            pieces.append(literal(token, Text()))
        elif token == "%%":
            pieces.append(literal("%", Text()))
        elif token[1:] in _TO_CHAR:
            pieces.append(func.to_char(ts, literal(_TO_CHAR[token[1:]], Text())))
        elif token == "%w":
            pieces.append(cast(cast(func.extract("dow", ts), BigInteger), Text))
        elif token == "%s":
            pieces.append(cast(cast(func.floor(func.extract("epoch", ts)), BigInteger), Text))
        else:
            return null()  # SQLite: an unknown conversion makes the whole result NULL
    if not pieces:
        return case((ts.is_(None), null()), else_=literal("", Text()))
    out = pieces[0]
    for p in pieces[1:]:
        out = out.op("||")(p)
    return out

"""What the compiler asks about identifiers: the ``Resolver`` protocol and its answer, ``Operand``.

An ``Operand`` is a SQL expression plus the facts PocketBase's ``ResolverResult`` carries
(empty/non-empty literal, no-coalesce, multi-match subquery, after-build hook) and the typing
the PostgreSQL emulation of SQLite comparisons needs:

* ``cls`` — the storage class of the value: ``text``, ``real``, ``int``, ``null`` or ``json``
  (a JSON sub-value whose class is only known per row; on PostgreSQL ``expr`` is then a
  ``jsonb`` expression, on SQLite a ``json_extract(...)``);
* ``affinity`` — SQLite column affinity (``text`` / ``numeric``) or ``None`` for literals and
  expressions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from sqlalchemy import Float, Integer, Text, literal, null
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select

ValueClass = Literal["text", "real", "int", "null", "json"]
Affinity = Literal["text", "numeric"] | None
Dialect = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class Operand:
    expr: ColumnElement[Any]
    cls: ValueClass = "text"
    affinity: Affinity = None
    literal: bool = False
    """A bound value (PocketBase: the result has params)."""
    value: Any = None
    """The Python value of a literal."""
    empty: bool = False
    """``NULL`` or an empty literal (``''``, ``null``, a missing ``@request`` value)."""
    known_non_empty: bool = False
    """``1``/``0``/``TRUE``/``FALSE`` identifiers and non-empty literals."""
    no_coalesce: bool = False
    """Compare with ``IS``/``IS NOT`` as is (json paths, geoPoint, ``geoDistance``)."""
    multi: Select[Any] | None = None
    """For multi-valued operands: every value (one column) of the current row, for all-of checks."""
    after: Callable[[ColumnElement[bool]], ColumnElement[bool]] | None = None
    """Wraps every comparison this operand takes part in (e.g. ``AND emailVisibility = 1``)."""

    def with_expr(self, expr: ColumnElement[Any]) -> Operand:
        return replace(self, expr=expr)


def text_literal(value: str) -> Operand:
    return Operand(literal(value, Text()), "text", None, True, value, value == "", value != "")


def number_literal(value: float | int) -> Operand:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return Operand(literal(value, Integer()), "int", None, True, value, False, True)
    return Operand(literal(value, Float()), "real", None, True, value, False, True)


def null_operand() -> Operand:
    return Operand(null(), "null", empty=True)


def constant_int(value: int) -> Operand:
    """A SQL integer constant that is not a parameter (``true``/``false``/``:isset``)."""
    return Operand(literal(value, Integer()), "int", None, False, value, False, True)


def static_value(value: Any) -> Operand:
    """A request value (``@request.*``) bound as a parameter, typed like PocketBase binds it."""
    if value is None:
        return null_operand()
    if isinstance(value, bool | int | float):
        return number_literal(value)
    return text_literal(str(value))


class Resolver(Protocol):
    """Turns an identifier (``title``, ``rel.name``, ``@request.auth.id``) into an ``Operand``.

    Raises ``FilterError`` for unknown identifiers (the compiler then tries ``null``,
    ``true`` and ``false``).
    """

    @property
    def dialect(self) -> Dialect: ...

    def resolve(self, name: str) -> Operand: ...

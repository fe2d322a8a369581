"""AST → one SQLAlchemy boolean expression (PocketBase ``search.FilterData.BuildExpr``).

Identifiers go through a ``Resolver``; values are always bound parameters. The comparison
rules follow PocketBase exactly (see 04-filters-and-rules.md):

* ``&&`` binds tighter than ``||``;
* ``=``/``!=`` are null-aware (``IS NOT``, ``COALESCE(a, '')``, ``a = '' OR a IS NULL``);
* ``~`` wraps literal patterns in ``%…%`` after escaping unless they hold an unescaped ``%``;
* without ``?`` a multi-valued operand must match for *all* its values: the comparison on the
  shared (joined) value AND ``NOT EXISTS (SELECT 1 FROM (<all values>) WHERE NOT (<cmp>))``.

On PostgreSQL, comparisons go through ``pgtypes`` to get SQLite's mixed-type semantics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Text, and_, case, exists, false, func, literal, not_, or_, select, true, type_coerce
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.visitors import replacement_traverse

from . import functions, pgtypes
from .ast import Call, Chain, Comparison, Identifier, Number
from .ast import Operand as Node
from .ast import Text as TextNode
from .errors import FilterError
from .macros import is_macro, macro_value
from .parser import parse
from .request_values import go_string
from .resolver import (
    Operand,
    Resolver,
    constant_int,
    null_operand,
    number_literal,
    static_value,
    text_literal,
)

_KEYWORDS: dict[str, Callable[[], Operand]] = {
    "null": null_operand,
    "true": lambda: constant_int(1),
    "false": lambda: constant_int(0),
}


@lru_cache(maxsize=1024)
def parse_cached(source: str) -> Chain:
    """``parse``, remembered: the same rules and filters come back on every request, parsing
    costs more than the query they guard, and the AST is immutable. Errors are not kept."""
    return parse(source)


def compile_filter(source: str, resolver: Resolver, *, now: datetime | None = None) -> ColumnElement[bool]:
    """Parse ``source`` and compile it against ``resolver``; raises ``FilterError``."""
    return Compiler(resolver, now=now).compile(parse_cached(source))


class Compiler:
    def __init__(self, resolver: Resolver, *, now: datetime | None = None) -> None:
        self.resolver = resolver
        self.pg = resolver.dialect == "postgresql"
        self.now = now

    # ------------------------------------------------------------------ structure

    def compile(self, chain: Chain) -> ColumnElement[bool]:
        ors: list[list[ColumnElement[bool]]] = [[]]
        for i, item in enumerate(chain.items):
            if i and chain.joins[i - 1] == "||":
                ors.append([])
            ors[-1].append(self.compile(item) if isinstance(item, Chain) else self.comparison(item))
        terms = [t[0] if len(t) == 1 else and_(*t).self_group() for t in ors]
        return terms[0] if len(terms) == 1 else or_(*terms).self_group()

    def comparison(self, c: Comparison) -> ColumnElement[bool]:
        left = self._side(c.left, "left")
        right = self._side(c.right, "right")
        op = c.base_op
        expr = self.build(left, op, right)
        if not c.any_of:
            if left.multi is not None and right.multi is not None:
                expr = and_(expr, self._many_vs_many(left, op, right)).self_group()
            elif left.multi is not None:
                expr = and_(expr, self._many_vs_one(left, op, right, inverse=False)).self_group()
            elif right.multi is not None:
                expr = and_(expr, self._many_vs_one(right, op, left, inverse=True)).self_group()
        if left.after is not None:
            expr = left.after(expr)
        if right.after is not None:
            expr = right.after(expr)
        return expr

    # ------------------------------------------------------------------ operands

    def _side(self, node: Node, side: str) -> Operand:
        try:
            return self.operand(node)
        except FilterError as exc:
            raise FilterError(f'invalid {side} operand "{_literal(node)}" - {exc.detail}') from None

    def operand(self, node: Node) -> Operand:
        if isinstance(node, TextNode):
            return text_literal(node.value)
        if isinstance(node, Number):
            return number_literal(node.value)
        if isinstance(node, Call):
            return functions.call(node, self.operand, self.resolver.dialect)
        name = node.name
        if is_macro(name):
            return static_value(macro_value(name, self.now))
        try:
            return self.resolver.resolve(name)
        except FilterError:
            keyword = _KEYWORDS.get(name.lower())
            if keyword is None:
                raise
            return keyword()

    # ------------------------------------------------------------------ operators

    def build(self, left: Operand, op: str, right: Operand) -> ColumnElement[bool]:
        if op == "=":
            return self.equal(True, left, right)
        if op == "!=":
            return self.equal(False, left, right)
        if op in ("~", "!~"):
            return self.like(left, right, negate=op == "!~")
        if op in ("<", "<=", ">", ">="):
            return self.cmp(op, left, right)
        raise FilterError(f'unknown expression operator "{op}"')

    def cmp(self, op: str, a: Operand, b: Operand) -> ColumnElement[bool]:
        if self.pg:
            return pgtypes.compare(op, a, b)
        if op == "IS":
            return a.expr.is_not_distinct_from(b.expr)
        if op == "IS NOT":
            return a.expr.is_distinct_from(b.expr)
        return a.expr.op(op, is_comparison=True)(b.expr)

    def equal(self, eq: bool, left: Operand, right: Operand) -> ColumnElement[bool]:
        eq_op = "=" if eq else "IS NOT"
        if left.no_coalesce or right.no_coalesce:
            return self.cmp("IS" if eq else "IS NOT", left, right)
        if left.empty and right.empty:
            return true() if eq else false()
        if left.known_non_empty or right.known_non_empty:
            a = text_literal("") if left.empty else left
            b = text_literal("") if right.empty else right
            return self.cmp(eq_op, a, b)
        if left.empty or right.empty:
            other = right if left.empty else left
            pair = (text_literal(""), other) if left.empty else (other, text_literal(""))
            if eq:
                return or_(self.cmp(eq_op, *pair), other.expr.is_(None)).self_group()
            return and_(self.cmp(eq_op, *pair), other.expr.is_not(None)).self_group()
        return self._coalesced(eq_op, left, right)

    def _coalesced(self, op: str, left: Operand, right: Operand) -> ColumnElement[bool]:
        """``COALESCE(a, '') op COALESCE(b, '')`` (the result has no SQLite affinity)."""
        if not self.pg:
            return self.cmp(
                op,
                left.with_expr(func.coalesce(left.expr, "")),
                right.with_expr(func.coalesce(right.expr, "")),
            )
        a, b, empty = replace(left, affinity=None), replace(right, affinity=None), text_literal("")
        ln, rn = pgtypes.is_null(left), pgtypes.is_null(right)
        return case(
            (and_(ln, rn), true() if op == "=" else false()),
            (ln, pgtypes.compare(op, empty, b)),
            (rn, pgtypes.compare(op, a, empty)),
            else_=pgtypes.compare(op, a, b),
        )

    def like(self, left: Operand, right: Operand, *, negate: bool) -> ColumnElement[bool]:
        if right.literal:
            pattern = wrap_like(go_string(right.value))

            def swap(element: Any, **kw: Any) -> Any:
                return literal(pattern, Text()) if isinstance(element, BindParameter) else None

            right_expr: ColumnElement[Any] = replacement_traverse(right.expr, dict[str, Any](), swap)
            right = replace(right, expr=right_expr, cls="text", value=pattern)
            if self.pg and _ends_with_escape(pattern):
                # SQLite: a dangling escape never matches; PostgreSQL would raise.
                lhs = pgtypes.as_text(left)
                res: ColumnElement[bool] = case((lhs.is_(None), pgtypes.NULL_BOOL), else_=false())
                return not_(res) if negate else res
        else:
            pct = literal("%", Text())
            rtext = pgtypes.as_text(right) if self.pg else right.expr
            right = right.with_expr(pct.op("||")(rtext).op("||")(pct).self_group())
        if self.pg:
            lhs, rhs = pgtypes.as_text(left), right.expr if not right.literal else pgtypes.as_text(right)
            # SQLite's LIKE folds ASCII letters only ('é' !~ 'É'); ILIKE folds by the collation, so
            # the comparison runs under "C", whatever the database's or the column's collation.
            lhs = lhs.collate("C")
            return lhs.not_ilike(rhs, escape="\\") if negate else lhs.ilike(rhs, escape="\\")
        lhs = type_coerce(left.expr, Text())  # SQLite's LIKE works on any value's text form
        return lhs.not_like(right.expr, escape="\\") if negate else lhs.like(right.expr, escape="\\")

    # ------------------------------------------------------------------ multi-match

    def _many_vs_one(self, multi: Operand, op: str, other: Operand, *, inverse: bool) -> ColumnElement[bool]:
        assert multi.multi is not None
        sub = multi.multi.subquery()
        value = _plain(multi, sub.c[0], keep_no_coalesce=True)
        plain_other = _plain(other, other.expr, keep_no_coalesce=False, keep_literal=True)
        cond = self.build(plain_other, op, value) if inverse else self.build(value, op, plain_other)
        return ~exists(select(literal(1)).select_from(sub).where(not_(cond)).correlate_except(sub))

    def _many_vs_many(self, left: Operand, op: str, right: Operand) -> ColumnElement[bool]:
        assert left.multi is not None and right.multi is not None
        lsub, rsub = left.multi.subquery(), right.multi.subquery()
        cond = self.build(
            _plain(left, lsub.c[0], keep_no_coalesce=True),
            op,
            _plain(right, rsub.c[0], keep_no_coalesce=True),
        )
        joined = lsub.join(rsub, true(), isouter=True)
        return ~exists(select(literal(1)).select_from(joined).where(not_(cond)).correlate_except(lsub, rsub))


def _plain(
    o: Operand, expr: ColumnElement[Any], *, keep_no_coalesce: bool, keep_literal: bool = False
) -> Operand:
    """The operand as seen inside a multi-match subquery (PocketBase keeps only a few facts)."""
    if keep_literal:
        return replace(o, expr=expr, multi=None, after=None, no_coalesce=False)
    return replace(
        o,
        expr=expr,
        multi=None,
        after=None,
        literal=False,
        value=None,
        empty=False,
        known_non_empty=False,
        no_coalesce=o.no_coalesce and keep_no_coalesce,
    )


def _literal(node: Node) -> str:
    if isinstance(node, Identifier | Call):
        return node.name
    if isinstance(node, Number):
        return node.literal
    return node.value


def contains_unescaped(s: str, ch: str) -> bool:
    prev = ""
    for c in s:
        if c == ch and prev != "\\":
            return True
        prev = "" if (c == "\\" and prev == "\\") else c
    return False


def escape_unescaped(s: str, chars: str) -> str:
    """PocketBase's ``escapeUnescapedChars`` (including its quirks with adjacent specials)."""
    out: list[str] = []
    match = False
    for i in range(len(s) - 1, -1, -1):
        ch = s[i]
        if match:
            if ch != "\\":
                out.append("\\")
            match = False
        else:
            match = ch in chars
        out.append(ch)
        if i == 0 and match:
            out.append("\\")
    return "".join(reversed(out))


def wrap_like(value: str) -> str:
    """The ``LIKE`` pattern for a literal ``~`` operand."""
    if contains_unescaped(value, "%"):
        return value
    return "%" + escape_unescaped(value, "\\%_") + "%"


def _ends_with_escape(pattern: str) -> bool:
    n = len(pattern) - len(pattern.rstrip("\\"))
    return n % 2 == 1

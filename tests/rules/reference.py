"""A small pure-Python reference evaluator of parsed filters (04-filters-and-rules.md).

It works on the AST of ``keepbase.rules.parse`` over one record dict and implements only a
well-defined subset of the language, written directly from the spec (no keepbase code):

* single-valued fields whose values are ``str`` (text/select/date), ``int``/``float``
  (number) or ``0``/``1`` (bool), plus ``field:lower`` and ``multi:length``;
* literals: text, number, ``true``/``false`` (1/0), ``null``;
* ``= != > >= < <= ~ !~`` and their ``?`` any-of forms, with PocketBase's null/empty equality
  table, LIKE semantics and SQL three-valued logic (``None`` is SQL ``NULL``/unknown);
* ``&&`` binding tighter than ``||``, parentheses;
* ``multi:each`` on multi-valued select fields: evaluated like PocketBase's shared
  ``LEFT JOIN`` (an empty array yields one ``NULL`` row; every ``multi:each`` reference in the
  expression sees the same joined element), with all-of (no ``?``) comparisons additionally
  requiring ``NOT EXISTS (element WHERE NOT cmp)``.

Anything outside the subset raises ``OutOfSubset`` rather than guessing (notably comparing a
text field with a number, which depends on SQLite column affinity).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from keepbase.rules import parse
from keepbase.rules.ast import Call, Chain, Comparison, Identifier, Number
from keepbase.rules.ast import Text as TextNode

Tri = bool | None  # SQL three-valued logic


class OutOfSubset(Exception):
    pass


@dataclass(frozen=True)
class Val:
    """An evaluated operand. ``kind``: field | text | number | null (true/false are numbers)."""

    kind: str
    value: Any

    @property
    def empty_literal(self) -> bool:
        return self.kind == "null" or (self.kind == "text" and self.value == "")

    @property
    def non_empty_literal(self) -> bool:
        return self.kind in ("text", "number") and not self.empty_literal


def _and(a: Tri, b: Tri) -> Tri:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _or(a: Tri, b: Tri) -> Tri:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def _not(a: Tri) -> Tri:
    return None if a is None else not a


def _rank(v: Any) -> int:
    if isinstance(v, bool):
        raise OutOfSubset("python bool value")
    if isinstance(v, int | float):
        return 0
    if isinstance(v, str):
        return 1
    raise OutOfSubset(f"value {v!r}")


def _order(a: Any, b: Any) -> int:
    """SQLite ordering of two non-NULL values without affinity: numbers < text (BINARY)."""
    ra, rb = _rank(a), _rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra == 1:  # BINARY collation == code point order for the ASCII values used here
        a, b = a.encode(), b.encode()
    return (a > b) - (a < b)


def sql_cmp(op: str, a: Any, b: Any) -> Tri:
    """``a op b`` in SQL (``=``, ``<``, …; ``NULL`` propagates)."""
    if a is None or b is None:
        return None
    c = _order(a, b)
    return {"=": c == 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]


def sql_is(a: Any, b: Any) -> bool:
    """``a IS b`` (null-safe equality)."""
    if a is None or b is None:
        return a is None and b is None
    return _order(a, b) == 0


def like_pattern_for_literal(value: str) -> str:
    """``~ 'value'``: as-is if it holds an unescaped ``%``, else escaped and wrapped in ``%…%``."""
    i = 0
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == "%":
            return value
        i += 1
    out: list[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value) and value[i + 1] in "%_":
            out.append(value[i : i + 2])  # already escaped
            i += 2
            continue
        out.append("\\" + c if c in "\\%_" else c)
        i += 1
    return "%" + "".join(out) + "%"


def like(text: Any, pattern: Any) -> Tri:
    """``text LIKE pattern ESCAPE '\\'``, ASCII case-insensitive."""
    if text is None or pattern is None:
        return None
    if not isinstance(text, str) or not isinstance(pattern, str):
        raise OutOfSubset("LIKE on a non-text value")
    rx: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 == len(pattern):
                return False  # dangling escape never matches
            rx.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        rx.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.fullmatch("".join(rx), text, re.DOTALL | re.IGNORECASE | re.ASCII) is not None


class Evaluator:
    """Evaluates one parsed expression for one record.

    ``fields`` maps a field name to its value; ``multi`` names the multi-valued select fields
    (values are lists) that may be used with ``:each`` / ``:length``.
    """

    def __init__(self, record: dict[str, Any], multi: frozenset[str] = frozenset()) -> None:
        self.record = record
        self.multi = multi
        self.joined: dict[str, Any] = {}  # current LEFT JOIN row per ``x:each``

    # --------------------------------------------------------------- operands

    def operand(self, node: Any) -> Val:
        if isinstance(node, TextNode):
            return Val("text", node.value)
        if isinstance(node, Number):
            return Val("number", node.value)
        if isinstance(node, Call):
            raise OutOfSubset("function call")
        assert isinstance(node, Identifier)
        name = node.name
        base, _, modifier = name.partition(":")
        if base in self.record:
            value = self.record[base]
            if base in self.multi:
                if modifier == "length":
                    return Val("field", len(value))
                if modifier == "each":
                    return Val("field", self.joined[base])
                raise OutOfSubset("multi-valued column without modifier")
            if modifier == "lower":
                return Val("field", value.lower() if isinstance(value, str) else value)
            if modifier:
                raise OutOfSubset(f"modifier {modifier}")
            return Val("field", value)
        keyword = name.lower()
        if keyword == "null":
            return Val("null", None)
        if keyword in ("true", "false"):
            return Val("number", 1 if keyword == "true" else 0)
        raise OutOfSubset(f"identifier {name}")

    @staticmethod
    def _multi_key(node: Any) -> str | None:
        if isinstance(node, Identifier) and node.name.endswith(":each"):
            return node.name.partition(":")[0]
        return None

    def each_keys(self, node: Chain | Comparison) -> set[str]:
        if isinstance(node, Comparison):
            return {k for k in (self._multi_key(node.left), self._multi_key(node.right)) if k}
        out: set[str] = set()
        for item in node.items:
            out |= self.each_keys(item)
        return out

    # --------------------------------------------------------------- operators

    def build(self, a: Val, op: str, b: Val) -> Tri:
        if op in ("=", "!="):
            return self.equal(op == "=", a, b)
        if op in ("~", "!~"):
            if b.kind == "text":
                pattern: Any = like_pattern_for_literal(b.value)
            elif b.kind == "field":
                pattern = None if b.value is None else "%" + b.value + "%"
            else:
                raise OutOfSubset("LIKE with a non-text right operand")
            if a.kind not in ("field", "text"):
                raise OutOfSubset("LIKE with a non-text left operand")
            res = like(a.value, pattern)
            return _not(res) if op == "!~" else res
        self._check_types(a, b)
        return sql_cmp(op, a.value, b.value)

    @staticmethod
    def _check_types(a: Val, b: Val) -> None:
        """Field vs literal of another type would involve SQLite affinity: out of the subset."""
        if (
            a.kind == "field"
            and b.kind in ("text", "number")
            or b.kind == "field"
            and a.kind in ("text", "number")
        ):
            fv, lv = (a.value, b.value) if a.kind == "field" else (b.value, a.value)
            if fv is not None and _rank(fv) != _rank(lv):
                raise OutOfSubset("mixed-type field/literal comparison")
        if a.kind == "field" and b.kind == "field" and a.value is not None and b.value is not None:
            if _rank(a.value) != _rank(b.value):
                raise OutOfSubset("mixed-type field/field comparison")

    def equal(self, eq: bool, a: Val, b: Val) -> Tri:
        if a.empty_literal and b.empty_literal:
            return eq
        if a.non_empty_literal or b.non_empty_literal:
            x = "" if a.empty_literal else a.value
            y = "" if b.empty_literal else b.value
            if a.kind == "field" or b.kind == "field":
                self._check_types(a, b)
            return sql_cmp("=", x, y) if eq else not sql_is(x, y)
        if a.empty_literal or b.empty_literal:
            other = b.value if a.empty_literal else a.value
            if eq:
                return _or(sql_cmp("=", other, ""), other is None)
            return not sql_is(other, "") and other is not None
        # field vs field: COALESCE(a, '') op COALESCE(b, '')
        self._check_types(a, b)
        x = "" if a.value is None else a.value
        y = "" if b.value is None else b.value
        return sql_cmp("=", x, y) if eq else not sql_is(x, y)

    def comparison(self, c: Comparison) -> Tri:
        op = c.op[1:] if c.op.startswith("?") else c.op
        result = self.build(self.operand(c.left), op, self.operand(c.right))
        if c.op.startswith("?"):
            return result
        lkey, rkey = self._multi_key(c.left), self._multi_key(c.right)
        if lkey and rkey:
            raise OutOfSubset("multi-valued on both sides")
        key = lkey or rkey
        if key is None:
            return result
        # all-of: AND NOT EXISTS (SELECT … FROM elements WHERE NOT (element op other))
        saved = self.joined[key]
        try:
            failed = False
            for element in self.record[key]:
                self.joined[key] = element
                ok = self.build(self.operand(c.left), op, self.operand(c.right))
                if ok is False:
                    failed = True
                    break
        finally:
            self.joined[key] = saved
        return _and(result, not failed)

    def chain(self, chain: Chain) -> Tri:
        """``t1 && t2 || t3``: OR of AND-groups."""
        ors: list[list[Chain | Comparison]] = [[]]
        for i, item in enumerate(chain.items):
            if i and chain.joins[i - 1] == "||":
                ors.append([])
            ors[-1].append(item)
        out: Tri = False
        for group in ors:
            acc: Tri = True
            for item in group:
                acc = _and(acc, self.chain(item) if isinstance(item, Chain) else self.comparison(item))
            out = _or(out, acc)
        return out

    def matches(self, expression: str) -> bool:
        ast = parse(expression)
        keys = sorted(self.each_keys(ast))
        for key in keys:
            if key not in self.multi:
                raise OutOfSubset(f"{key}:each on a single-valued field")
        # Every combination of LEFT JOIN rows (an empty array joins one NULL row).
        combos: list[dict[str, Any]] = [{}]
        for key in keys:
            values = self.record[key] or [None]
            combos = [{**combo, key: v} for combo in combos for v in values]
        for combo in combos:
            self.joined = combo
            if self.chain(ast) is True:
                return True
        return False


def accepts(record: dict[str, Any], expression: str, multi: frozenset[str] = frozenset()) -> bool:
    """Whether ``record`` satisfies ``expression`` (a ``WHERE`` accepts only TRUE)."""
    return Evaluator(record, multi).matches(expression)

"""Filter expressions → ``ast.Chain`` (PocketBase ``fexpr.Parse`` semantics), and sort strings."""

from __future__ import annotations

from .ast import Chain, Comparison, Join, Operand, SortItem
from .errors import FilterError
from .lexer import Token, tokenize
from .limits import (
    MAX_COMPARISONS,
    MAX_FILTER_LENGTH,
    MAX_GROUP_DEPTH,
    MAX_SORT_ITEM_LENGTH,
    MAX_SORT_ITEMS,
)

EMPTY = "empty filter expression"
INCOMPLETE = "invalid or incomplete filter expression"


class _Frame:
    """One parenthesised level under construction."""

    def __init__(self) -> None:
        self.items: list[Comparison | Chain] = []
        self.joins: list[Join] = []
        self.left: Operand | None = None
        self.op: str | None = None
        self.pending_join: Join | None = None
        self.step = "operand"  # operand → sign → right → join → operand ...

    def add(self, item: Comparison | Chain) -> None:
        if self.items:
            assert self.pending_join is not None
            self.joins.append(self.pending_join)
        self.items.append(item)
        self.step = "join"

    def finish(self) -> Chain:
        if self.step != "join":
            if not self.items and self.step == "operand" and self.pending_join is None:
                raise FilterError(EMPTY)
            raise FilterError(INCOMPLETE)
        return Chain(tuple(self.items), tuple(self.joins))


def parse(source: str) -> Chain:
    """Parse a filter/rule expression; raises ``FilterError`` and nothing else."""
    try:
        return _parse(source)
    except FilterError:
        raise
    except Exception as exc:  # defensive: the parser must only ever raise FilterError
        raise FilterError(f"invalid filter expression: {type(exc).__name__}") from exc


def _parse(source: str) -> Chain:
    if not isinstance(source, str):
        raise FilterError("filter expression must be a string")
    if "\x00" in source:  # never a valid part of an expression; refused on both engines alike
        raise FilterError("filter expression must not contain NUL bytes")
    if len(source.encode("utf-8", "surrogatepass")) > MAX_FILTER_LENGTH:
        raise FilterError(f"filter expression is too long (max {MAX_FILTER_LENGTH} bytes)")
    stack = [_Frame()]
    count = 0
    for tok in tokenize(source):
        frame = stack[-1]
        count += _step(stack, frame, tok)
        if count > MAX_COMPARISONS:
            raise FilterError(f"too many comparisons (max {MAX_COMPARISONS})")
    if len(stack) > 1:
        raise FilterError(f"invalid formatted group - missing {len(stack) - 1} closing bracket(s)")
    return stack[0].finish()


def _step(stack: list[_Frame], frame: _Frame, tok: Token) -> int:
    """Feed one token to the top frame; returns the number of completed comparisons."""
    if frame.step == "operand":
        if tok.kind == "lparen":
            if len(stack) > MAX_GROUP_DEPTH:
                raise FilterError(f"max parentheses nesting depth ({MAX_GROUP_DEPTH}) reached")
            stack.append(_Frame())
            return 0
        if tok.kind == "operand":
            frame.left = tok.operand
            frame.step = "sign"
            return 0
        raise FilterError(f"expected left operand, got {tok.kind} {tok.text!r}")
    if frame.step == "sign":
        if tok.kind != "sign":
            raise FilterError(f"expected sign operator, got {tok.kind} {tok.text!r}")
        frame.op = tok.text
        frame.step = "right"
        return 0
    if frame.step == "right":
        if tok.kind != "operand":
            raise FilterError(f"expected right operand, got {tok.kind} {tok.text!r}")
        assert frame.left is not None and frame.op is not None and tok.operand is not None
        frame.add(Comparison(frame.left, frame.op, tok.operand))
        frame.left = frame.op = None
        return 1
    # step == "join"
    if tok.kind == "join":
        frame.pending_join = "&&" if tok.text == "&&" else "||"
        frame.step = "operand"
        return 0
    if tok.kind == "rparen" and len(stack) > 1:
        stack.pop()
        stack[-1].add(frame.finish())
        return 0
    raise FilterError(f"expected && or ||, got {tok.kind} {tok.text!r}")


def parse_sort(sort: str) -> list[SortItem]:
    """``-created,title`` → sort items (``-`` DESC, ``+``/none ASC); empty parts are skipped."""
    items: list[SortItem] = []
    for raw in sort.split(","):
        part = raw.strip()
        if not part:
            continue
        if len(part) > MAX_SORT_ITEM_LENGTH:
            raise FilterError(f"sort item is too long (max {MAX_SORT_ITEM_LENGTH})")
        desc = part.startswith("-")
        if part[0] in "-+":
            part = part[1:]
        items.append(SortItem(part, desc))
        if len(items) > MAX_SORT_ITEMS:
            raise FilterError(f"too many sort items (max {MAX_SORT_ITEMS})")
    return items

"""The parsed form of a filter: plain data, no SQL.

``&&``/``||`` chains are kept flat as PocketBase keeps them (``Chain``); the compiler gives
``&&`` the higher precedence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Join = Literal["&&", "||"]

OPERATORS = frozenset(
    {"=", "!=", ">", ">=", "<", "<=", "~", "!~", "?=", "?!=", "?>", "?>=", "?<", "?<=", "?~", "?!~"}
)


@dataclass(frozen=True)
class Identifier:
    name: str


@dataclass(frozen=True)
class Text:
    value: str


@dataclass(frozen=True)
class Number:
    literal: str
    value: float


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Operand, ...]


Operand = Identifier | Text | Number | Call


@dataclass(frozen=True)
class Comparison:
    left: Operand
    op: str
    right: Operand

    @property
    def any_of(self) -> bool:
        return self.op.startswith("?")

    @property
    def base_op(self) -> str:
        """The operator without the ``?`` any-of prefix."""
        return self.op[1:] if self.op.startswith("?") else self.op


@dataclass(frozen=True)
class Chain:
    """``item (join item)*``; ``joins[i]`` joins ``items[i]`` to ``items[i + 1]``."""

    items: tuple[Comparison | Chain, ...]
    joins: tuple[Join, ...]


@dataclass(frozen=True)
class SortItem:
    name: str
    descending: bool

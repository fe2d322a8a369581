"""Tokenizer for the filter language (a port of PocketBase's ``fexpr`` scanner).

Function calls are scanned whole (arguments included, nesting ≤ ``MAX_FUNCTION_DEPTH``);
parentheses are plain tokens so the parser can bound group nesting without recursion
errors. Every failure is a ``FilterError``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from .ast import OPERATORS, Call, Identifier, Number, Operand, Text
from .errors import FilterError
from .limits import MAX_FUNCTION_DEPTH

TokenKind = Literal["operand", "sign", "join", "lparen", "rparen"]

IDENT_RE = re.compile(r"^[@#_]?[\w.:]*\w+$", re.ASCII)
_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$", re.ASCII)
_SIGN_RUNES = frozenset("=?!<>~")
_JOIN_RUNES = frozenset("&|")
_WHITESPACE = frozenset(" \t\n")
_TEXT_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    operand: Operand | None = None


def _is_ident_start(ch: str) -> bool:
    return ch.isalpha() or ch in "_@#"


def _is_ident_rune(ch: str) -> bool:
    return _is_ident_start(ch) or ch.isdigit() or ch in ".:"


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def parse_number(literal: str) -> float:
    """Go's ``cast.ToFloat64``: an out-of-range literal becomes 0."""
    value = float(literal)
    return 0.0 if math.isinf(value) else value


class Lexer:
    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0

    def _peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.src[i] if i < len(self.src) else ""

    def _skip_blank(self) -> None:
        """Skip whitespace and ``//`` comments."""
        while self.pos < len(self.src):
            ch = self.src[self.pos]
            if ch in _WHITESPACE:
                self.pos += 1
            elif ch == "/" and self._peek(1) == "/":
                end = self.src.find("\n", self.pos)
                self.pos = len(self.src) if end < 0 else end + 1
            else:
                return

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        while True:
            self._skip_blank()
            if self.pos >= len(self.src):
                return out
            out.append(self._next())

    def _next(self) -> Token:
        ch = self.src[self.pos]
        if ch == "(":
            self.pos += 1
            return Token("lparen", ch)
        if ch == ")":
            self.pos += 1
            return Token("rparen", ch)
        if ch in _SIGN_RUNES:
            text = self._take_while(lambda c: c in _SIGN_RUNES)
            if text not in OPERATORS:
                raise FilterError(f"invalid sign operator {text!r}")
            return Token("sign", text)
        if ch in _JOIN_RUNES:
            text = self._take_while(lambda c: c in _JOIN_RUNES)
            if text not in ("&&", "||"):
                raise FilterError(f"invalid join operator {text!r}")
            return Token("join", text)
        operand = self._operand(0)
        return Token("operand", "", operand)

    def _take_while(self, pred: object) -> str:
        start = self.pos
        while self.pos < len(self.src) and pred(self.src[self.pos]):  # type: ignore[operator]
            self.pos += 1
        return self.src[start : self.pos]

    def _operand(self, depth: int) -> Operand:
        ch = self._peek()
        if ch in ("'", '"'):
            return self._text(ch)
        if _is_digit(ch) or (ch == "-" and _is_digit(self._peek(1))):
            start = self.pos
            self.pos += 1
            self._take_while(lambda c: _is_digit(c) or c == ".")
            literal = self.src[start : self.pos]
            if not _NUMBER_RE.match(literal):
                raise FilterError(f"invalid number {literal!r}")
            return Number(literal, parse_number(literal))
        if ch and _is_ident_start(ch):
            name = self._take_while(_is_ident_rune)
            if not IDENT_RE.match(name) or name in ("@", "_", "#"):
                raise FilterError(f"invalid identifier {name!r}")
            if self._peek() == "(":
                return self._call(name, depth + 1)
            return Identifier(name)
        raise FilterError(f"unexpected character {ch!r}")

    def _text(self, quote: str) -> Text:
        """A quoted text, unescaped as fexpr 0.6 (PocketBase 0.40, verified on the binary): a
        backslash pairs with the next character; ``\\\\ \\' \\" \\n \\r \\t`` become the character
        they name, any other pair stays as written (``\\%`` reaches LIKE escaping unchanged)."""
        self.pos += 1
        out: list[str] = []
        src, n = self.src, len(self.src)
        while self.pos < n:
            ch = src[self.pos]
            if ch == quote:
                self.pos += 1
                return Text("".join(out))
            if ch == "\\" and self.pos + 1 < n:
                nxt = src[self.pos + 1]
                out.append(_TEXT_ESCAPES.get(nxt, ch + nxt))
                self.pos += 2
                continue
            out.append(ch)
            self.pos += 1
        raise FilterError("invalid quoted text - missing closing quote")

    def _call(self, name: str, depth: int) -> Call:
        if depth > MAX_FUNCTION_DEPTH:
            raise FilterError(f"max function nesting depth ({MAX_FUNCTION_DEPTH}) reached")
        self.pos += 1  # "("
        args: list[Operand] = []
        expect_arg = True
        while True:
            self._skip_blank()
            ch = self._peek()
            if not ch:
                raise FilterError(f"invalid function call {name!r} - missing closing parenthesis")
            if ch == ")":
                if expect_arg and args:
                    raise FilterError(f"invalid function call {name!r} - empty argument")
                self.pos += 1
                return Call(name, tuple(args))
            if ch == ",":
                if expect_arg:
                    raise FilterError(f"invalid function call {name!r} - empty argument")
                expect_arg = True
                self.pos += 1
                continue
            if not expect_arg:
                raise FilterError(f"invalid function call {name!r} - missing comma")
            args.append(self._operand(depth))
            expect_arg = False


def tokenize(source: str) -> list[Token]:
    return Lexer(source).tokens()

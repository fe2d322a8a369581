"""Check a regex against Go's RE2 syntax and word its errors as Go's ``regexp/syntax`` does.

PocketBase stores field patterns only when Go's ``regexp.Compile`` accepts them and answers
``Error parsing regexp: <reason>: `<expr>`.`` otherwise. keepbase evaluates patterns with
Python's ``re``, so a pattern must pass both: ``go_regex_error`` reproduces Go's verdict and
message; ``regex_error`` adds a generic message for the few RE2 constructs Python lacks.
"""

from __future__ import annotations

import re

_MAX_REPEAT = 1000
_PERL_CLASSES = frozenset("dDsSwW")
_ASSERTIONS = frozenset("AbBz")
_SIMPLE_ESCAPES = frozenset("afnrtv")
_POSIX = frozenset({"alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
                    "space", "upper", "word", "xdigit"})
_REPEAT_RE = re.compile(r"\{(\d+)(,(\d*))?\}")
_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")


class _GoSyntaxError(Exception):
    def __init__(self, code: str, expr: str) -> None:
        super().__init__(code)
        self.code, self.expr = code, expr


def go_regex_error(pattern: str) -> str | None:
    """Go's ``regexp.Compile`` error text for ``pattern`` (None when Go accepts it)."""
    try:
        _Parser(pattern).parse()
    except _GoSyntaxError as exc:
        return f"error parsing regexp: {exc.code}: `{exc.expr}`"
    return None


def regex_error(pattern: str) -> str | None:
    """Go's error for ``pattern``, or a generic one when only Python's ``re`` refuses it."""
    message = go_regex_error(pattern)
    if message is None:
        try:
            re.compile(pattern)
        except re.error:
            return "error parsing regexp: unsupported syntax"
    return message


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.s = pattern
        self.i = 0

    def parse(self) -> None:
        s = self.s
        depth = 0
        operand = False  # something a repetition operator may apply to
        last_repeat = -1  # start of the previous repetition operator, if it directly precedes
        while self.i < len(s):
            c = s[self.i]
            start = self.i
            repeat_start = -1
            if c == "(":
                self._group()
                depth += 1
                operand = False
            elif c == ")":
                if depth == 0:
                    raise _GoSyntaxError("unexpected )", s)
                depth -= 1
                self.i += 1
                operand = True
            elif c == "|":
                self.i += 1
                operand = False
            elif c == "[":
                self._class()
                operand = True
            elif c in "*+?":
                self.i += 1
                if self.i < len(s) and s[self.i] == "?":
                    self.i += 1
                self._repeat(start, last_repeat, operand)
                repeat_start = start
            elif c == "{" and (m := _REPEAT_RE.match(s, self.i)):
                self.i = m.end()
                if self.i < len(s) and s[self.i] == "?":
                    self.i += 1
                low = int(m.group(1))
                high = low if m.group(2) is None else (int(m.group(3)) if m.group(3) else -1)
                if low > _MAX_REPEAT or high > _MAX_REPEAT or 0 <= high < low:
                    raise _GoSyntaxError("invalid repeat count", s[start:self.i])
                self._repeat(start, last_repeat, operand)
                repeat_start = start
            elif c == "\\":
                self._escape(in_class=False)
                operand = True
            else:
                self.i += 1
                operand = True
            last_repeat = repeat_start
        if depth:
            raise _GoSyntaxError("missing closing )", s)

    def _repeat(self, start: int, last_repeat: int, operand: bool) -> None:
        if last_repeat >= 0:
            raise _GoSyntaxError("invalid nested repetition operator", self.s[last_repeat:self.i])
        if not operand:
            raise _GoSyntaxError("missing argument to repetition operator", self.s[start:self.i])

    def _group(self) -> None:
        s = self.s
        start = self.i
        self.i += 1
        if not s.startswith("?", self.i):
            return
        rest = s[self.i + 1:]
        if rest.startswith(("P<", "<")):
            open_at = self.i + 1 + rest.index("<")
            end = s.find(">", open_at)
            if end < 0:
                raise _GoSyntaxError("invalid named capture", s[start:])
            if not _NAME_RE.match(s[open_at + 1:end]):
                raise _GoSyntaxError("invalid named capture", s[start:end + 1])
            self.i = end + 1
            return
        self.i += 1
        sign, saw_flag = 1, False
        while self.i < len(s):
            c = s[self.i]
            self.i += 1
            if c in "imsU":
                saw_flag = True
            elif c == "-" and sign > 0:
                sign, saw_flag = -1, False
            elif c in ":)":
                if sign < 0 and not saw_flag:
                    break
                if c == ")":
                    self.i -= 1  # the group closes right away; the main loop consumes it
                return
            else:
                break
        raise _GoSyntaxError("invalid or unsupported Perl syntax", s[start:self.i])

    def _class(self) -> None:
        s = self.s
        start = self.i
        self.i += 1
        if self.i < len(s) and s[self.i] == "^":
            self.i += 1
        first = True
        while self.i >= len(s) or s[self.i] != "]" or first:
            if self.i >= len(s):
                raise _GoSyntaxError("missing closing ]", s[start:])
            first = False
            if s.startswith("[:", self.i):
                end = s.find(":]", self.i + 2)
                if end >= 0:
                    name = s[self.i + 2:end].lstrip("^")
                    if name not in _POSIX:
                        raise _GoSyntaxError("invalid character class range", s[self.i:end + 2])
                    self.i = end + 2
                    continue
            if s[self.i] == "\\" and self.i + 1 < len(s) and (s[self.i + 1] in _PERL_CLASSES or s[self.i + 1] in "pP"):
                self._escape(in_class=True)
                continue
            range_start = self.i
            low = self._class_char(start)
            if self.i + 1 < len(s) and s[self.i] == "-" and s[self.i + 1] != "]":
                self.i += 1
                high = self._class_char(start)
                if high < low:
                    raise _GoSyntaxError("invalid character class range", s[range_start:self.i])
        self.i += 1

    def _class_char(self, class_start: int) -> str:
        s = self.s
        if self.i >= len(s):
            raise _GoSyntaxError("missing closing ]", s[class_start:])
        if s[self.i] == "\\":
            return self._escape(in_class=True)
        self.i += 1
        return s[self.i - 1]

    def _escape(self, in_class: bool) -> str:
        """Consume one escape sequence; returns the character it stands for (or "" for classes)."""
        s = self.s
        start = self.i
        self.i += 1
        if self.i >= len(s):
            raise _GoSyntaxError("trailing backslash at end of expression", "")
        c = s[self.i]
        self.i += 1
        if c in _PERL_CLASSES:
            return ""
        if not in_class and c in _ASSERTIONS:
            return ""
        if not in_class and c == "Q":
            end = s.find("\\E", self.i)
            self.i = len(s) if end < 0 else end + 2
            return ""
        if c in "pP":
            if self.i >= len(s):
                raise _GoSyntaxError("invalid character class range", s[start:])
            if s[self.i] == "{":
                end = s.find("}", self.i)
                if end < 0:
                    raise _GoSyntaxError("invalid character class range", s[start:])
                self.i = end + 1
            else:
                self.i += 1
            return ""
        if c in "01234567":
            if c != "0" and (self.i >= len(s) or not "0" <= s[self.i] <= "7"):
                raise _GoSyntaxError("invalid escape sequence", s[start:self.i])
            digits = c
            while len(digits) < 3 and self.i < len(s) and "0" <= s[self.i] <= "7":
                digits += s[self.i]
                self.i += 1
            return chr(int(digits, 8))
        if c == "x":
            if self.i < len(s) and s[self.i] == "{":
                end = s.find("}", self.i)
                hexa = s[self.i + 1:end] if end >= 0 else ""
                if end < 0 or not hexa or not all(h in "0123456789abcdefABCDEF" for h in hexa) \
                        or int(hexa, 16) > 0x10FFFF:
                    raise _GoSyntaxError("invalid escape sequence", s[start:end + 1 if end >= 0 else len(s)])
                self.i = end + 1
                return chr(int(hexa, 16))
            hexa = s[self.i:self.i + 2]
            if len(hexa) < 2 or not all(h in "0123456789abcdefABCDEF" for h in hexa):
                raise _GoSyntaxError("invalid escape sequence", s[start:min(len(s), self.i + 2)])
            self.i += 2
            return chr(int(hexa, 16))
        if c in _SIMPLE_ESCAPES:
            return {"a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}[c]
        if c < "\x80" and not c.isalnum():
            return c
        raise _GoSyntaxError("invalid escape sequence", s[start:self.i])

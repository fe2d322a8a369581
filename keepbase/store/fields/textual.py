"""text, email, url, editor and password fields."""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from ...core.errors import FieldError
from ...core.ids import random_string
from ..models import Field
from .base import FieldType, Invalid, SaveContext, as_text, invalid

TEXT_MAX_DEFAULT = 5000
EDITOR_MAX_DEFAULT = 5 * 1024 * 1024
PASSWORD_MAX_DEFAULT = 71
_EMAIL_RE = re.compile(r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
_PATTERN_CACHE: dict[str, re.Pattern[str] | None] = {}


def compiled(pattern: str) -> re.Pattern[str] | None:
    if pattern not in _PATTERN_CACHE:
        try:
            _PATTERN_CACHE[pattern] = re.compile(pattern)
        except re.error:
            _PATTERN_CACHE[pattern] = None
    return _PATTERN_CACHE[pattern]


def _check_nonneg_int(f: Field, key: str, errors: dict[str, FieldError]) -> None:
    v = f.options.get(key, 0)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        errors[key] = FieldError("validation_min_greater_equal_than_required", "Must be no less than 0.",
                                 {"threshold": 0})


def generate_from_pattern(pattern: str) -> str:
    """A random string matching an autogenerate pattern.

    Supports the regex subset such patterns use: literal characters (``\\`` escapes), character
    classes ``[a-z0-9_]`` and the quantifiers ``{n}`` / ``{n,m}`` on either, e.g.
    ``[a-z0-9]{15}`` or ``ORD-[0-9]{10}``. Anything else is rejected at save time.
    """
    plan = _PLANS.get(pattern)
    if plan is None:
        plan = _PLANS[pattern] = _compile_pattern(pattern)
    out: list[str] = []
    for charset, low, high in plan:
        n = low if low == high else low + secrets.randbelow(high - low + 1)
        out.append(random_string(n, charset))
    return "".join(out)


_PLANS: dict[str, list[tuple[str, int, int]]] = {}
_QUANT_RE = re.compile(r"\{(\d+)(?:,(\d+))?\}")


def _class_chars(spec: str) -> str:
    chars, i = "", 0
    while i < len(spec):
        c = spec[i]
        if c == "\\" and i + 1 < len(spec):
            chars += spec[i + 1]
            i += 2
        elif i + 2 < len(spec) and spec[i + 1] == "-":
            if ord(spec[i + 2]) < ord(c):
                raise ValueError("bad range")
            chars += "".join(chr(x) for x in range(ord(c), ord(spec[i + 2]) + 1))
            i += 3
        else:
            chars += c
            i += 1
    if not chars or spec.startswith("^"):
        raise ValueError("unsupported character class")
    return chars


def _compile_pattern(pattern: str) -> list[tuple[str, int, int]]:
    plan: list[tuple[str, int, int]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError("unclosed class")
            charset = _class_chars(pattern[i + 1:end])
            i = end + 1
        elif c == "\\" and i + 1 < len(pattern):
            charset, i = pattern[i + 1], i + 2
        elif c in "(){}*+?|.^$":
            raise ValueError("unsupported pattern syntax")
        else:
            charset, i = c, i + 1
        low = high = 1
        m = _QUANT_RE.match(pattern, i)
        if m:
            low = int(m.group(1))
            high = int(m.group(2)) if m.group(2) else low
            if high < low or high > 1000:
                raise ValueError("bad quantifier")
            i = m.end()
        plan.append((charset, low, high))
    if not plan:
        raise ValueError("empty pattern")
    return plan


class TextType(FieldType):
    name = "text"
    defaults = {"autogeneratePattern": "", "max": 0, "min": 0, "pattern": "", "primaryKey": False}

    def check_options(self, f: Field, errors: dict[str, FieldError]) -> None:
        _check_nonneg_int(f, "min", errors)
        _check_nonneg_int(f, "max", errors)
        mx, mn = f.options.get("max", 0), f.options.get("min", 0)
        if isinstance(mx, int) and isinstance(mn, int) and mx and mn > mx:
            errors["max"] = FieldError("validation_min_greater_equal_than_required",
                                       f"Must be no less than {mn}.", {"threshold": mn})
        pattern = f.options.get("pattern", "")
        if not isinstance(pattern, str) or (pattern and compiled(pattern) is None):
            errors["pattern"] = FieldError("validation_invalid_regex", "Invalid regex pattern.")
        auto = f.options.get("autogeneratePattern", "")
        if auto:
            try:
                generated = generate_from_pattern(auto)
            except (ValueError, TypeError):
                errors["autogeneratePattern"] = FieldError(
                    "validation_invalid_autogenerate_pattern", "Invalid autogenerate pattern.")
            else:
                rx = compiled(pattern) if pattern else None
                if rx is not None and not rx.search(generated):
                    errors["autogeneratePattern"] = FieldError(
                        "validation_invalid_autogenerate_pattern_value",
                        "The provided autogenerate pattern doesn't match the field pattern.")

    def coerce(self, f: Field, raw: Any, ctx: SaveContext) -> Any:
        return as_text(raw)

    def validate(self, f: Field, value: Any, ctx: SaveContext) -> None:
        n = len(value)
        mn = int(f.options.get("min") or 0)
        mx = int(f.options.get("max") or 0) or TEXT_MAX_DEFAULT
        if mn and n < mn:
            raise invalid("validation_min_text_constraint", f"Must be at least {mn} character(s).", {"min": mn})
        if n > mx:
            raise invalid("validation_max_text_constraint", f"Must be no more than {mx} character(s).", {"max": mx})
        pattern = f.options.get("pattern") or ""
        if pattern:
            rx = compiled(pattern)
            if rx is None or not rx.search(value):
                raise invalid("validation_invalid_format", "Invalid value format.")
        if "\x00" in value:
            raise invalid("validation_invalid_value", "Must not contain NUL characters.")


class EmailType(FieldType):
    name = "email"
    defaults = {"exceptDomains": [], "onlyDomains": []}

    def coerce(self, f: Field, raw: Any, ctx: SaveContext) -> Any:
        return as_text(raw)

    def validate(self, f: Field, value: Any, ctx: SaveContext) -> None:
        if len(value) > 255 or not _EMAIL_RE.match(value):
            raise invalid("validation_is_email", "Must be a valid email address.")
        domain = value.rsplit("@", 1)[1].lower()
        _check_domain(f, domain, "validation_email_domain_not_allowed", "Email domain is not allowed.")


class UrlType(FieldType):
    name = "url"
    defaults = {"exceptDomains": [], "onlyDomains": []}

    def coerce(self, f: Field, raw: Any, ctx: SaveContext) -> Any:
        return as_text(raw)

    def validate(self, f: Field, value: Any, ctx: SaveContext) -> None:
        if any(c.isspace() for c in value) or "\x00" in value or len(value) > 2048:
            raise invalid("validation_invalid_url", "Must be a valid url.")
        parts = urlsplit(value if "://" in value else "http://" + value)
        host = (parts.hostname or "").lower()
        if not host or "." not in host and host != "localhost":
            raise invalid("validation_invalid_url", "Must be a valid url.")
        _check_domain(f, host, "validation_url_domain_not_allowed", "Url domain is not allowed.")


def _check_domain(f: Field, domain: str, code: str, message: str) -> None:
    only = [d.lower() for d in f.options.get("onlyDomains") or []]
    excl = [d.lower() for d in f.options.get("exceptDomains") or []]
    if (only and domain not in only) or domain in excl:
        raise invalid(code, message)


class EditorType(FieldType):
    name = "editor"
    defaults = {"convertURLs": False, "maxSize": 0}

    def coerce(self, f: Field, raw: Any, ctx: SaveContext) -> Any:
        return as_text(raw)

    def validate(self, f: Field, value: Any, ctx: SaveContext) -> None:
        mx = int(f.options.get("maxSize") or 0) or EDITOR_MAX_DEFAULT
        if len(value.encode()) > mx:
            raise invalid("validation_content_size_limit",
                          f"The maximum allowed content size is {mx} bytes.", {"maxSize": mx})
        if "\x00" in value:
            raise invalid("validation_invalid_value", "Must not contain NUL characters.")


class PasswordType(FieldType):
    """Stores a password hash; the plain value is validated then hashed by the records service."""

    name = "password"
    defaults = {"cost": 0, "max": 0, "min": 0, "pattern": ""}

    def check_options(self, f: Field, errors: dict[str, FieldError]) -> None:
        _check_nonneg_int(f, "min", errors)
        _check_nonneg_int(f, "max", errors)
        cost = f.options.get("cost", 0)
        if cost and (not isinstance(cost, int) or not 4 <= cost <= 31):
            errors["cost"] = FieldError("validation_invalid_value", "Invalid value.")

    def coerce(self, f: Field, raw: Any, ctx: SaveContext) -> Any:
        return as_text(raw)

    def validate(self, f: Field, value: Any, ctx: SaveContext) -> None:
        n = len(value)
        mn = int(f.options.get("min") or 0)
        mx = int(f.options.get("max") or 0) or PASSWORD_MAX_DEFAULT
        if mn and n < mn:
            raise Invalid(FieldError("validation_min_text_constraint", f"Must be at least {mn} character(s)."))
        if n > mx:
            raise Invalid(FieldError("validation_max_text_constraint", f"Must be less than {mx} character(s)."))
        pattern = f.options.get("pattern") or ""
        if pattern:
            rx = compiled(pattern)
            if rx is None or not rx.search(value):
                raise invalid("validation_invalid_format", "Invalid value format.")

    def output(self, f: Field, db_value: Any) -> Any:
        return ""


TYPES = [TextType(), EmailType(), UrlType(), EditorType(), PasswordType()]

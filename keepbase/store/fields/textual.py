"""text, email, url, editor and password fields."""

from __future__ import annotations

import re
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
    """A random string for the simple ``[charset]{n}`` patterns PocketBase uses."""
    cached = _CHARSETS.get(pattern)
    if cached is None:
        cached = _CHARSETS[pattern] = _charset(pattern)
    return random_string(cached[1], cached[0])


_CHARSETS: dict[str, tuple[str, int]] = {}


def _charset(pattern: str) -> tuple[str, int]:
    m = re.fullmatch(r"\[([^\]]+)\]\{(\d+)\}", pattern)
    if not m:
        raise ValueError("unsupported autogenerate pattern")
    charset = ""
    spec = m.group(1)
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            charset += "".join(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            charset += spec[i]
            i += 1
    return charset, int(m.group(2))


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
            raise invalid("validation_max_text_constraint", f"Must be less than {mx} character(s).", {"max": mx})
        pattern = f.options.get("pattern") or ""
        if pattern:
            rx = compiled(pattern)
            if rx is None or not rx.search(value):
                raise invalid("validation_invalid_format", "Invalid value format.")

    def output(self, f: Field, db_value: Any) -> Any:
        return ""


TYPES = [TextType(), EmailType(), UrlType(), EditorType(), PasswordType()]

"""text, email, url, editor and password fields."""

from __future__ import annotations

import json
import re
import secrets
import string
from typing import Any
from urllib.parse import urlsplit

from ...core.errors import REQUIRED, FieldError
from ...core.ids import random_string
from ..models import Field
from .base import (
    MAX_SAFE_INT,
    FieldType,
    Invalid,
    SaveContext,
    as_text,
    first_error,
    invalid,
    max_rule,
    min_rule,
)
from .goregex import regex_error

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


def _set(errors: dict[str, Any], key: str, error: FieldError | None) -> None:
    if error is not None:
        errors[key] = error


def _regex_rule(pattern: str) -> FieldError | None:
    message = regex_error(pattern) if pattern else None
    return FieldError("validation_invalid_regex", message) if message else None


# ozzo-validation's is.Domain (its 255-byte limit included; the odd [a-z0-9] is ozzo's)
_DOMAIN_RE = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-zA-Z]{1,63}| xn--[a-z0-9]{1,59})$")


def check_domains(f: Field, errors: dict[str, Any]) -> None:
    """exceptDomains/onlyDomains of email and url fields: one list or the other, each item a domain."""
    only, excl = f.options.get("onlyDomains") or [], f.options.get("exceptDomains") or []
    for key, values, other in (("exceptDomains", excl, only), ("onlyDomains", only, excl)):
        if other and values:
            errors[key] = FieldError("validation_empty", "Must be blank.")
            continue
        bad = {str(i): FieldError("validation_is_domain", "Must be a valid domain.") for i, v in enumerate(values)
               if v and (len(v.encode()) > 255 or not _DOMAIN_RE.fullmatch(v))}
        if bad:
            errors[key] = bad


def generate_from_pattern(pattern: str) -> str:
    """A random string matching an autogenerate pattern.

    Simple patterns (literal characters, ``\\`` escapes, classes like ``[a-z0-9_]``, each with an
    optional ``{n}`` / ``{n,m}``, e.g. ``[a-z0-9]{15}``) take a fast path; anything else Python's
    regex parser understands (groups, alternation, ``+``, ``*``, ``\\d``…) is generated from the
    parsed pattern, unbounded repeats capped as PocketBase caps them.
    """
    plan = _PLANS.get(pattern)
    if plan is None:
        try:
            plan = _compile_pattern(pattern)
        except ValueError:
            return _generate_parsed(pattern)
        _PLANS[pattern] = plan
    out: list[str] = []
    for charset, low, high in plan:
        n = low if low == high else low + secrets.randbelow(high - low + 1)
        out.append(random_string(n, charset))
    return "".join(out)


ALNUM = string.ascii_letters + string.digits
_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))
_CATEGORIES = {"CATEGORY_DIGIT": "0123456789", "CATEGORY_WORD": ALNUM + "_", "CATEGORY_SPACE": " ",
               "CATEGORY_NOT_DIGIT": "".join(c for c in _PRINTABLE if not c.isdigit()),
               "CATEGORY_NOT_WORD": "".join(c for c in _PRINTABLE if not (c.isalnum() or c == "_")),
               "CATEGORY_NOT_SPACE": _PRINTABLE.replace(" ", "")}
_MAX_UNBOUNDED = 10
_PARSED: dict[str, Any] = {}


def _generate_parsed(pattern: str) -> str:
    import re._constants as sre_c  # type: ignore[import-not-found]
    import re._parser as sre_p  # type: ignore[import-not-found]

    tree = _PARSED.get(pattern)
    if tree is None:
        try:
            tree = sre_p.parse(pattern)
        except re.error as exc:
            raise ValueError(str(exc)) from None
        if len(_PARSED) > 256:
            _PARSED.clear()
        _PARSED[pattern] = tree

    def charset(items: Any) -> str:
        chars, negate = "", False
        for op, av in items:
            if op is sre_c.NEGATE:
                negate = True
            elif op is sre_c.LITERAL:
                chars += chr(av)
            elif op is sre_c.RANGE:
                chars += "".join(chr(c) for c in range(av[0], min(av[1], av[0] + 4096) + 1))
            elif op is sre_c.CATEGORY:
                chars += _CATEGORIES.get(str(av), "")
            else:
                raise ValueError(f"unsupported class item {op}")
        if negate:
            chars = "".join(c for c in _PRINTABLE if c not in chars)
        if not chars:
            raise ValueError("empty character class")
        return chars

    def gen(items: Any) -> str:
        out: list[str] = []
        for op, av in items:
            if op is sre_c.LITERAL:
                out.append(chr(av))
            elif op is sre_c.NOT_LITERAL:
                out.append(random_string(1, _PRINTABLE.replace(chr(av), "")))
            elif op is sre_c.ANY:
                out.append(random_string(1, ALNUM))
            elif op is sre_c.IN:
                out.append(random_string(1, charset(av)))
            elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
                low, high, sub = av
                high = low + _MAX_UNBOUNDED if high is sre_c.MAXREPEAT else high
                n = low + secrets.randbelow(high - low + 1)
                out.extend(gen(sub) for _ in range(n))
            elif op is sre_c.SUBPATTERN:
                out.append(gen(av[-1]))
            elif op is sre_c.BRANCH:
                out.append(gen(av[1][secrets.randbelow(len(av[1]))]))
            elif op is sre_c.AT:
                continue
            else:
                raise ValueError(f"unsupported pattern syntax {op}")
        return "".join(out)

    return gen(tree)


_PLANS: dict[str, list[tuple[str, int, int]]] = {}
_QUANT_RE = re.compile(r"\{(\d+)(?:,(\d+))?\}")


def _class_chars(spec: str) -> str:
    chars, i = "", 0
    while i < len(spec):
        c = spec[i]
        if c == "\\" and i + 1 < len(spec):
            if spec[i + 1].isalnum():  # \d, \w, \n…: a class or special character, not a literal
                raise ValueError("escape sequence")
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
        elif c == "\\":
            if i + 1 >= len(pattern) or pattern[i + 1].isalnum():  # \d, \w…: leave to the full generator
                raise ValueError("escape sequence")
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
    encryptable = True
    defaults = {"autogeneratePattern": "", "max": 0, "min": 0, "pattern": "", "primaryKey": False}

    def check_options(self, f: Field, errors: dict[str, Any]) -> None:
        o = f.options
        pk = bool(o.get("primaryKey"))
        mn, mx = o.get("min", 0), o.get("max", 0)
        _set(errors, "min", first_error(min_rule(mn, 0), max_rule(mn, MAX_SAFE_INT)))
        _set(errors, "max", first_error(min_rule(mx, mn), max_rule(mx, MAX_SAFE_INT)))
        pattern = o.get("pattern", "")
        _set(errors, "pattern", first_error(REQUIRED if pk and not pattern else None, _regex_rule(pattern)))
        if pk and f.hidden:
            errors["hidden"] = FieldError("validation_empty", "Must be blank.")
        if pk and not o.get("required"):
            errors["required"] = REQUIRED
        auto = o.get("autogeneratePattern", "")
        _set(errors, "autogeneratePattern", _regex_rule(auto) or self._check_autogenerate(f, auto))

    def _check_autogenerate(self, f: Field, auto: str) -> FieldError | None:
        """PocketBase generates 10 sample values and checks each against the field's settings."""
        if not auto:
            return None
        for _ in range(10):
            try:
                sample = generate_from_pattern(auto)
            except (ValueError, TypeError):
                return FieldError("validation_invalid_autogenerate_pattern", "Unsupported autogenerate pattern.")
            try:
                self.validate_plain(f, sample)
            except Invalid:
                return FieldError("validation_invalid_autogenerate_pattern_value",
                                  "The provided autogenerate pattern could produce invalid field values, ex.: "
                                  + json.dumps(sample, ensure_ascii=False))
        return None

    def validate_plain(self, f: Field, value: str) -> None:
        if (f.options.get("required") or f.options.get("primaryKey")) and not value:
            raise invalid("validation_required", "Cannot be blank.")
        if value:
            self.validate(f, value, SaveContext(is_create=True))

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
    encryptable = True
    defaults = {"exceptDomains": [], "onlyDomains": []}

    def check_options(self, f: Field, errors: dict[str, Any]) -> None:
        check_domains(f, errors)

    def coerce(self, f: Field, raw: Any, ctx: SaveContext) -> Any:
        return as_text(raw)

    def validate(self, f: Field, value: Any, ctx: SaveContext) -> None:
        if len(value) > 255 or not _EMAIL_RE.match(value):
            raise invalid("validation_is_email", "Must be a valid email address.")
        domain = value.rsplit("@", 1)[1].lower()
        _check_domain(f, domain, "validation_email_domain_not_allowed", "Email domain is not allowed.")


class UrlType(FieldType):
    name = "url"
    encryptable = True
    defaults = {"exceptDomains": [], "onlyDomains": []}

    def check_options(self, f: Field, errors: dict[str, Any]) -> None:
        check_domains(f, errors)

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
    encryptable = True
    defaults = {"convertURLs": False, "maxSize": 0}

    def check_options(self, f: Field, errors: dict[str, Any]) -> None:
        size = f.options.get("maxSize", 0)
        _set(errors, "maxSize", first_error(min_rule(size, 0), max_rule(size, MAX_SAFE_INT)))

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

    def check_options(self, f: Field, errors: dict[str, Any]) -> None:
        mn, mx = f.options.get("min", 0), f.options.get("max", 0)
        _set(errors, "min", first_error(min_rule(mn, 1), max_rule(mn, PASSWORD_MAX_DEFAULT)))
        _set(errors, "max", first_error(min_rule(mx, mn), max_rule(mx, PASSWORD_MAX_DEFAULT)))
        cost = f.options.get("cost", 0)
        _set(errors, "cost", first_error(min_rule(cost, 4), max_rule(cost, 31)))
        _set(errors, "pattern", _regex_rule(f.options.get("pattern", "")))

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

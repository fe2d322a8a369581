"""``~`` / ``!~`` with LIKE metacharacters (``%``, ``_``, ``\\``) and quoted-text escapes, on both engines.

The reference below is written from PocketBase 0.40.6's observable behaviour (fexpr 0.6 text
unescaping, ``containsUnescapedChar`` / ``escapeUnescapedChars`` and SQLite's ``LIKE … ESCAPE
'\\'``), not from keepbase's code. ``PB_VERIFIED`` are answers of the real binary on the same
titles; the property test checks random titles and operands against the reference.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert, select

from keepbase.core.types import AuthInfo, RequestInfo
from keepbase.rules.errors import FilterError
from keepbase.store.resolver import build_filter
from tests.rules.dataset import Dataset

SUPERUSER = RequestInfo(auth=AuthInfo("pbc_3142635823", "_superusers", {"id": "su0000000000001"}))

# --------------------------------------------------------------------------- the reference

_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t"}


def unquote(body: str) -> str:
    """The value of a quoted text whose content (between the quotes) is ``body``."""
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i : i + 2]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def has_unescaped_percent(value: str) -> bool:
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            return True
    return False


def escape_specials(value: str) -> str:
    """Put a backslash before each ``\\ % _`` that has none, scanning from the end; a special
    right after (to the left of) another one is taken as already handled, as PocketBase does."""
    out: list[str] = []
    pending = False  # the character to the right needs a backslash unless this one is it
    for ch in reversed(value):
        if pending:
            if ch != "\\":
                out.append("\\")
            pending = False
        else:
            pending = ch in "\\%_"
        out.append(ch)
    if pending:
        out.append("\\")
    return "".join(reversed(out))


def pattern_for(value: str) -> str:
    return value if has_unescaped_percent(value) else "%" + escape_specials(value) + "%"


def like(text: str, pattern: str) -> bool:
    """SQLite ``text LIKE pattern ESCAPE '\\'``: ASCII-only case folding; a pattern ending in a
    lone escape matches nothing."""
    rx: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 == len(pattern):
                return False
            rx.append(_fold(pattern[i + 1]))
            i += 2
            continue
        rx.append(".*" if ch == "%" else "." if ch == "_" else _fold(ch))
        i += 1
    return re.fullmatch("".join(rx), text, re.DOTALL) is not None


def _fold(ch: str) -> str:
    if ch.isascii() and ch.isalpha():
        return f"[{ch.lower()}{ch.upper()}]"
    return re.escape(ch)


def expected(titles: list[str], body: str, negate: bool) -> list[str]:
    pattern = pattern_for(unquote(body))
    return sorted(t for t in titles if like(t, pattern) != negate)


# --------------------------------------------------------------------------- running on an engine


def load(engine: Engine, ds: Dataset, names: list[str]) -> None:
    items = ds.tables["items"]
    rows = [{"id": f"like{i:011d}", "name": n, "n": 0, "active": 0, "cat": "", "d": "", "tags": "[]",
             "users": "[]", "owner": "", "data": None, "loc": '{"lon":0,"lat":0}', "secret": "", "created": ""}
            for i, n in enumerate(names)]
    with engine.begin() as conn:
        conn.execute(delete(items))
        conn.execute(insert(items), rows)


def run(engine: Engine, ds: Dataset, expression: str) -> list[str]:
    items = ds.tables["items"]
    where = build_filter(ds.collections["items"], items, expression, SUPERUSER, ds.lookup, ds.dialect,
                         is_rule=False)
    with engine.connect() as conn:
        return sorted(conn.scalars(select(items.c.name).where(where)))


# --------------------------------------------------------------------------- verified on the binary

TITLES = ["back\\slash", "100%", "a_b", "abc", "a%b", "plain", "x\\%y", "%", "_", "\\\\double", "ab'c", "",
          "AbC", 'a"b', "a\\'b", "tab\tx", 'q\\"q', "E\nE", "xx_", "École", "ÀB"]
_ALL = sorted(TITLES)
_BACKSLASH = sorted(t for t in TITLES if "\\" in t)
PB_VERIFIED: list[tuple[str, list[str] | None]] = [  # filter → titles (None: 400)
    (r"name ~ '\'", None),
    (r"name !~ '\'", None),
    (r"name ~ '\\\'", None),
    (r"name ~ '\\'", _BACKSLASH),
    (r"name ~ '\\\\'", _BACKSLASH),
    (r"name !~ '\\'", sorted(set(TITLES) - set(_BACKSLASH))),
    (r"name = 'back\\slash'", ["back\\slash"]),
    (r"name = 'back\slash'", ["back\\slash"]),
    (r"name ~ 'back\slash'", ["back\\slash"]),
    (r"name = '\\\\double'", ["\\\\double"]),
    (r"name ~ '\\%'", ["%", "100%", "a%b", "x\\%y"]),
    (r"name ~ '\%'", ["%", "100%", "a%b", "x\\%y"]),
    (r"name ~ 'x\\\%'", ["x\\%y"]),
    (r"name ~ 'x\\%'", []),
    (r"name ~ '%'", _ALL),
    (r"name ~ '%%'", _ALL),
    (r"name ~ '_'", ["_", "a_b", "xx_"]),
    (r"name ~ '\_'", ["_", "a_b", "xx_"]),
    (r"name ~ '\\_'", ["_", "a_b", "xx_"]),
    (r"name ~ '__'", ["a_b", "xx_"]),  # escapeUnescapedChars leaves the first of two alone
    (r"name ~ 'x__'", ["xx_"]),
    (r"name ~ 'a%'", sorted(t for t in TITLES if t[:1] in ("a", "A"))),
    (r"name ~ 'a_b'", ["a_b"]),
    (r"name ~ '_%'", sorted(set(TITLES) - {""})),
    (r"name ~ '\_%'", ["_"]),
    (r"name ~ '%\_'", ["_", "xx_"]),
    (r"name ~ '%\\'", []),  # a pattern ending in a lone escape
    (r"name ~ 'a\b'", []),
    (r"name ~ 'h\\'", []),
    (r"name ~ '\\d'", ["\\\\double"]),
    (r"name ~ '\\\\d'", ["\\\\double"]),
    (r"name ~ '_\\'", _BACKSLASH),
    (r"name ~ 'b\'c'", ["ab'c"]),
    (r'name ~ "b\'c"', ["ab'c"]),
    (r"name = 'a\"b'", ['a"b']),
    (r"name = 'a\\\'b'", ["a\\'b"]),
    (r"name = 'q\\" + '"' + "q'", ['q\\"q']),
    (r"name = 'tab\tx'", ["tab\tx"]),
    (r"name = 'E\nE'", ["E\nE"]),
    (r"(name = 'back\\slash')", ["back\\slash"]),
    (r"name ~ 'é'", []),  # SQLite folds ASCII only
    (r"name ~ 'É'", ["École"]),
    (r"name ~ 'àb'", []),
    (r"name ~ 'ÀB'", ["ÀB"]),
]


@pytest.mark.parametrize(("expression", "titles"), PB_VERIFIED, ids=[f for f, _ in PB_VERIFIED])
def test_pocketbase_answers(engine_ds: tuple[Engine, Dataset], expression: str, titles: list[str] | None) -> None:
    engine, ds = engine_ds
    load(engine, ds, TITLES)
    if titles is None:
        with pytest.raises(FilterError):
            run(engine, ds, expression)
        return
    assert run(engine, ds, expression) == titles


@pytest.mark.parametrize(("expression", "titles"), [(f, t) for f, t in PB_VERIFIED if t is not None and "~" in f])
def test_reference_agrees_with_pocketbase(expression: str, titles: list[str]) -> None:
    m = re.fullmatch(r"\(?name (!?~) (['\"])(.*)\2\)?", expression, re.DOTALL)
    assert m is not None
    assert expected(TITLES, m.group(3), m.group(1) == "!~") == titles


# --------------------------------------------------------------------------- property

ALPHABET = "aAbB%_\\'\" é\tÉx"
plain_char = st.sampled_from([c for c in ALPHABET if c not in "\\'"])
escape_pair = st.sampled_from(ALPHABET + "nrt").map(lambda c: "\\" + c)
operand_body = st.lists(st.one_of(plain_char, escape_pair), max_size=6).map("".join)
titles = st.lists(st.text(alphabet=ALPHABET + "\n", max_size=6), min_size=1, max_size=6, unique=True)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(titles, operand_body, st.booleans())
def test_like_matches_the_reference(engine_ds: tuple[Engine, Dataset], names: list[str], body: str,
                                    negate: bool) -> None:
    engine, ds = engine_ds
    load(engine, ds, names)
    expression = f"name {'!~' if negate else '~'} '{body}'"
    assert run(engine, ds, expression) == expected(names, body, negate), (expression, names)


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(titles, st.text(alphabet=ALPHABET, max_size=5))
def test_field_operand_is_a_raw_pattern(engine_ds: tuple[Engine, Dataset], names: list[str], cat: str) -> None:
    """``name ~ cat`` wraps the other field's value in ``%…%`` without escaping it."""
    engine, ds = engine_ds
    load(engine, ds, names)
    items = ds.tables["items"]
    with engine.begin() as conn:
        conn.execute(items.update().values(cat=cat))
    pattern = "%" + cat + "%"
    assert run(engine, ds, "name ~ cat") == sorted(n for n in names if like(n, pattern)), (names, cat)


def test_reference_is_not_vacuous() -> None:
    assert json.dumps(expected(["a\\b", "ab"], "\\\\", False)) == json.dumps(["a\\b"])
    assert expected(["x%", "xy"], "x\\%", False) == ["x%"]


def test_postgres_folds_ascii_only_whatever_the_collation(engine_ds: tuple[Engine, Dataset]) -> None:
    """With an ICU collation ILIKE alone would fold 'é' to 'É'; SQLite (and PocketBase) don't."""
    engine, ds = engine_ds
    if ds.dialect != "postgresql":
        pytest.skip("PostgreSQL only")
    load(engine, ds, TITLES)
    with engine.begin() as conn:
        conn.exec_driver_sql('ALTER TABLE items ALTER COLUMN name TYPE text COLLATE "und-x-icu"')
    try:
        assert run(engine, ds, "name ~ 'é'") == []
        assert run(engine, ds, "name ~ 'É'") == ["École"]
        assert run(engine, ds, "name ~ 'abc'") == ["AbC", "abc"]
        assert "École" in run(engine, ds, "name !~ 'é'")
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql('ALTER TABLE items ALTER COLUMN name TYPE text COLLATE "default"')

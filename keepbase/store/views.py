"""View collections: field inference from a view query, as PocketBase 0.40 infers it.

PocketBase reads the outermost SELECT list itself (``core/view.go``): the query is split into
tokens that respect quotes and parentheses, every column must be ``expr``, ``expr alias`` or
``expr AS alias`` (anything longer → ``invalid identifier parts [...]``, so a computed column
needs parentheses: ``(views * 2) AS doubled``). Each column the database reports then becomes:

* ``id`` → the text primary key;
* ``count(…)`` → number (onlyInt), ``total(…)`` → number;
* ``CAST(… AS real|decimal|numeric)`` → number, ``AS int|integer`` → number (onlyInt),
  ``AS text`` → text, ``AS bool|boolean`` → bool;
* ``[table.]column`` of a collection named in FROM/JOIN → a copy of that field (id ``_clone_…``),
  or a relation to that collection when the column is its ``id``;
* anything else → json (maxSize 1): literals, arithmetic, other aggregates, window functions.
"""

from __future__ import annotations

import copy
import re
import zlib
from dataclasses import dataclass

from sqlalchemy import Connection

from ..core.errors import FieldError, ValidationError
from .builtin import mk_field
from .models import Collection, Field

# Go's RE2 ``\s`` is ASCII whitespace without \v; spelled out so Python's wider ``\s`` is not used
_WS = r"[\t\n\f\r ]"
_JOIN_RE = re.compile(
    _WS + r"+(full" + _WS + r"+outer" + _WS + r"+join|left" + _WS + r"+outer" + _WS + r"+join|right" + _WS
    + r"+outer" + _WS + r"+join|full" + _WS + r"+join|cross" + _WS + r"+join|inner" + _WS + r"+join|outer"
    + _WS + r"+join|left" + _WS + r"+join|right" + _WS + r"+join|join)" + _WS + r"+?", re.IGNORECASE | re.MULTILINE)
_DISCARD_RE = re.compile(_WS + r"+(where|group" + _WS + r"+by|having|order|limit|with)" + _WS + r"+?",
                         re.IGNORECASE | re.MULTILINE)
_COMMENTS_RE = re.compile(r"(/\*[\s\S]*?\*/)|(--.+$)", re.MULTILINE)
_CAST_RE = re.compile(r"^cast" + _WS + r"*\(.*" + _WS + r"+as" + _WS + r"+(\w+)" + _WS + r"*\)$",
                      re.IGNORECASE | re.DOTALL)
_GO_WHITESPACE = "\t\n\v\f\r \x85\xa0"  # the tokenizer's trim set, minus its separators
_QUOTES = "'\"`"


class ViewQueryError(Exception):
    """The SELECT list cannot be read (worded as PocketBase words it)."""


@dataclass(frozen=True)
class _Identifier:
    original: str
    alias: str


def _tokens(text: str, separators: str, keep_separator: bool = False) -> list[str]:
    """PocketBase's ``tools/tokenizer``: split on ``separators`` outside quotes and parentheses;
    tokens are trimmed of whitespace that is not a separator; empty tokens are dropped."""
    cutset = "".join(c for c in _GO_WHITESPACE if c not in separators)
    out: list[str] = []
    buf: list[str] = []
    depth = 0
    quote = ""
    prev = ""
    i = 0
    while i <= len(text):
        ch = text[i] if i < len(text) else ""
        i += 1
        if ch == "" or (ch in separators and depth == 0 and not quote):
            if ch and keep_separator:
                buf.append(ch)
            token = "".join(buf).strip(cutset)
            if ch == "" and (depth > 0 or quote):
                raise ViewQueryError(f'unbalanced parenthesis or quoted expression: "{"".join(buf)}"')
            if token:
                out.append(token)
            buf, depth, quote, prev = [], 0, "", ""
            continue
        if prev != "\\":
            if ch == "(" and not quote:
                depth += 1
            elif ch == ")" and depth > 0 and not quote:
                depth -= 1
            elif ch in _QUOTES:
                if quote == ch:
                    quote = ""
                elif not quote:
                    quote = ch
        prev = ch
        buf.append(ch)
    return out


def _trim_identifier(raw: str, extra: str = "") -> str:
    return ".".join(part.strip("`\"[];" + extra) for part in raw.split("."))


def _identifier(parts: list[str]) -> _Identifier:
    if len(parts) == 3:
        if parts[1].lower() != "as":
            raise ViewQueryError(f'invalid identifier part - expected "as", got {parts[1]}')
        original, alias = parts[0], parts[2]
    elif len(parts) == 2:
        original, alias = parts
    elif len(parts) == 1:
        original, alias = parts[0], parts[0].split(".")[-1]
    else:
        raise ViewQueryError(f"invalid identifier parts [{' '.join(parts)}]")
    return _Identifier(_trim_identifier(original), _trim_identifier(alias, "'"))


def _identifiers(raw: str) -> list[_Identifier]:
    return [_identifier(_tokens(item, " \n\t")) for item in _tokens(raw, ",")]


def parse_select(query: str) -> tuple[list[_Identifier], list[_Identifier]]:
    """The outermost SELECT's columns and the FROM/JOIN tables, read as PocketBase reads them."""
    text = query.strip().strip(";")
    text = _COMMENTS_RE.sub(" ", text)
    text = _JOIN_RE.sub(" __pb_join__ ", text)
    text = _DISCARD_RE.sub(" __pb_discard__ ", text)
    parts: dict[str, list[str]] = {"select": [], "from": [], "join": []}
    active: list[str] | None = None
    part_type = ""
    skip = False
    for token in _tokens(text, ", \n\t", keep_separator=True):
        word = token.strip().lower()
        if word in ("select", "from"):
            skip, part_type, active = False, word, parts[word]
        elif word == "distinct":
            continue
        elif word == "__pb_join__":
            skip = False
            if part_type == "join":
                parts["join"].append(",")
            part_type, active = "join", parts["join"]
        elif word == "__pb_discard__":
            skip = True
        else:
            if part_type == "join" and word == "on":
                skip = True
            if not skip and active is not None:
                active.append(" " + token)
    columns = _identifiers("".join(parts["select"]))
    tables = _identifiers("".join(parts["from"])) + _identifiers("".join(parts["join"]))
    return columns, tables


def _view_error(message: str, fields_code: str = "validation_required") -> ValidationError:
    fields = (FieldError("validation_missing_primary_key", 'Missing or invalid "id" PK field.')
              if fields_code == "pk" else FieldError("validation_required", "Cannot be blank."))
    return ValidationError("", {"fields": fields,
                                "viewQuery": FieldError("validation_invalid_view_query", f"Invalid query - {message}")})


def db_error_detail(exc: BaseException) -> str:
    """The first line of a driver error. SQLite's are worded as PocketBase's (modernc) driver
    words them: ``SQL logic error: no such table: main.x (1)``; PostgreSQL's are left as they are."""
    orig = getattr(exc, "orig", exc)
    detail = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if getattr(orig, "sqlite_errorcode", None) == 1:
        detail = re.sub(r"^no such table: (?!\w+\.)", "no such table: main.", detail)
        detail = f"SQL logic error: {detail} (1)"
    return detail


def infer_view_fields(conn: Connection, c: Collection, collections: list[Collection]) -> list[Field]:
    query = c.options.get("viewQuery", "").strip().rstrip(";")
    if not query:
        raise _view_error("empty query")
    try:
        suggested = _suggested_fields(query, collections)
    except ViewQueryError as exc:
        raise _view_error(str(exc)) from exc
    if len(_tokens(query, ";")) > 1:  # a ';' outside quotes and parentheses
        raise _view_error("multiple statements are not supported")
    try:
        with conn.begin_nested():
            # The view query is SQL a superuser wrote (as in PocketBase); nothing from a client.
            result = conn.exec_driver_sql(f"SELECT * FROM ({query}) AS _kb_view LIMIT 0")  # noqa: S608
            names = [d[0] for d in result.cursor.description or []] if result.cursor else []
            result.close()
    except Exception as exc:  # the database's own message, like PocketBase's "Invalid query - ..."
        raise _view_error(db_error_detail(exc)) from exc
    if "id" not in names:
        raise _view_error("missing required id column (you can use `(ROW_NUMBER() OVER()) as id` if you "
                          "don't have one)", "pk")
    return [suggested[name] if name in suggested else _json_field(name) for name in names]


def _json_field(name: str) -> Field:
    return mk_field(name, "json", maxSize=1)


def _suggested_fields(query: str, collections: list[Collection]) -> dict[str, Field]:
    columns, tables = parse_select(query)
    by_name = {o.name: o for o in collections}
    sources = {t.alias: by_name[t.original] for t in tables if "(" not in t.alias and t.original in by_name}
    main = sources.get(tables[0].alias) if tables else None
    fields: dict[str, Field] = {}
    for col in columns:
        fields[col.alias] = _suggest(col, sources, main)
    return fields


def _suggest(col: _Identifier, sources: dict[str, Collection], main: Collection | None) -> Field:
    name, low = col.alias, col.original.lower()
    if name == "id":
        f = mk_field("id", "text", system=True, primaryKey=True, required=True, pattern="^[a-z0-9]+$")
        f.options["autogeneratePattern"] = ""
        return f
    if low.startswith(("count(", "total(")):  # count(...) is an integer, total(...) a float
        return mk_field(name, "number", onlyInt=low.startswith("count("))
    cast = _CAST_RE.match(low)
    if cast:
        kind = cast.group(1)
        if kind in ("real", "decimal", "numeric"):
            return mk_field(name, "number")
        if kind in ("int", "integer"):
            return mk_field(name, "number", onlyInt=True)
        if kind == "text":
            return mk_field(name, "text")
        if kind in ("bool", "boolean"):
            return mk_field(name, "bool")
    parts = col.original.split(".")
    src = sources.get(parts[0]) if len(parts) == 2 else main
    field_name = parts[1] if len(parts) == 2 else parts[0]
    if src is None:
        return _json_field(name)
    if field_name == "*":
        raise ViewQueryError("dynamic column names are not supported")
    original = next((f for f in src.fields if f.name.lower() == field_name.lower()), None)
    if original is None:
        return _json_field(name)
    if field_name.lower() == "id":  # an id reference: a relation to that collection
        return mk_field(name, "relation", maxSelect=1, collectionId=src.id)
    f = copy.deepcopy(original)
    f.id = "_clone_" + str(zlib.crc32((src.name + name).encode()))
    f.name = name
    f.system = False
    return f

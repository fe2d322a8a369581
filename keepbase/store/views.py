"""View collections: field inference from a view query (as PocketBase infers them).

Columns that come straight from a collection copy that field's definition (id ``_clone_…``);
``count(...)`` → number; ``CAST(x AS real|decimal|numeric)`` → number, ``AS int|integer`` →
number with onlyInt, ``AS text`` → text, ``AS bool|boolean`` → bool; anything else → json.
"""

from __future__ import annotations

import copy
import re
import zlib

from sqlalchemy import Connection

from ..core.errors import FieldError, ValidationError
from .builtin import mk_field
from .models import Collection, Field

_FROM_RE = re.compile(r"\b(?:from|join)\s+[`\"\[]?(\w+)", re.IGNORECASE)
_COUNT_RE = re.compile(r"\b(count|total)\s*\([^)]*\)\s+(?:as\s+)?[`\"]?(\w+)", re.IGNORECASE)
_CAST_RE = re.compile(r"cast\s*\(.+?\s+as\s+(\w+)\s*\)\s+(?:as\s+)?[`\"]?(\w+)", re.IGNORECASE)


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
    if ";" in query:
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
    sources = [o for o in collections if o.name.lower() in {m.lower() for m in _FROM_RE.findall(query)}]
    counts = {alias.lower(): fn.lower() for fn, alias in _COUNT_RE.findall(query)}
    casts = {alias.lower(): typ.lower() for typ, alias in _CAST_RE.findall(query)}
    fields: list[Field] = []
    for name in names:
        if name == "id":
            f = mk_field("id", "text", system=True, primaryKey=True, required=True, pattern="^[a-z0-9]+$")
            f.options["autogeneratePattern"] = ""
            fields.append(f)
            continue
        f = _infer_one(name, counts, casts, sources)
        fields.append(f)
    return fields


def _infer_one(name: str, counts: dict[str, str], casts: dict[str, str], sources: list[Collection]) -> Field:
    low = name.lower()
    if low in counts:  # count(...) is an integer, total(...) a float
        return mk_field(name, "number", onlyInt=counts[low] == "count")
    if low in casts:
        t = casts[low]
        if t in ("real", "decimal", "numeric", "float", "double"):
            return mk_field(name, "number")
        if t in ("int", "integer", "bigint"):
            return mk_field(name, "number", onlyInt=True)
        if t == "text":
            return mk_field(name, "text")
        if t in ("bool", "boolean"):
            return mk_field(name, "bool")
    for src in sources:
        original = src.get_field(name)
        if original is not None and original.type != "password":
            f = copy.deepcopy(original)
            f.id = "_clone_" + str(zlib.crc32((src.name + name).encode()))
            f.system = False
            return f
    return mk_field(name, "json", maxSize=1)

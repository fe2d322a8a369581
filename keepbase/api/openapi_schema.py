"""Collections → JSON Schema (2020-12, as OpenAPI 3.1 uses it): records, request bodies, envelopes.

Two views of each field, on purpose:

* **responses** describe the *shape* (types, single value or array): stored values may predate a
  later change of a field's constraints (PocketBase does not revalidate old records), and ``fields=``
  may drop any key, so record schemas list no ``required`` keys and carry no min/max/enum;
* **request bodies** describe what the server *accepts*: lengths, patterns, ranges, select values,
  ``required`` fields, with the empty value allowed where a field is not required (an empty value
  skips every other check, as in PocketBase).

Hidden fields are left out, except for superusers (who receive them); the auth ``password`` and
``tokenKey`` are never output.
"""

from __future__ import annotations

import re
from typing import Any

from ..store.fields.json_types import JSON_MAX_DEFAULT
from ..store.fields.textual import EDITOR_MAX_DEFAULT, PASSWORD_MAX_DEFAULT, TEXT_MAX_DEFAULT
from ..store.models import Collection, Field

Schema = dict[str, Any]

DATETIME_PATTERN = r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z)?$"
DATETIME: Schema = {"type": "string", "pattern": DATETIME_PATTERN,
                    "description": "UTC, `2006-01-02 15:04:05.000Z`; `\"\"` when unset."}
BINARY: Schema = {"type": "string", "contentMediaType": "application/octet-stream"}
ANY: Schema = {}
NEVER_OUTPUT = frozenset({"password", "tokenKey"})  # the auth collection's secrets


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def component_name(c: Collection, suffix: str) -> str:
    """``posts.Record``: collection names are ``\\w+``; anything outside OpenAPI's key charset
    (a non-ASCII letter) becomes ``_``, with the id added so two names cannot collide."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", c.name)
    return f"{safe}.{suffix}" if safe == c.name else f"{safe}_{c.id}.{suffix}"


def _portable_pattern(pattern: str) -> str | None:
    """A Go regex usable as an ECMA-262 ``pattern``: the common subset only (no inline flags,
    no ``\\A``/``\\z``); others are described in words instead."""
    if not pattern or "(?" in pattern or re.search(r"\\[AzZpPQE]", pattern):
        return None
    try:
        re.compile(pattern)
    except re.error:
        return None
    return pattern


def _opt(f: Field, key: str, default: Any = 0) -> Any:
    value = f.options.get(key)
    return default if value is None else value


# --------------------------------------------------------------------------- responses
def output_schema(f: Field) -> Schema:
    """The JSON a record carries for ``f`` (shape only, see the module docstring)."""
    t = f.type
    if t in ("text", "editor", "email", "url", "password"):
        s: Schema = {"type": "string"}
        if t == "email":
            s["description"] = "Email address (auth `email` is sent only when visible to the caller)."
    elif t == "number":
        s = {"type": "number"}
    elif t == "bool":
        s = {"type": "boolean"}
    elif t in ("date", "autodate"):
        s = dict(DATETIME)
    elif t == "select":
        values = ", ".join(str(v) for v in _opt(f, "values", []))
        item: Schema = {"type": "string", "description": f"One of: {values}." if values else ""}
        s = {"type": "array", "items": item} if f.multiple else item
    elif t == "relation":
        item = {"type": "string", "description": f"Record id in collection {_opt(f, 'collectionId', '')}."}
        s = {"type": "array", "items": item} if f.multiple else item
    elif t == "file":
        item = {"type": "string", "description": "Stored file name (download: /api/files/…)."}
        s = {"type": "array", "items": item} if f.multiple else item
    elif t == "geoPoint":
        s = {"type": "object", "properties": {"lon": {"type": "number"}, "lat": {"type": "number"}},
             "required": ["lon", "lat"]}
    else:  # json, and any type added later: any JSON value
        s = dict(ANY)
    help_text = str(f.options.get("help") or "")
    if help_text:
        s["description"] = help_text
    return s


def visible_fields(c: Collection, superuser: bool) -> list[Field]:
    return [f for f in c.fields
            if not (c.is_auth and f.name in NEVER_OUTPUT) and (superuser or not f.hidden)]


def record_schema(c: Collection, superuser: bool) -> Schema:
    props: dict[str, Schema] = {
        "collectionId": {"type": "string", "const": c.id},
        "collectionName": {"type": "string", "const": c.name},
    }
    for f in visible_fields(c, superuser):
        props[f.name] = output_schema(f)
    props["expand"] = {"type": "object", "description": "Related records asked for with `expand`."}
    return {"type": "object", "title": f"{c.name} record", "properties": dict(sorted(props.items())),
            "description": "Every key is present unless `fields` projects the record."}


def list_schema(item: Schema) -> Schema:
    return {"type": "object", "required": ["items", "page", "perPage", "totalItems", "totalPages"],
            "properties": {"items": {"type": "array", "items": item},
                           "page": {"type": "integer", "minimum": 1},
                           "perPage": {"type": "integer", "minimum": 1, "maximum": 1000},
                           "totalItems": {"type": "integer", "minimum": -1, "description": "-1 with skipTotal."},
                           "totalPages": {"type": "integer", "minimum": -1, "description": "-1 with skipTotal."}}}


# --------------------------------------------------------------------------- request bodies
def _or_empty(s: Schema, empty: Any, required: bool) -> Schema:
    """A value meeting ``s``, or (when the field is not required) the empty value."""
    if required:
        return s
    return {"anyOf": [s, {"const": empty}]}


def input_schema(f: Field) -> Schema | None:
    """What a create or update may send for ``f`` (JSON), or None for fields the server sets."""
    t, required = f.type, f.required
    if t == "autodate":
        return None
    if t in ("text", "password"):
        default_max = PASSWORD_MAX_DEFAULT if t == "password" else TEXT_MAX_DEFAULT
        s: Schema = {"type": "string", "maxLength": int(_opt(f, "max")) or default_max}
        if int(_opt(f, "min")):
            s["minLength"] = int(_opt(f, "min"))
        pattern = _portable_pattern(str(_opt(f, "pattern", "")))
        if pattern:
            s["pattern"] = pattern
        elif _opt(f, "pattern", ""):
            s["description"] = f"Must match the RE2 pattern `{_opt(f, 'pattern', '')}`."
        if len(s) == 2 and not required:  # only the length bound: "" already meets it
            return s
        return _or_empty(s, "", required and not _opt(f, "autogeneratePattern", ""))
    if t in ("email", "url"):
        s = {"type": "string", "format": "email" if t == "email" else "uri"}
        for key in ("onlyDomains", "exceptDomains"):
            if _opt(f, key, []):
                s.setdefault("description", "")
                s["description"] += f"{key}: {', '.join(map(str, _opt(f, key, [])))}. "
        return _or_empty(s, "", required)
    if t == "editor":
        limit = int(_opt(f, "maxSize")) or EDITOR_MAX_DEFAULT
        return {"type": "string", "maxLength": limit, "description": f"HTML, at most {limit} bytes."}
    if t == "number":
        s = {"type": "integer" if _opt(f, "onlyInt", False) else "number"}
        if _opt(f, "min", None) is not None:
            s["minimum"] = _opt(f, "min")
        if _opt(f, "max", None) is not None:
            s["maximum"] = _opt(f, "max")
        if required:  # 0 is the empty value
            return {**s, "not": {"const": 0}}
        return _or_empty(s, 0, False) if len(s) > 1 else s
    if t == "bool":
        return {"type": "boolean", "const": True} if required else {"type": "boolean"}
    if t == "date":
        return {"type": "string", "description": "A datetime (`2006-01-02 15:04:05.000Z`, RFC 3339 or a "
                                                  "plain date); anything unparsable clears the value."}
    if t == "select":
        values = [str(v) for v in _opt(f, "values", [])]
        item: Schema = {"type": "string", "enum": values}
        if f.multiple:
            return _many(item, required, 1 if required else 0, int(_opt(f, "maxSelect", 1)))
        return {"type": "string", "enum": values if required else [*values, ""]}
    if t == "relation":
        item = {"type": "string", "minLength": 1, "description": "Record id."}
        if f.multiple:
            low = max(int(_opt(f, "minSelect")), 1 if required else 0)
            return _many(item, required, low, int(_opt(f, "maxSelect", 1)))
        return _or_empty(item, "", required)
    if t == "file":
        item = {"type": "string", "description": "Name of a file the record already has (upload new "
                                                 "files with multipart/form-data)."}
        return {"type": "array", "items": item} if f.multiple else item
    if t == "geoPoint":
        return {"type": "object", "properties": {"lon": {"type": "number", "minimum": -180, "maximum": 180},
                                                 "lat": {"type": "number", "minimum": -90, "maximum": 90}}}
    limit = int(_opt(f, "maxSize")) or JSON_MAX_DEFAULT
    return {"description": f"Any JSON value, at most {limit} bytes encoded."}


def _many(item: Schema, required: bool, low: int, high: int) -> Schema:
    s: Schema = {"type": "array", "items": item, "maxItems": high}
    if low:
        s["minItems"] = low
    return s


def _form_schema(f: Field, json_schema: Schema) -> Schema:
    """multipart/form-data: files are binary parts (repeat the part for several)."""
    if f.type == "file":
        return {"type": "array", "items": BINARY, "maxItems": int(_opt(f, "maxSelect", 1))} if f.multiple \
            else BINARY
    return json_schema


def _modifiers(f: Field, form: bool) -> dict[str, Schema]:
    """PocketBase's update modifiers (``views+``, ``+tags``, ``tags-``, ``slug:autogenerate``)."""
    n = f.name
    if f.type == "number":
        return {f"{n}+": {"type": "number", "description": "Add to the value."},
                f"{n}-": {"type": "number", "description": "Subtract from the value."}}
    if f.type in ("select", "relation") or (f.type == "file" and f.multiple):
        if f.type == "file":
            new: Schema = {"type": "array", "items": BINARY} if form else {"type": "array", "items": {"type": "string"}}
        else:
            new = {"type": "array", "items": {"type": "string"}}
        out = {f"+{n}": {**new, "description": "Prepend values."}, f"{n}+": {**new, "description": "Append values."}}
        out[f"{n}-"] = {"type": "array", "items": {"type": "string"}, "description": "Remove values."}
        return out
    if f.type == "text" and _opt(f, "autogeneratePattern", ""):
        return {f"{n}:autogenerate": {"type": "string", "description": "Prefix for a generated value."}}
    return {}


def body_schema(c: Collection, superuser: bool, *, update: bool, form: bool) -> Schema:
    """The create or update body of ``c`` as JSON or as a multipart form."""
    props: dict[str, Schema] = {}
    required: list[str] = []
    for f in c.fields:
        if (c.is_auth and f.name in NEVER_OUTPUT) or (f.hidden and not superuser):
            continue  # the server drops hidden fields sent by anyone but superusers
        s = input_schema(f)
        if s is None:
            continue
        props[f.name] = _form_schema(f, s) if form else s
        auto = f.type == "text" and _opt(f, "autogeneratePattern", "")
        if f.required and not update and not auto:
            required.append(f.name)
        if update:
            props.update(_modifiers(f, form))
    if c.is_auth:
        pw = c.get_field("password")
        low = int(_opt(pw, "min")) if pw else 0
        high = (int(_opt(pw, "max")) if pw else 0) or PASSWORD_MAX_DEFAULT
        props["password"] = {"type": "string", "minLength": low, "maxLength": high}
        props["passwordConfirm"] = {"type": "string", "description": "Must equal `password`."}
        if update:
            props["oldPassword"] = {"type": "string", "description": "Needed when the owner changes the password."}
        else:
            required += ["password", "passwordConfirm"]
    if form:
        props["@jsonPayload"] = {"type": "string", "contentMediaType": "application/json",
                                 "description": "A JSON object merged over the other parts."}
    out: Schema = {"type": "object", "properties": props}
    if required:
        out["required"] = sorted(set(required))
    return out

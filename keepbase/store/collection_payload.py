"""Turn a submitted collection payload into the Collection a create or update would save.

This mirrors what PocketBase does before it validates anything:

* the JSON is decoded into Go types: a value of the wrong JSON type (``"min": "x"``,
  ``"required": "yes"``, ``"min": 1.5`` for an integer) fails the whole request with
  ``Failed to load the submitted data due to invalid formatting.``; ``null`` means the Go zero
  value; an unparseable date setting becomes ``""``;
* a submitted ``fields`` list replaces the stored one wholesale, each field starting from its
  type's zero values (nothing is inherited from the stored field with the same id or name);
  fields repeated in the list replace the earlier one (``FieldsList.add``);
* system fields are then enforced by name (``initDefaultFields``): an ``id`` text field is made
  the required, visible primary key (a default pattern when none is given), a missing one is
  prepended; auth collections get ``password``, ``tokenKey``, ``email``, ``emailVisibility`` and
  ``verified`` (a field of that name but another type is replaced in place) plus unique indexes
  on ``tokenKey`` and ``email``;
* a generated collection id that is taken gets a numeric suffix (``updateGeneratedIdIfExists``).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from ..core.clock import format_dt, parse_datetime
from ..core.errors import BadRequestError
from ..core.ids import ALNUM_LOWER, collection_id, field_id, random_string
from . import builtin
from .fields import get_type
from .indexes import IndexParseError, parse_index
from .models import AUTH_RULE_NAMES, RULE_NAMES, Collection, Field

FORMAT_ERROR = "Failed to load the submitted data due to invalid formatting."
DEFAULT_ID_PATTERN = "^[a-z0-9]+$"

_COMMON_KINDS = {"id": "str", "name": "str", "system": "bool", "hidden": "bool", "presentable": "bool"}
_GO_TYPES = {"str": "string", "bool": "bool", "int": "int", "int64": "int64", "strlist": "[]string",
             "number": "float64", "date": "string"}

# the Go types of the auth options (nested objects merge key by key onto the stored ones)
_TEMPLATE = {"": "core.EmailTemplate", "subject": "str", "body": "str"}
_TOKEN = {"": "core.TokenConfig", "secret": "str", "duration": "int64"}
AUTH_OPTION_KINDS: dict[str, dict[str, Any]] = {
    "authAlert": {"": "core.AuthAlertConfig", "enabled": "bool", "emailTemplate": _TEMPLATE},
    "oauth2": {"": "core.OAuth2Config", "providers": "any", "enabled": "bool",
               "mappedFields": {"": "core.OAuth2KnownFields", "id": "str", "name": "str", "username": "str",
                                "avatarURL": "str"}},
    "passwordAuth": {"": "core.PasswordAuthConfig", "enabled": "bool", "identityFields": "strlist"},
    "mfa": {"": "core.MFAConfig", "enabled": "bool", "duration": "int64", "rule": "str"},
    "otp": {"": "core.OTPConfig", "enabled": "bool", "duration": "int64", "length": "int",
            "emailTemplate": _TEMPLATE},
    **{key: _TOKEN for key in builtin.TOKEN_KEYS},
    # keepbase's: per-account failed sign-in limit (auth.attempts); stored and returned once submitted
    "accountLimit": {"": "keepbase.AccountLimit", "maxFailures": "int", "duration": "int64"},
    **{key: _TEMPLATE for key in ("verificationTemplate", "resetPasswordTemplate", "confirmEmailChangeTemplate")},
}


class FormatError(BadRequestError):
    """A value of the wrong JSON type; ``detail`` is Go's ``encoding/json`` error for it (the
    import endpoint quotes it)."""

    def __init__(self, detail: str) -> None:
        super().__init__(FORMAT_ERROR)
        self.detail = detail


def _json_kind(raw: Any) -> str:
    if isinstance(raw, bool):
        return "boolean"
    if isinstance(raw, int | float):
        return "number"
    if isinstance(raw, str):
        return "string"
    return "array" if isinstance(raw, list) else "object"


def type_error(raw: Any, go_type: str, path: str) -> FormatError:
    kind, why = _json_kind(raw), ""
    if kind == "number" and go_type in ("int", "int64"):  # strconv.ParseInt's complaint about it
        kind, why = f"number {raw}", ": invalid syntax"
    return FormatError(f'json: cannot unmarshal JSON {kind} into Go {go_type} within "{path}"{why}')


def decode(kind: str, raw: Any, default: Any, path: str = "") -> Any:
    """``raw`` decoded as Go's ``encoding/json`` would into a value of ``kind``."""
    if raw is None:
        return copy.deepcopy(default)
    if kind == "any":
        return raw
    if kind == "str" and isinstance(raw, str):
        return raw
    if kind == "bool" and isinstance(raw, bool):
        return raw
    if kind in ("int", "int64") and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if kind == "number" and isinstance(raw, int | float) and not isinstance(raw, bool):
        return raw
    if kind == "strlist" and isinstance(raw, list):
        for i, v in enumerate(raw):
            if v is not None and not isinstance(v, str):
                raise type_error(v, "string", f"{path}/{i}")
        return ["" if v is None else v for v in raw]
    if kind == "date" and isinstance(raw, str):
        when = parse_datetime(raw) if raw else None
        return format_dt(when) if when is not None else ""
    raise type_error(raw, _GO_TYPES.get(kind, kind), path)


# --------------------------------------------------------------------------- fields


def load_field(item: Any, index: int = 0) -> Field:
    """One submitted field object as a fresh field of its type."""
    where = f'json: cannot unmarshal JSON object into Go core.fieldWithType within "/fields/{index}": '
    if not isinstance(item, dict):
        raise FormatError(f'json: cannot unmarshal JSON {_json_kind(item)} into Go core.fieldWithType '
                          f'within "/fields/{index}"')
    ftype = item.get("type")
    handler = get_type(ftype) if isinstance(ftype, str) else None
    if handler is None:
        raw = orjson.dumps(item).decode()
        raise FormatError(f"{where}missing or unknown field type in {raw}")
    try:
        common = {key: decode(kind, item.get(key), "" if kind == "str" else False, f"/{key}")
                  for key, kind in _COMMON_KINDS.items()}
        options = handler.option_defaults()
        for key, default in list(options.items()):
            if key in item:
                options[key] = decode(handler.option_kind(key), item[key], default, f"/{key}")
        if decode("bool", item.get("encrypted"), False, "/encrypted"):  # keepbase's own option (docs/security.md)
            options["encrypted"] = True  # kept (and echoed) only when on, so other fields look as in PocketBase
    except FormatError as exc:
        raise FormatError(f"{where}failed to unmarshal field: {exc.detail}") from None
    return Field(id=common["id"], name=common["name"], type=str(ftype), system=common["system"],
                 hidden=common["hidden"], presentable=common["presentable"], options=options)


def add_field(fields: list[Field], new: Field, pos: int = -1) -> None:
    """PocketBase's ``FieldsList.add``: a field with an id replaces the one with that id; a field
    without one gets ``<type><crc32(name)>`` (suffixed 2, 3… when taken) and replaces the field
    of the same name, keeping that field's id. Otherwise it is inserted at ``pos`` (-1: appended)."""
    by_name = not new.id
    if by_name:
        base = candidate = field_id(new.type, new.name)
        for n in range(2, 1000):
            if all(f.id != candidate for f in fields):
                break
            candidate = f"{base}{n}"
        new.id = candidate
    for i, f in enumerate(fields):
        if (by_name and new.name and f.name == new.name) or (not by_name and f.id == new.id):
            if by_name:
                new.id = f.id
            fields[i] = new
            return
    fields.insert(len(fields) if pos < 0 else pos, new)


def fields_list(fields: list[Field]) -> list[Field]:
    out: list[Field] = []
    for f in fields:
        add_field(out, f)
    return out


def _fields_from_payload(payload: dict[str, Any], old: Collection | None) -> list[Field]:
    if "fields" not in payload:
        return [copy.deepcopy(f) for f in old.fields] if old else []
    raw = payload["fields"]
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise type_error(raw, "[]core.fieldWithType", "/fields")
    return fields_list([load_field(item, i) for i, item in enumerate(raw)])


def _system_field(c: Collection, name: str, ftype: str) -> Field | None:
    f = c.get_field(name)
    return f if f is not None and f.type == ftype else None


def init_default_fields(c: Collection) -> None:
    """PocketBase's ``initDefaultFields``: system fields enforced or added by name."""
    if c.type == "view":
        return
    id_field = _system_field(c, "id", "text")
    if id_field is None:
        c.fields = fields_list([builtin.id_field(), *c.fields])
    else:
        id_field.system = True
        id_field.hidden = False
        id_field.options.update(required=True, primaryKey=True)
        if not id_field.options.get("pattern"):
            id_field.options["pattern"] = DEFAULT_ID_PATTERN
    if c.type != "auth":
        return
    for default in builtin.auth_system_fields():
        existing = _system_field(c, default.name, default.type)
        if existing is None:
            default.id = ""  # added by name: replaces a same-named field of another type in place
            add_field(c.fields, default)
            continue
        existing.system = True
        if default.name in ("password", "tokenKey"):
            existing.hidden = True
            existing.options["required"] = True
        elif default.name == "email":
            existing.hidden = False
    # named after the default id, even when an explicit one is given (random without a name)
    suffix = collection_id(c.type, c.name) if c.name else random_string(10, ALNUM_LOWER)
    for col in ("tokenKey", "email"):
        if not has_unique_index(c.indexes, col):
            c.indexes.append(builtin.auth_index(col, c.name, suffix))


def has_unique_index(indexes: list[str], column: str) -> bool:
    """``dbutils.FindSingleColumnUniqueIndex``."""
    for sql in indexes:
        try:
            parsed = parse_index(sql)
        except IndexParseError:
            continue
        if parsed.unique and len(parsed.columns) == 1 and parsed.columns[0].name.lower() == column.lower():
            return True
    return False


# --------------------------------------------------------------------------- options


def _merge_typed(old: dict[str, Any], new: Any, kinds: dict[str, Any], path: str) -> dict[str, Any]:
    if not isinstance(new, dict):
        raise type_error(new, kinds[""], path)
    out = copy.deepcopy(old)
    for key, value in new.items():
        kind = kinds.get(key) if key else None
        if kind is None:
            continue  # unknown keys are ignored, as Go ignores them
        if isinstance(kind, dict):
            out[key] = _merge_typed(out.get(key) or {}, {} if value is None else value, kind, f"{path}/{key}")
        else:
            out[key] = decode(kind, value, _zero(kind), f"{path}/{key}")
    return out


def _zero(kind: str) -> Any:
    return {"str": "", "bool": False, "int": 0, "int64": 0, "strlist": [], "any": None}.get(kind)


def collection_from_payload(payload: dict[str, Any], old: Collection | None, now: str,
                            taken_ids: set[str] | None = None) -> Collection:
    """Build the collection a create (old=None) or update would save. Raises 400 on bad shapes.

    ``taken_ids``: the ids of the other collections (a generated id is suffixed past them)."""
    ctype = decode("str", payload.get("type"), old.type if old else "", "/type") or "base"
    name = decode("str", payload.get("name"), old.name if old else "", "/name")
    explicit_id = decode("str", payload.get("id"), "", "/id")
    system = decode("bool", payload.get("system"), old.system if old else False, "/system")
    if old:
        cid = old.id
    elif explicit_id:
        cid = explicit_id
    else:
        cid = generated = collection_id(ctype, name)
        for n in range(2, 1000):
            if cid not in (taken_ids or set()):
                break
            cid = f"{generated}{n}"
    c = Collection(id=cid, name=name, type=ctype, system=system,
                   created=old.created if old else now, updated=now)
    c.fields = _fields_from_payload(payload, old)
    indexes = payload.get("indexes", old.indexes if old else [])
    if indexes is None:
        indexes = []
    if not isinstance(indexes, list):
        raise type_error(indexes, "types.JSONArray[string]", "/indexes")
    c.indexes = decode("strlist", indexes, [], "/indexes")
    for r in RULE_NAMES + (AUTH_RULE_NAMES if ctype == "auth" else ()):
        default = "" if r == "authRule" else None
        value = payload[r] if r in payload else (old.rules.get(r, default) if old else default)
        if value is not None and not isinstance(value, str):
            raise type_error(value, "string", f"/{r}")
        c.rules[r] = value
    if ctype == "auth":
        opts = old.options if old and old.type == "auth" else builtin.auth_option_defaults()
        for key, kinds in AUTH_OPTION_KINDS.items():
            if key in payload:
                value = {} if payload[key] is None else payload[key]
                opts = {**opts, key: _merge_typed(opts.get(key) or {}, value, kinds, f"/{key}")}
        if "enumerationSafe" in payload:  # keepbase's opt-in (auth.account); present only when true
            opts = {k: v for k, v in opts.items() if k != "enumerationSafe"}
            if decode("bool", payload["enumerationSafe"], False, "/enumerationSafe"):
                opts["enumerationSafe"] = True
        c.options = copy.deepcopy(opts)
        if old and old.type == "auth" and c.rules.get("authRule") != old.rules.get("authRule"):
            c.options["authToken"]["secret"] = random_string(50)
    elif ctype == "view":
        c.options = {"viewQuery": decode("str", payload.get("viewQuery"),
                                         old.options.get("viewQuery", "") if old else "", "/viewQuery")}
    init_default_fields(c)
    if cid != explicit_id and not old and cid != collection_id(ctype, name):
        # a suffixed generated id renames the indexes named after the generated one
        c.indexes = [i.replace(collection_id(ctype, name), cid) for i in c.indexes]
    return c

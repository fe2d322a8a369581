"""Validate a collection against the others, reporting errors as PocketBase 0.40 does.

PocketBase validates with ozzo-validation: each top-level key gets at most one error source,
the first failing rule in its list. For ``fields`` the rules run in this order, and only the
first that fails is reported:

1. duplicates — ``{i: {id|name: validation_duplicated_field_*}}`` (the first duplicate only);
2. a missing or invalid ``id`` primary key — ``validation_missing_primary_key`` on ``fields``;
3. (updates) a system field renamed or gone — ``validation_system_field_change`` on ``fields``;
4. (updates) a field type changed — ``{i: validation_field_type_change}`` for every such field;
5. (auth) reserved names — ``{i: {name: validation_reserved_field_name}}``;
6. each field's settings — ``{i: {option: error}}``.

Auth options are validated afterwards (token, OTP, MFA and template settings first; then the
MFA method count and rule; then ``passwordAuth.identityFields``) and merged into the same map.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..core.errors import REQUIRED, BadRequestError, FieldError, ValidationError
from . import builtin
from .collection_payload import FORMAT_ERROR, collection_from_payload, has_unique_index
from .fields import get_type
from .fields.base import first_error, length_rule, max_rule, min_rule
from .indexes import IndexParseError, parse_index, render_index, sync_table_name
from .models import Collection, Field

__all__ = ["FORMAT_ERROR", "RuleValidator", "collection_from_payload", "validate_collection"]

_NAME_RE = re.compile(r"^\w+$")
RESERVED_FIELD_NAMES = ("null", "true", "false", "_rowid_", "collectionId", "collectionName", "expand")
AUTH_RESERVED = ("passwordConfirm", "oldPassword")
# tables a collection may not be named after: PocketBase's own, and keepbase's (``_logs`` is a
# table of the main database on PostgreSQL; ``_kb*`` is kept for keepbase's future tables; see
# docs/compatibility.md)
INTERNAL_TABLES = {"_collections", "_params", "_migrations", "_audit", "_logs"}
INTERNAL_PREFIXES = ("_kb", "pg_")
MAX_TOKEN_DURATION = 94670856

RuleValidator = Callable[[Collection, str], str | None]


def validate_collection(c: Collection, old: Collection | None, others: list[Collection],
                        rule_error: RuleValidator, fail_message: str = "") -> None:
    """Raise ValidationError (``data`` keyed like PocketBase's) when ``c`` may not be saved.

    ``others``: every other collection. ``fail_message`` is used for the errors PocketBase's
    database raises instead of its validators (a ``sqlite_*`` name)."""
    errors: dict[str, Any] = {}
    if not old:
        _set(errors, "id", _id_error(c, others))
    elif c.system != old.system:
        errors["system"] = FieldError("validation_collection_system_flag_change",
                                      "System collection state cannot be changed.")
    if c.type not in ("base", "auth", "view"):
        errors["type"] = FieldError("validation_in_invalid", "Must be a valid value.")
    elif old and old.type != c.type:
        errors["type"] = FieldError("validation_collection_type_change", "Collection type cannot be changed.")
        if c.type == "auth":
            # PocketBase validates the would-be auth collection's (zero-valued) options as well
            errors.update(_blank_auth_option_errors())
    _set(errors, "name", _name_error(c, old, others))
    if c.type != "view":
        _set(errors, "fields", _fields_error(c, old, others))
    for r, value in c.rules.items():
        if r == "manageRule" and value == "":
            errors[r] = FieldError("validation_nil_or_not_empty_required", "Cannot be blank.")
        elif c.type == "view" and r in ("createRule", "updateRule", "deleteRule") and value is not None:
            errors[r] = FieldError("validation_nil", "Must be blank.")
        elif value and (problem := _rule_problem(rule_error, c, value)):
            errors[r] = FieldError("validation_invalid_rule", f"Invalid rule. Raw error: {problem}")
        elif old and old.system and value != old.rules.get(r):
            errors[r] = FieldError("validation_collection_system_rule_change",
                                   "System collection API rule cannot be changed.")
    index_error, column_errors = _validate_indexes(c, old, others)
    _set(errors, "indexes", index_error)
    if c.type == "auth" and "type" not in errors:
        errors.update(_auth_option_errors(c, rule_error))
    if c.type == "view" and not c.options.get("viewQuery"):
        errors["viewQuery"] = REQUIRED
        errors["fields"] = REQUIRED
    if not errors and column_errors:
        errors["indexes"] = column_errors
    if errors:
        raise ValidationError("", errors)
    if c.name.lower().startswith("sqlite_") and (not old or old.name != c.name):
        # not a validation error in PocketBase: SQLite itself refuses the table name
        raise BadRequestError(f"{fail_message} Raw error: \nSQL logic error: object name reserved for "
                              f"internal use: {c.name} (1).")
    c.indexes = [sync_table_name(idx, c.name) for idx in c.indexes]


def _rule_problem(rule_error: RuleValidator, c: Collection, rule: str) -> str | None:
    """PocketBase checks rules against the submitted fields even when those are invalid; fields
    too broken to build a table from (duplicate names) report their own errors instead."""
    try:
        return rule_error(c, rule)
    except Exception:  # noqa: BLE001
        return None


def _set(errors: dict[str, Any], key: str, error: Any) -> None:
    if error:
        errors[key] = error


def _id_error(c: Collection, others: list[Collection]) -> FieldError | None:
    if not c.id:
        return REQUIRED
    if len(c.id) > 100:
        return length_rule(c.id, 1, 100)
    if not _NAME_RE.match(c.id):
        return FieldError("validation_match_invalid", "Must be in a valid format.")
    if any(o.id.lower() == c.id.lower() for o in others):
        return FieldError("validation_invalid_or_existing_id", "The model id is invalid or already exists.")
    return None


def _name_error(c: Collection, old: Collection | None, others: list[Collection]) -> FieldError | None:
    name = c.name
    if not name:
        return REQUIRED
    if len(name) > 255:
        return length_rule(name, 1, 255)
    if "_via_" in name.lower():
        return FieldError("validation_found_via", 'The value cannot contain "_via_".')
    if not _NAME_RE.match(name):
        return FieldError("validation_match_invalid", "Must be in a valid format.")
    if old and old.system and name != old.name:
        return FieldError("validation_collection_system_name_change", "System collection name cannot be changed.")
    if any(o.name.lower() == name.lower() for o in others):
        return FieldError("validation_collection_name_exists", "Collection name must be unique (case insensitive).")
    if any(o.id == name for o in others):
        return FieldError("validation_collection_name_id_duplicate", "The name must not match an existing collection id.")
    low = name.lower()
    if (not old or old.name != name) and (low in INTERNAL_TABLES or low.startswith(INTERNAL_PREFIXES)):
        return FieldError("validation_collection_name_invalid", "The name shouldn't match with an existing internal table.")
    return None


# --------------------------------------------------------------------------- fields


def _fields_error(c: Collection, old: Collection | None, others: list[Collection]) -> Any:
    fields = c.fields
    ids: set[str] = set()
    names: set[str] = set()
    for i, f in enumerate(fields):
        if f.id in ids:
            return {str(i): {"id": FieldError("validation_duplicated_field_id", f"Duplicated or invalid field id {f.id}.")}}
        if f.name.lower() in names:
            return {str(i): {"name": FieldError("validation_duplicated_field_name",
                                                f"Duplicated or invalid field name {f.name}.", {"fieldName": f.name})}}
        ids.add(f.id)
        names.add(f.name.lower())
    if not fields:
        return REQUIRED
    pk = c.get_field("id")
    if pk is None or pk.type != "text" or not pk.options.get("primaryKey"):
        return FieldError("validation_missing_primary_key", 'Missing or invalid "id" PK field.')
    old_by_id = {f.id: f for f in old.fields} if old else {}
    if old:
        new_by_id = {f.id: f for f in fields}
        for of in old.fields:
            nf = new_by_id.get(of.id)
            if of.system and (nf is None or nf.name != of.name):
                return FieldError("validation_system_field_change", "System fields cannot be deleted or renamed.")
        changed = {str(i): FieldError("validation_field_type_change", "Field type cannot be changed.")
                   for i, f in enumerate(fields) if f.id in old_by_id and old_by_id[f.id].type != f.type}
        if changed:
            return changed
    if c.type == "auth":
        reserved = {str(i): {"name": FieldError("validation_reserved_field_name",
                                                "The field name is reserved and cannot be used.")}
                    for i, f in enumerate(fields) if f.name in AUTH_RESERVED}
        if reserved:
            return reserved
    settings = {}
    for i, f in enumerate(fields):
        fe = _field_settings_errors(c, f, old_by_id.get(f.id), others)
        if fe:
            settings[str(i)] = fe
    return settings or None


def _field_settings_errors(c: Collection, f: Field, prev: Field | None, others: list[Collection]) -> dict[str, Any]:
    """One field's ``ValidateSettings``: id, name and help for every type, then the type's own."""
    errors: dict[str, Any] = {}
    _set(errors, "id", REQUIRED if not f.id else length_rule(f.id, 1, 100))
    pk = f.type == "text" and bool(f.options.get("primaryKey"))
    _set(errors, "name", _field_name_error(f.name) or (
        FieldError("validation_in_invalid", 'The primary key must be named "id".') if pk and f.name != "id" else None))
    _set(errors, "help", length_rule(f.options.get("help") or "", 1, 300) if "help" in f.options else None)
    handler = get_type(f.type)
    if handler is not None:
        handler.check_options(f, errors)
    if pk and sum(1 for x in c.fields if x.type == "text" and x.options.get("primaryKey")) > 1:
        errors["primaryKey"] = FieldError("validation_unsupported_composite_pk",
                                          "Composite PKs are not supported and the collection must have only 1 PK.")
    if f.type == "relation" and "collectionId" not in errors:
        _set(errors, "collectionId", _relation_target_error(c, f, prev, others))
    if f.type == "autodate" and f.system and prev is not None and prev.type == "autodate":
        for key in ("onCreate", "onUpdate"):
            if bool(f.options.get(key)) != bool(prev.options.get(key)):
                errors[key] = FieldError("validation_values_mismatch", "Values don't match.")
    return errors


def _field_name_error(name: str) -> FieldError | None:
    if not name:
        return REQUIRED
    return first_error(
        length_rule(name, 1, 100),
        None if _NAME_RE.match(name) else FieldError("validation_match_invalid", "Must be in a valid format."),
        FieldError("validation_not_in_invalid", "Must not be in list.") if name in RESERVED_FIELD_NAMES else None,
        FieldError("validation_found_via", 'The value cannot contain "_via_".') if "_via_" in name.lower() else None,
    )


def _relation_target_error(c: Collection, f: Field, prev: Field | None,
                           others: list[Collection]) -> FieldError | None:
    target_id = f.options.get("collectionId")
    if prev is not None and prev.type == "relation" and prev.options.get("collectionId") != target_id:
        return FieldError("validation_field_relation_change", "The relation collection cannot be changed.")
    target = c if target_id == c.id else next((o for o in others if o.id == target_id), None)
    if target is None:
        return FieldError("validation_field_relation_missing_collection", "The relation collection doesn't exist.")
    if c.type != "view" and target.type == "view":
        return FieldError("validation_relation_field_non_view_base_collection",
                          "Only view collections are allowed to have relations to other views.")
    return None


# --------------------------------------------------------------------------- auth options


def _blank_auth_option_errors() -> dict[str, Any]:
    template = {"body": REQUIRED, "subject": REQUIRED}
    errors: dict[str, Any] = {key: {"duration": REQUIRED, "secret": REQUIRED} for key in builtin.TOKEN_KEYS}
    errors.update({key: dict(template) for key in
                   ("verificationTemplate", "resetPasswordTemplate", "confirmEmailChangeTemplate")})
    errors.update({key: {"emailTemplate": dict(template)} for key in ("authAlert", "otp")})
    return errors


def _template_errors(t: Any) -> dict[str, Any]:
    t = t if isinstance(t, dict) else {}
    return {key: REQUIRED for key in ("subject", "body") if not t.get(key)}


def _duration_error(value: Any, high: int) -> FieldError | None:
    return first_error(REQUIRED if not value else None, min_rule(value, 10), max_rule(value, high))


def _auth_option_errors(c: Collection, rule_error: RuleValidator) -> dict[str, Any]:
    o = c.options
    errors: dict[str, Any] = {}

    def nested(key: str, sub: dict[str, Any]) -> None:
        sub = {k: v for k, v in sub.items() if v}
        if sub:
            errors[key] = sub

    nested("authAlert", {"emailTemplate": _template_errors(o.get("authAlert", {}).get("emailTemplate"))})
    pa = o.get("passwordAuth", {})
    if pa.get("enabled") and not [v for v in pa.get("identityFields") or [] if v]:
        errors["passwordAuth"] = {"identityFields": REQUIRED}
    otp = o.get("otp", {})
    nested("otp", {
        "duration": _duration_error(otp.get("duration"), 86400) if otp.get("enabled") else None,
        "length": first_error(REQUIRED if not otp.get("length") else None, min_rule(otp.get("length"), 4))
        if otp.get("enabled") else None,
        "emailTemplate": _template_errors(otp.get("emailTemplate"))})
    mfa = o.get("mfa", {})
    nested("mfa", {"duration": _duration_error(mfa.get("duration"), 86400) if mfa.get("enabled") else None})
    limit = o.get("accountLimit") or {}  # keepbase's per-account sign-in limit (0: the default)
    nested("accountLimit", {"maxFailures": first_error(min_rule(limit.get("maxFailures") or 0, 0),
                                                       max_rule(limit.get("maxFailures") or 0, 10000)),
                            "duration": first_error(min_rule(limit.get("duration") or 0, 0),
                                                    max_rule(limit.get("duration") or 0, 86400))})
    for key in builtin.TOKEN_KEYS:
        token = o.get(key, {})
        secret = token.get("secret") or ""
        nested(key, {"secret": REQUIRED if not secret else length_rule(secret, 30, 255),
                     "duration": _duration_error(token.get("duration"), MAX_TOKEN_DURATION)})
    for key in ("verificationTemplate", "resetPasswordTemplate", "confirmEmailChangeTemplate"):
        nested(key, _template_errors(o.get(key)))
    if errors:
        return errors
    if mfa.get("enabled"):
        methods = sum(bool(o.get(k, {}).get("enabled")) for k in ("passwordAuth", "otp", "oauth2"))
        if methods < 2:
            return {"mfa": {"enabled": FieldError("validation_mfa_not_enough_auths",
                                                  "MFA requires at least 2 auth methods to be enabled.")}}
        rule = mfa.get("rule") or ""
        if rule and (problem := _rule_problem(rule_error, c, rule)):
            return {"mfa": {"rule": FieldError("validation_invalid_rule", f"Invalid rule. Raw error: {problem}")}}
    if pa.get("enabled"):
        for name in pa.get("identityFields") or []:
            if c.get_field(name) is None:
                return {"passwordAuth": {"identityFields": FieldError(
                    "validation_missing_field", f"Invalid or missing field {name}.", {"fieldName": name})}}
            if not has_unique_index(c.indexes, name):
                return {"passwordAuth": {"identityFields": FieldError(
                    "validation_missing_unique_constraint", f"The field {name} doesn't have a UNIQUE constraint.",
                    {"fieldName": name})}}
    return {}


# --------------------------------------------------------------------------- indexes


def _validate_indexes(c: Collection, old: Collection | None,
                      others: list[Collection]) -> tuple[Any, dict[str, Any]]:
    """``(error, column_errors)``. Like PocketBase, only the first invalid index is reported;
    indexes over unknown columns fail only when the table is synced, so ``column_errors`` (one per
    such index, with SQLite's message) count only when nothing else is wrong."""
    if c.type == "view":
        if c.indexes:
            return FieldError("validation_indexes_not_supported", "View collections don't support indexes."), {}
        return None, {}
    field_names = {f.name.lower() for f in c.fields}
    used_elsewhere: dict[str, str] = {}
    for o in others:
        for idx in o.indexes:
            try:
                used_elsewhere.setdefault(parse_index(idx).name.lower(), o.name)
            except IndexParseError:
                pass
    seen: set[str] = set()
    definitions: set[str] = set()
    column_errors: dict[str, Any] = {}
    for i, idx in enumerate(c.indexes):
        try:
            parsed = parse_index(idx)
        except IndexParseError:
            parsed = None
        if parsed is None or not _NAME_RE.match(parsed.name):
            return {str(i): FieldError("validation_invalid_index_expression", "Invalid CREATE INDEX expression.")}, {}
        key = parsed.name.lower()
        definition = render_index(parsed, "").replace(f"`{parsed.name}`", "", 1)  # UNIQUE counts
        if key in seen:
            return {str(i): FieldError("validation_duplicated_index_name", "The index name already exists.")}, {}
        if key in used_elsewhere:
            table = used_elsewhere[key]
            return {str(i): FieldError("validation_existing_index_name",
                                       f"The index name is already used in {table} collection.",
                                       {"usedTableName": table})}, {}
        if definition in definitions:
            return {str(i): FieldError("validation_duplicated_index_definition",
                                       "The index definition already exists.")}, {}
        seen.add(key)
        definitions.add(definition)
        # SQLite resolves the WHERE clause first
        unknown = [col for col in [w[0] for w in parsed.where] + [col.name for col in parsed.columns]
                   if col.lower() not in field_names]
        if unknown:
            column_errors[str(i)] = FieldError(
                "validation_invalid_index_expression",
                f"Failed to create index {parsed.name} - SQL logic error: no such column: {unknown[0]} (1).")
    if old:
        error = _system_unique_index_error(c, old)
        if error is not None:
            return error, {}
    return None, column_errors


def _unique_shape(sql: str) -> tuple[str, ...] | None:
    """A unique index reduced to what makes it a constraint: its columns (no collation/order)."""
    try:
        parsed = parse_index(sql)
    except IndexParseError:
        return None
    return tuple(col.name.lower() for col in parsed.columns) if parsed.unique else None


def _system_unique_index_error(c: Collection, old: Collection) -> FieldError | None:
    """A unique index over a system field may not be dropped or changed (its name and WHERE may)."""
    system_names = {f.name.lower(): f.name for f in old.fields if f.system}
    new_shapes = {shape for shape in map(_unique_shape, c.indexes) if shape}
    for sql in old.indexes:
        shape = _unique_shape(sql)
        if not shape:
            continue
        column = next((col for col in shape if col in system_names), None)
        if column is not None and shape not in new_shapes:
            name = system_names[column]
            return FieldError("validation_invalid_unique_system_field_index",
                              f"Unique index definition on system fields ({name}) is invalid or missing.",
                              {"fieldName": name})
    return None


# --------------------------------------------------------------------------- import messages

# ozzo-validation's own rules: their messages are lower-case without a full stop until
# PocketBase's API renders them (the import failure message quotes them unrendered)
_OZZO_CODES = frozenset({
    "validation_required", "validation_nil_or_not_empty_required", "validation_nil", "validation_empty",
    "validation_min_greater_equal_than_required", "validation_max_less_equal_than_required",
    "validation_length_out_of_range", "validation_length_too_long", "validation_length_too_short",
    "validation_length_invalid", "validation_match_invalid", "validation_not_in_invalid", "validation_in_invalid",
    "validation_is_domain", "validation_invalid_regex",
})
# PocketBase messages written without a full stop
_NO_STOP_CODES = frozenset({
    "validation_invalid_rule", "validation_invalid_autogenerate_pattern_value", "validation_invalid_view_query",
    "validation_duplicated_field_name", "validation_duplicated_field_id", "validation_missing_field",
})


def raw_message(error: FieldError) -> str:
    """An error's message as PocketBase holds it before its API renders it."""
    message = error.message
    if error.code in _OZZO_CODES and not message.startswith("The primary key"):
        message = message[:1].lower() + message[1:]
    if error.code in _OZZO_CODES or error.code in _NO_STOP_CODES:
        message = message.removesuffix(".")
    return message

"""Turn a submitted collection payload into a Collection, and validate it against the others."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from ..core.errors import REQUIRED, BadRequestError, FieldError, ValidationError
from ..core.ids import ALNUM_LOWER, collection_id, field_id, random_string
from . import builtin
from .fields import get_type
from .indexes import IndexParseError, parse_index, render_index, sync_table_name
from .models import AUTH_RULE_NAMES, RULE_NAMES, Collection, Field

_NAME_RE = re.compile(r"^\w+$")
RESERVED_FIELD_NAMES = {"null", "true", "false", "_rowid_", "collectionid", "collectionname", "expand"}
AUTH_RESERVED = {"passwordconfirm", "oldpassword"}
INTERNAL_TABLES = {"_collections", "_params", "_migrations", "_logs", "sqlite_master", "sqlite_sequence"}
FORMAT_ERROR = "Failed to load the submitted data due to invalid formatting."

RuleValidator = Callable[[Collection, str], str | None]


def _fields_from_payload(raw: Any, old: Collection | None) -> list[Field]:
    if raw is None:
        return [copy.deepcopy(f) for f in old.fields] if old else []
    if not isinstance(raw, list):
        raise BadRequestError(FORMAT_ERROR)
    old_by_id = {f.id: f for f in old.fields} if old else {}
    old_by_name = {f.name: f for f in old.fields} if old else {}
    fields: list[Field] = []
    for item in raw:
        if not isinstance(item, dict):
            raise BadRequestError(FORMAT_ERROR)
        ftype = item.get("type")
        handler = get_type(ftype) if isinstance(ftype, str) else None
        if handler is None:
            raise BadRequestError(FORMAT_ERROR)
        name = item.get("name", "")
        fid = item.get("id") or ""
        prev = old_by_id.get(fid) if fid else None
        if prev is None and not fid and isinstance(name, str):
            prev = old_by_name.get(name)
        if not fid:
            fid = prev.id if prev else ""
        options = handler.option_defaults()
        if prev is not None and prev.type == ftype:
            options.update({k: v for k, v in prev.options.items() if k in options})
        for key in options:
            if key in item:
                options[key] = item[key]
        new = Field(
            id=fid if isinstance(fid, str) else "",
            name=name if isinstance(name, str) else "",
            type=ftype,
            system=bool(prev.system) if prev else bool(item.get("system", False)),
            hidden=bool(item.get("hidden", prev.hidden if prev else False)),
            presentable=bool(item.get("presentable", prev.presentable if prev else False)),
            options=options,
        )
        _add_field(fields, new, explicit_id=bool(item.get("id")))
    return fields


def _add_field(fields: list[Field], new: Field, explicit_id: bool) -> None:
    """PocketBase's ``FieldsList.add``: a field repeated in one payload replaces the earlier one in
    place (matched by id when it has an explicit one, else by exact name, reusing the earlier id)."""
    for i, f in enumerate(fields):
        if explicit_id and f.id == new.id:
            fields[i] = new
            return
        if not explicit_id and new.name and f.name == new.name:
            new.id = f.id or field_id(f.type, f.name)
            fields[i] = new
            return
    fields.append(new)


def _assign_field_ids(fields: list[Field]) -> None:
    used = {f.id for f in fields if f.id}
    for f in fields:
        if not f.id:
            base = field_id(f.type, f.name)
            candidate, n = base, 1
            while candidate in used:
                n += 1
                candidate = f"{base}{n}"
            f.id = candidate
            used.add(candidate)


def _ensure_system_fields(c: Collection) -> None:
    if c.type == "view":
        return
    names = {f.name for f in c.fields}
    if "id" not in names:
        c.fields.insert(0, builtin.id_field())
    if c.type == "auth":
        for sf in builtin.auth_system_fields():
            if sf.name not in names:
                c.fields.append(sf)
        # named after the default id, even when an explicit one is given (random without a name)
        suffix = collection_id(c.type, c.name) if c.name else random_string(10, ALNUM_LOWER)
        for col in ("tokenKey", "email"):
            if not _has_unique_index(c.indexes, col):
                c.indexes.append(builtin.auth_index(col, c.name, suffix))


def _has_unique_index(indexes: list[str], column: str) -> bool:
    for sql in indexes:
        try:
            parsed = parse_index(sql)
        except IndexParseError:
            continue
        if parsed.unique and len(parsed.columns) == 1 and parsed.columns[0].name.lower() == column.lower():
            return True
    return False


def _merge_options(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_options(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def collection_from_payload(payload: dict[str, Any], old: Collection | None, now: str) -> Collection:
    """Build the collection a create (old=None) or update would save. Raises 400 on bad shapes."""
    ctype = payload.get("type", old.type if old else "base")
    if not isinstance(ctype, str):
        raise BadRequestError(FORMAT_ERROR)
    name = payload.get("name", old.name if old else "")
    if not isinstance(name, str):
        raise BadRequestError(FORMAT_ERROR)
    cid = old.id if old else payload.get("id") or ""
    if not isinstance(cid, str):
        raise BadRequestError(FORMAT_ERROR)
    c = Collection(id=cid or collection_id(ctype, name), name=name, type=ctype,
                   system=old.system if old else False,
                   created=old.created if old else now, updated=now)
    c.fields = _fields_from_payload(payload.get("fields"), old)
    indexes = payload.get("indexes", old.indexes if old else [])
    if not isinstance(indexes, list) or not all(isinstance(i, str) for i in indexes):
        raise BadRequestError(FORMAT_ERROR)
    c.indexes = list(indexes)
    rule_names = RULE_NAMES + (AUTH_RULE_NAMES if ctype == "auth" else ())
    for r in rule_names:
        default = "" if r == "authRule" else None
        value = payload.get(r, old.rules.get(r, default) if old else default)
        if value is not None and not isinstance(value, str):
            raise BadRequestError(FORMAT_ERROR)
        c.rules[r] = value
    if ctype == "auth":
        base_opts = old.options if old and old.type == "auth" else builtin.auth_option_defaults()
        submitted = {k: payload[k] for k in builtin.AUTH_OPTION_DEFAULTS if k in payload}
        for v in submitted.values():
            if not isinstance(v, dict):
                raise BadRequestError(FORMAT_ERROR)
        c.options = _merge_options(base_opts, submitted)
        if old and old.type == "auth" and c.rules.get("authRule") != old.rules.get("authRule"):
            c.options["authToken"]["secret"] = builtin.random_string(50)
    elif ctype == "view":
        vq = payload.get("viewQuery", old.options.get("viewQuery", "") if old else "")
        if not isinstance(vq, str):
            raise BadRequestError(FORMAT_ERROR)
        c.options = {"viewQuery": vq}
        c.indexes = list(indexes)
    _ensure_system_fields(c)
    _assign_field_ids(c.fields)
    return c


def validate_collection(c: Collection, old: Collection | None, others: list[Collection],
                        rule_error: RuleValidator) -> None:
    """Raise ValidationError (``data`` keyed like PocketBase's) when ``c`` may not be saved."""
    errors: dict[str, Any] = {}
    if c.type not in ("base", "auth", "view"):
        errors["type"] = FieldError("validation_in_invalid", "Must be a valid value.")
    elif old and old.type != c.type:
        errors["type"] = FieldError("validation_collection_type_change", "Collection type cannot be changed.")
        if c.type == "auth":
            # PocketBase validates the would-be auth collection's (zero-valued) options as well
            errors.update(_blank_auth_option_errors())
    if not c.name:
        errors["name"] = REQUIRED
    elif len(c.name) > 255:
        errors["name"] = FieldError("validation_length_too_long", "The length must be no more than 255.",
                                    {"max": 255, "min": 1})
    elif not _NAME_RE.match(c.name):
        errors["name"] = FieldError("validation_match_invalid", "Must be in a valid format.")
    elif "_via_" in c.name:
        errors["name"] = FieldError("validation_found_via", 'The value cannot contain "_via_".')
    elif c.name.lower() in INTERNAL_TABLES or c.name.lower().startswith(("sqlite_", "pg_", "_kb")):
        errors["name"] = FieldError("validation_collection_name_invalid", "The name is reserved.")
    elif old and old.system and c.name != old.name:
        errors["name"] = FieldError("validation_collection_system_name_change", "System collection name cannot be changed.")
    else:
        for o in others:
            if o.name.lower() == c.name.lower():
                errors["name"] = FieldError("validation_collection_name_exists",
                                            "Collection name must be unique (case insensitive).")
                break
            if o.id.lower() == c.name.lower():
                errors["name"] = FieldError("validation_collection_name_id_duplicate",
                                            "The name must not match an existing collection id.")
                break
    if not old:
        if not _NAME_RE.match(c.id) or len(c.id) > 100:
            errors["id"] = FieldError("validation_match_invalid", "Must be in a valid format.")
        elif any(o.id.lower() == c.id.lower() or o.name.lower() == c.id.lower() for o in others) and not (
                # a generated id repeats because the name does: report the name only, as PocketBase
                "name" in errors and c.id == collection_id(c.type, c.name)):
            errors["id"] = FieldError("validation_collection_id_exists", "Collection id already exists.")
    field_errors = _validate_fields(c, old, others)
    if field_errors:
        errors["fields"] = field_errors
    index_errors, column_errors = _validate_indexes(c, others)
    if index_errors:
        errors["indexes"] = index_errors.get("", index_errors)
    for r, value in c.rules.items():
        if old and old.system and value != old.rules.get(r):
            errors[r] = FieldError("validation_collection_system_rule_change", "System collection API rule cannot be changed.")
            continue
        if r == "manageRule" and value == "":
            errors[r] = FieldError("validation_required", "Cannot be blank.")
            continue
        if value and "fields" not in errors and not (c.type == "view" and r not in ("listRule", "viewRule")):
            problem = rule_error(c, value)
            if problem:
                errors[r] = FieldError("validation_invalid_rule", f"Invalid rule. Raw error: {problem}")
    if c.type == "view":
        for r in ("createRule", "updateRule", "deleteRule"):
            if c.rules.get(r) is not None:
                c.rules[r] = None
    if c.type == "auth":
        ident = c.options.get("passwordAuth", {}).get("identityFields")
        if not isinstance(ident, list) or not ident:
            errors["passwordAuth"] = {"identityFields": REQUIRED}
        opts = c.options
        if opts.get("mfa", {}).get("enabled"):
            methods = sum(bool(opts.get(k, {}).get("enabled")) for k in ("passwordAuth", "otp", "oauth2"))
            if methods < 2:
                errors["mfa"] = {"enabled": FieldError("validation_mfa_not_enough_auths",
                                                       "MFA requires at least 2 auth methods to be enabled.")}
    if not errors and column_errors:
        errors["indexes"] = column_errors
    if errors:
        raise ValidationError("", errors)
    c.indexes = [sync_table_name(idx, c.name) for idx in c.indexes]


def _blank_auth_option_errors() -> dict[str, Any]:
    template = {"body": REQUIRED, "subject": REQUIRED}
    errors: dict[str, Any] = {key: {"duration": REQUIRED, "secret": REQUIRED} for key in builtin.TOKEN_KEYS}
    errors.update({key: dict(template) for key in
                   ("verificationTemplate", "resetPasswordTemplate", "confirmEmailChangeTemplate")})
    errors.update({key: {"emailTemplate": dict(template)} for key in ("authAlert", "otp")})
    return errors


def _validate_fields(c: Collection, old: Collection | None, others: list[Collection]) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    if c.type == "view":
        return errors
    seen_names: set[str] = set()
    seen_ids: set[str] = set()
    old_by_id = {f.id: f for f in old.fields} if old else {}
    all_ids = {o.id for o in others} | {c.id}
    for i, f in enumerate(c.fields):
        fe: dict[str, Any] = {}
        lname = f.name.lower()
        if not f.name:
            fe["name"] = REQUIRED
        elif len(f.name) > 100 or not _NAME_RE.match(f.name):
            fe["name"] = FieldError("validation_match_invalid", "Must be in a valid format.")
        elif lname in RESERVED_FIELD_NAMES:
            fe["name"] = FieldError("validation_not_in_invalid", "Must not be in list.")
        elif c.type == "auth" and lname in AUTH_RESERVED:
            fe["name"] = FieldError("validation_reserved_field_name", "The field name is reserved and cannot be used.")
        elif "_via_" in f.name:
            fe["name"] = FieldError("validation_found_via", 'The value cannot contain "_via_".')
        elif lname in seen_names:
            fe["name"] = FieldError("validation_duplicated_field_name", f"Duplicated or invalid field name {f.name}.",
                                    {"fieldName": f.name})
        if f.id in seen_ids:
            fe["id"] = FieldError("validation_duplicated_field_id", "Duplicated or invalid field id.")
        seen_names.add(lname)
        seen_ids.add(f.id)
        prev = old_by_id.get(f.id)
        if prev is not None and prev.type != f.type:
            fe["type"] = FieldError("validation_field_type_change", "The type of an existing field cannot be changed.")
        if prev is not None and prev.system and prev.name != f.name:
            fe["name"] = FieldError("validation_system_field_change", "System fields cannot be renamed or deleted.")
        if f.name == "id" and f.type == "text":
            if not f.options.get("primaryKey") or not f.options.get("required") or not f.options.get("pattern"):
                fe["primaryKey"] = FieldError("validation_invalid_pk", "The id field must be a required primary key with a pattern.")
        handler = get_type(f.type)
        if handler is not None:
            opt_errors: dict[str, FieldError] = {}
            handler.check_options(f, opt_errors)
            fe.update(opt_errors)
        if f.type == "relation" and "collectionId" not in fe:
            target = f.options.get("collectionId")
            if target not in all_ids:
                fe["collectionId"] = FieldError("validation_field_relation_missing_collection",
                                                "The relation collection doesn't exist.")
            elif prev is not None and prev.options.get("collectionId") != target:
                fe["collectionId"] = FieldError("validation_field_relation_change",
                                                "The relation collection cannot be changed.")
        if fe:
            errors[str(i)] = fe
    if old:
        new_ids = {f.id for f in c.fields}
        for f in old.fields:
            if f.system and f.id not in new_ids and "fields" not in errors:
                errors[str(len(c.fields))] = {"id": FieldError("validation_system_field_change",
                                                               "System fields cannot be renamed or deleted.")}
    return errors


def _validate_indexes(c: Collection, others: list[Collection]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(errors, column_errors)``. Like PocketBase, only the first invalid index is reported;
    indexes over unknown columns fail only when the table is synced, so ``column_errors`` (one per
    such index, with SQLite's message) count only when nothing else is wrong."""
    if c.type == "view":
        if c.indexes:
            return {"": FieldError("validation_indexes_not_supported",
                                   "View collections don't support indexes.")}, {}
        return {}, {}
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
    if c.type == "auth":
        ident = c.options.get("passwordAuth", {}).get("identityFields") or []
        for name in ident:
            if not _has_unique_index(c.indexes, name):
                return {str(len(c.indexes)): FieldError(
                    "validation_missing_unique_constraint", f"The field {name} doesn't have a UNIQUE constraint.",
                    {"fieldName": name})}, {}
    return {}, column_errors

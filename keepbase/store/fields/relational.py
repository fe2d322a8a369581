"""select, relation and file fields: one value or a JSON array of values."""

from __future__ import annotations

import re
from typing import Any

import orjson

from ...core.errors import REQUIRED, FieldError
from ...files import sniff, thumbs
from ..models import Field
from .base import MAX_SAFE_INT, FieldType, SaveContext, first_error, invalid, max_rule, min_rule


def _set(errors: dict[str, Any], key: str, error: FieldError | None) -> None:
    if error is not None:
        errors[key] = error

THUMB_RE = r"^(\d+)x(\d+)(t|b|f)?$"


def to_list(raw: Any) -> list[str]:
    """A string or array of strings → de-duplicated list, first occurrence kept."""
    if raw is None or raw == "":
        items: list[Any] = []
    elif isinstance(raw, str):
        items = [raw]
    elif isinstance(raw, list):
        items = raw
    else:
        raise invalid("validation_invalid_value", "Must be a string or an array of strings.")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise invalid("validation_invalid_value", "Must be a string or an array of strings.")
        if item and item not in out:
            out.append(item)
    return out


class _MultiBase(FieldType):
    """maxSelect defaults to 0 (as PocketBase stores it); 0 and 1 both mean a single value."""

    def max_select(self, f: Field) -> int:
        return int(f.options.get("maxSelect") or 1)

    def empty(self, f: Field) -> Any:
        return [] if f.multiple else ""

    def coerce(self, f: Field, raw: Any, ctx: SaveContext) -> Any:
        items = to_list(raw)
        if f.multiple:
            return items
        return items[-1] if items else ""

    def values_of(self, f: Field, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        return [value] if value else []

    def check_count(self, f: Field, value: Any) -> None:
        n = len(self.values_of(f, value))
        mx = self.max_select(f)
        if f.multiple and n > mx:
            raise invalid("validation_too_many_values", f"Select no more than {mx}.", {"maxSelect": mx})

    def to_db(self, f: Field, value: Any) -> Any:
        if f.multiple:
            return orjson.dumps(value).decode()
        return value

    def output(self, f: Field, db_value: Any) -> Any:
        if f.multiple:
            return orjson.Fragment(db_value or "[]")
        return db_value or ""

    def view_output(self, f: Field, text: str | None) -> Any:
        if not f.multiple:
            return text or ""
        try:  # a copied multi-valued column holds a JSON array; anything else is one value
            items = orjson.loads(text or "[]")
        except orjson.JSONDecodeError:
            items = [text]
        if not isinstance(items, list):
            items = [text]
        return list(dict.fromkeys(i if isinstance(i, str) else orjson.dumps(i).decode() for i in items if i != ""))


class SelectType(_MultiBase):
    name = "select"
    defaults = {"maxSelect": 0, "values": []}

    def check_options(self, f: Field, errors: dict[str, Any]) -> None:
        values = f.options.get("values") or []
        if not values:
            errors["values"] = REQUIRED
        mx = f.options.get("maxSelect", 0)
        _set(errors, "maxSelect", first_error(min_rule(mx, 0), max_rule(mx, max(len(values), 1))))

    def validate(self, f: Field, value: Any, ctx: SaveContext) -> None:
        self.check_count(f, value)
        allowed = f.options.get("values") or []
        for v in self.values_of(f, value):
            if v not in allowed:
                raise invalid("validation_invalid_value", f"Invalid value {v}.", {"value": v})


class RelationType(_MultiBase):
    """Existence of the referenced ids is checked by the records service (it needs the DB)."""

    name = "relation"
    defaults = {"cascadeDelete": False, "collectionId": "", "maxSelect": 0, "minSelect": 0}

    def check_options(self, f: Field, errors: dict[str, Any]) -> None:
        """collectionId is checked against the other collections by the collection validator."""
        if not f.options.get("collectionId"):
            errors["collectionId"] = REQUIRED
        mn, mx = f.options.get("minSelect", 0), f.options.get("maxSelect", 0)
        _set(errors, "minSelect", min_rule(mn, 0))
        _set(errors, "maxSelect", first_error(REQUIRED if mn > 0 and not mx else None, min_rule(mx, mn)))

    def validate(self, f: Field, value: Any, ctx: SaveContext) -> None:
        n = len(self.values_of(f, value))
        mn = int(f.options.get("minSelect") or 0)
        if mn and n < mn:
            raise invalid("validation_not_enough_values", f"Select at least {mn}.", {"minSelect": mn})
        self.check_count(f, value)


class FileType(_MultiBase):
    """Stored file names. Uploads are swapped for their new names before coercion
    (``store.record_files``); ``ctx.uploads`` tells new uploads apart from current files."""

    name = "file"
    defaults = {"maxSelect": 0, "maxSize": 0, "mimeTypes": [], "protected": False, "thumbs": []}
    DEFAULT_MAX_SIZE = 5 * 1024 * 1024

    def check_options(self, f: Field, errors: dict[str, Any]) -> None:
        for key in ("maxSelect", "maxSize"):
            v = f.options.get(key, 0)
            _set(errors, key, first_error(min_rule(v, 0), max_rule(v, MAX_SAFE_INT)))
        bad: dict[str, FieldError] = {}
        for i, t in enumerate(f.options.get("thumbs") or []):
            if t in ("0x0", "0x0t", "0x0b", "0x0f"):
                bad[str(i)] = FieldError("validation_not_in_invalid", "Must not be in list.")
            elif t and not re.fullmatch(THUMB_RE, t):
                bad[str(i)] = FieldError("validation_match_invalid", "Must be in a valid format.")
        if bad:
            errors["thumbs"] = bad

    def validate(self, f: Field, value: Any, ctx: SaveContext) -> None:
        existing = set(self.values_of(f, ctx.old.get(f.name))) if ctx.old else set()
        uploads = ctx.uploads.get(f.name, {})
        names = self.values_of(f, value)
        new = [v for v in names if v not in existing and v not in uploads]
        if new:
            raise invalid("validation_invalid_file", f"Invalid new files: [{', '.join(new)}].",
                          {"invalidFiles": new})
        mx = self.max_select(f)
        if len(names) > mx:
            raise invalid("validation_too_many_files", f"The maximum allowed files is {mx}.", {"maxSelect": mx})
        max_size = int(f.options.get("maxSize") or self.DEFAULT_MAX_SIZE)
        mime_types = [m for m in f.options.get("mimeTypes") or [] if isinstance(m, str)]
        for stored in names:
            upload = uploads.get(stored)
            if upload is None:
                continue
            if upload.size > max_size:
                raise invalid("validation_file_size_limit",
                              f"Failed to upload {upload.original_name} - the maximum allowed file size is "
                              f"{max_size} bytes.", {"file": upload.original_name, "maxSize": max_size})
            if mime_types and not sniff.matches(upload.mime, mime_types):
                raise invalid("validation_invalid_mime_type",
                              f'"{stored}" mime type must be one of: {", ".join(mime_types)}.')
            if sniff.base_type(upload.mime) in thumbs.THUMB_SOURCE_TYPES:
                upload.file.seek(0)
                if thumbs.is_bomb(upload.file):
                    # keepbase hardening: an image declaring more pixels than thumbs.MAX_PIXELS is
                    # refused before anything is decoded or stored (docs/compatibility.md).
                    raise invalid("validation_image_too_large",
                                  f'"{stored}" image dimensions exceed the allowed {thumbs.MAX_PIXELS} pixels.')


TYPES = [SelectType(), RelationType(), FileType()]

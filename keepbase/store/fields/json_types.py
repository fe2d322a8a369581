"""json and geoPoint fields (stored as JSON text)."""

from __future__ import annotations

from typing import Any

import orjson

from ..models import Field
from .base import MAX_SAFE_INT, FieldType, SaveContext, first_error, invalid, max_rule, min_rule

JSON_MAX_DEFAULT = 1024 * 1024


class JsonType(FieldType):
    name = "json"
    defaults = {"maxSize": 0}

    def check_options(self, f: Field, errors: dict[str, Any]) -> None:
        size = f.options.get("maxSize", 0)
        error = first_error(min_rule(size, 0), max_rule(size, MAX_SAFE_INT))
        if error is not None:
            errors["maxSize"] = error

    def empty(self, f: Field) -> Any:
        return None

    def is_empty(self, f: Field, value: Any) -> bool:
        return value is None or value == "null" or value in ('""', "[]", "{}")

    def coerce(self, f: Field, raw: Any, ctx: SaveContext) -> Any:
        """Returns the JSON text to store (or None)."""
        if raw is None:
            return None
        if isinstance(raw, str):
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                if ctx.from_form:  # a form value for a json field must be JSON (PocketBase stores text)
                    raise invalid("validation_invalid_json", "Must be a valid json value.") from None
                return orjson.dumps(raw).decode()
            return None if parsed is None else raw.strip()
        try:
            return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:
            raise invalid("validation_invalid_json", "Must be a valid json value.") from None

    def validate(self, f: Field, value: Any, ctx: SaveContext) -> None:
        mx = int(f.options.get("maxSize") or 0) or JSON_MAX_DEFAULT
        if value is not None and len(value.encode()) > mx:
            raise invalid("validation_json_size_limit", f"The maximum allowed JSON size is {mx} bytes.",
                          {"maxSize": mx})
        if value is not None and "\\u0000" in value:
            raise invalid("validation_invalid_json", "Must not contain NUL characters.")

    def output(self, f: Field, db_value: Any) -> Any:
        return None if db_value is None else orjson.Fragment(db_value)

    encryptable = True

    def blind_text(self, f: Field, value: Any) -> str | None:
        """Canonical JSON (sorted keys, no spaces), so ``{"b":1, "a":2}`` and ``{"a":2,"b":1}`` match."""
        if value is None:
            return None
        try:
            return orjson.dumps(orjson.loads(value), option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONDecodeError:
            return str(value)

    def blind_literal(self, f: Field, value: Any) -> str | None:
        """A filter value is the JSON value it names: ``data = "x"`` matches the JSON string "x",
        ``data = 5`` the number 5 (as PocketBase compares a json field's value)."""
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()

    def view_output(self, f: Field, text: str | None) -> Any:
        """PocketBase's json field reading a column's text: ``null``/``true``/``false`` and JSON
        that starts like a number, string, array or object are JSON; any other text (``x``,
        ``""``, ``" 5 "``) is a JSON string. NULL is null."""
        if text is None:
            return None
        if text in ("null", "true", "false"):
            return orjson.Fragment(text)
        if text and (text[0] in _JSON_STARTS) and _is_json(text):
            return orjson.Fragment(text)
        return text


_JSON_STARTS = frozenset('0123456789-"[{')


def _is_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


_ZERO = '{"lon":0,"lat":0}'


class GeoPointType(FieldType):
    name = "geoPoint"
    defaults: dict[str, Any] = {}

    def empty(self, f: Field) -> Any:
        return {"lon": 0, "lat": 0}

    def is_empty(self, f: Field, value: Any) -> bool:
        return value == _ZERO

    def coerce(self, f: Field, raw: Any, ctx: SaveContext) -> Any:
        if raw is None or raw == "":
            return _ZERO
        if isinstance(raw, str):
            try:
                raw = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise invalid("validation_invalid_geo_point", "Must be an object with lon and lat.") from None
        if not isinstance(raw, dict) or set(raw) - {"lon", "lat"}:
            raise invalid("validation_invalid_geo_point", "Must be an object with lon and lat.")
        lon, lat = raw.get("lon", 0), raw.get("lat", 0)
        for v in (lon, lat):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise invalid("validation_invalid_geo_point", "Must be an object with lon and lat.")
        lon_s = int(lon) if float(lon).is_integer() else lon
        lat_s = int(lat) if float(lat).is_integer() else lat
        return orjson.dumps({"lon": lon_s, "lat": lat_s}).decode()

    def validate(self, f: Field, value: Any, ctx: SaveContext) -> None:
        point = orjson.loads(value)
        if not -90 <= point["lat"] <= 90:
            raise invalid("validation_invalid_latitude", "Latitude must be between -90 and 90 degrees.")
        if not -180 <= point["lon"] <= 180:
            raise invalid("validation_invalid_longitude", "Longitude must be between -180 and 180 degrees.")

    def output(self, f: Field, db_value: Any) -> Any:
        return orjson.Fragment(db_value or _ZERO)


TYPES = [JsonType(), GeoPointType()]

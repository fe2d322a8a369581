"""List query parameters: page, perPage, skipTotal, sort, filter — PocketBase's rules and limits.

``page`` and ``perPage`` are read as Go's ``strconv.Atoi`` reads them: an optional sign and ASCII
digits, within int64 (``" 2"``, ``"2_0"``, ``"２"`` and ``"1e3"`` are refused, as is anything
beyond int64) → otherwise the generic 400. A page below 1 is 1; a perPage below 1 is 30, above
1000 is 1000. The row offset is ``ListParams.offset`` (PocketBase's int64 arithmetic).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.datastructures import QueryParams

from ..core.errors import BadRequestError
from ..store.records import DEFAULT_PER_PAGE, INT64_MAX, MAX_PER_PAGE, ListParams

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_GO_INT = re.compile(r"[+-]?[0-9]+")


def go_atoi(raw: str) -> int | None:
    """``strconv.Atoi``: the int64 value of ``raw``, or None where Go refuses it."""
    if not _GO_INT.fullmatch(raw) or len(raw) > 40:  # a long run of digits is out of range anyway
        return None
    value = int(raw)
    return value if -INT64_MAX - 1 <= value <= INT64_MAX else None


def _int(q: QueryParams, name: str, default: int) -> int:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    value = go_atoi(raw)
    if value is None:
        raise BadRequestError()
    return value


def list_params(q: QueryParams) -> ListParams:
    page = _int(q, "page", 1)
    per_page = _int(q, "perPage", DEFAULT_PER_PAGE)
    skip_raw = q.get("skipTotal", "")
    if skip_raw and skip_raw not in _TRUE and skip_raw not in _FALSE:
        raise BadRequestError()
    return ListParams(
        page=page if page > 0 else 1,
        per_page=DEFAULT_PER_PAGE if per_page <= 0 else min(per_page, MAX_PER_PAGE),
        skip_total=skip_raw in _TRUE,
        sort=q.get("sort", ""),
        filter=q.get("filter", ""),
    )


_ESCAPED_HIGH_BYTE = re.compile(rb"%[89A-Fa-f][0-9A-Fa-f]")


def valid_query_encoding(raw: bytes) -> bool:
    """Whether a raw query string decodes to UTF-8 (checked fully only when it escapes a byte ≥ 0x80)."""
    if not _ESCAPED_HIGH_BYTE.search(raw) and raw.isascii():
        return True
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True

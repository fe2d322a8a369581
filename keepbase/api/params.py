"""List query parameters: page, perPage, skipTotal, sort, filter — PocketBase's rules and limits."""

from __future__ import annotations

from starlette.datastructures import QueryParams

from ..core.errors import BadRequestError
from ..store.records import DEFAULT_PER_PAGE, MAX_PER_PAGE, ListParams

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _int(q: QueryParams, name: str, default: int) -> int:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequestError() from None


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

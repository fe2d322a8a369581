"""JSON responses (orjson) with the ``fields`` projection applied to every 2xx body."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from .projection import project


def json_response(data: Any, fields: str = "", status: int = 200, *, is_list: bool = False) -> Response:
    if fields:
        data = project(data, fields, is_list=is_list)
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)

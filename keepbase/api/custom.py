"""Routes registered at runtime with ``App.route()``, mounted under ``/api/`` after the built-ins.

The route table is built once, but hooks files may register routes afterwards, so this module
contributes one ``CustomRoutes`` entry that looks the App's registered routes up on every
request. Built-in routes come first in ``ROUTE_MODULES``, so a custom route cannot shadow them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

from .deps import app_of
from .responses import json_response

_SCOPE_KEY = "kb_custom_route"


def custom_route(path: str, fn: Callable[..., Any], methods: list[str]) -> Route:
    """A Starlette route for ``fn``. ``fn(request)`` may be sync (run in a worker thread) or async,
    and may return a Response or any JSON-serialisable value (sent as 200 JSON)."""
    if not path.startswith("/"):
        path = "/" + path
    if not path.startswith("/api/"):
        path = "/api" + path

    async def endpoint(request: Request) -> Response:
        if inspect.iscoroutinefunction(fn):
            result = await fn(request)
        else:
            result = await anyio.to_thread.run_sync(fn, request, limiter=app_of(request).limiter)
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status_code=204)
        return json_response(result)

    return Route(path, endpoint, methods=[m.upper() for m in methods], name=getattr(fn, "__name__", None))


class CustomRoutes(BaseRoute):
    """Dispatches to ``app.custom_routes`` (a list of Routes owned by the App)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        app = scope.get("app")
        routes: list[Route] = getattr(getattr(getattr(app, "state", None), "keepbase", None), "custom_routes", [])
        partial: tuple[Match, Scope] | None = None
        for route in routes:
            match, child = route.matches(scope)
            if match == Match.FULL:
                return Match.FULL, {**child, _SCOPE_KEY: route}
            if match == Match.PARTIAL and partial is None:
                partial = (Match.PARTIAL, {**child, _SCOPE_KEY: route})
        return partial or (Match.NONE, {})

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: Route = scope[_SCOPE_KEY]
        await route.handle(scope, receive, send)


ROUTES = [CustomRoutes()]

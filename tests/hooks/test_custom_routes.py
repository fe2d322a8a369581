"""Custom routes registered with ``App.route``: mounted under /api/, auth through keepbase.api.deps."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from keepbase import App, NotFoundError
from keepbase.api.deps import app_of, require_auth, require_superuser
from keepbase.core.types import RequestInfo


def register(app: App) -> None:
    @app.route("/hello/{name}")
    async def hello(request: Request) -> dict[str, Any]:
        return {"hello": request.path_params["name"]}

    @app.route("/me", methods=["GET", "POST"])
    async def me(request: Request) -> dict[str, Any]:
        auth = await require_auth(request)
        return {"id": auth.id, "collection": auth.collection_name, "method": request.method}

    @app.route("/api/admin-count")  # an explicit /api/ prefix is kept as is
    async def admin_count(request: Request) -> dict[str, Any]:
        await require_superuser(request)
        kb = app_of(request)
        su = RequestInfo(auth=await require_auth(request))
        result = kb.records.list_records(kb.collections.get("_superusers"), _params(), su)
        return {"superusers": result.total_items}

    @app.route("/sync")
    def sync_handler(request: Request) -> Response:  # sync: runs in a worker thread
        return PlainTextResponse("plain")

    @app.route("/missing")
    def missing(request: Request) -> None:
        raise NotFoundError("Nothing here.")

    @app.route("/empty", methods=["DELETE"])
    def empty(request: Request) -> None:
        return None

    @app.route("/health")  # shadowed: built-in routes win
    def fake_health(request: Request) -> dict[str, Any]:
        return {"fake": True}


def _params() -> Any:
    from keepbase.store.records import ListParams

    return ListParams()


async def test_custom_routes(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    register(app)
    r = await client.get("/api/hello/world")
    assert r.status_code == 200 and r.json() == {"hello": "world"}
    r = await client.get("/api/me")
    assert r.status_code == 401
    assert r.json() == {"data": {}, "message": "The request requires valid record authorization token.",
                        "status": 401}
    r = await client.post("/api/me", headers=su_headers)
    assert r.json() == {"id": r.json()["id"], "collection": "_superusers", "method": "POST"}
    r = await client.get("/api/admin-count", headers=su_headers)
    assert r.json() == {"superusers": 1}
    r = await client.get("/api/sync")
    assert r.text == "plain"
    r = await client.get("/api/missing")
    assert r.json() == {"data": {}, "message": "Nothing here.", "status": 404}
    assert (await client.delete("/api/empty")).status_code == 204
    r = await client.put("/api/hello/x")  # wrong method → PocketBase's 404 envelope
    assert r.status_code == 404 and r.json()["status"] == 404
    assert "fake" not in (await client.get("/api/health")).text
    assert (await client.get("/api/nope")).status_code == 404
    # security headers still apply
    assert (await client.get("/api/hello/x")).headers["x-content-type-options"] == "nosniff"

"""Shared HTTP helpers for the files tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import make_collection

OPEN = {"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""}
NAME_RE = r"[a-z0-9_]+_[a-z0-9]{10}"


async def posts(client: httpx.AsyncClient, su: dict[str, str], name: str = "posts", **file_opts: Any) -> dict[str, Any]:
    """A collection with ``title``, a single file ``doc`` and a multi file ``images`` field."""
    images = {"name": "images", "type": "file", "maxSelect": 3, "thumbs": ["50x0", "20x20f"], **file_opts}
    return await make_collection(client, su, name=name, type="base", **OPEN, fields=[
        {"name": "title", "type": "text"},
        {"name": "doc", "type": "file", "maxSelect": 1},
        images,
    ])


async def create(client: httpx.AsyncClient, files: list[tuple[str, tuple[str, bytes, str]]],
                 data: dict[str, Any] | None = None, coll: str = "posts",
                 headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post(f"/api/collections/{coll}/records", data=data or {"title": "t"}, files=files,
                             headers=headers or {})


async def update(client: httpx.AsyncClient, rid: str, files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
                 data: dict[str, Any] | None = None, coll: str = "posts", **kw: Any) -> httpx.Response:
    if files is None and data is not None and "json" not in kw:
        return await client.patch(f"/api/collections/{coll}/records/{rid}", json=data, **kw)
    return await client.patch(f"/api/collections/{coll}/records/{rid}", data=data or {}, files=files or [], **kw)

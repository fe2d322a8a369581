"""Shared steps for the template tests: import a shipped template, sign up and log in."""

from __future__ import annotations

from typing import Any

import httpx

from keepbase.cli.templates import load_template

PASSWORD = "password123"


async def import_template(client: httpx.AsyncClient, su: dict[str, str], name: str) -> list[dict[str, Any]]:
    items = load_template(name)
    r = await client.put("/api/collections/import", json={"collections": items}, headers=su)
    assert r.status_code == 204, r.text
    return items


async def login(client: httpx.AsyncClient, collection: str, email: str) -> dict[str, str]:
    r = await client.post(f"/api/collections/{collection}/auth-with-password",
                          json={"identity": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": r.json()["token"]}


async def signup(client: httpx.AsyncClient, collection: str, email: str,
                 headers: dict[str, str] | None = None, **extra: Any) -> tuple[str, dict[str, str]]:
    """Create an auth record (as a guest unless ``headers``), then log it in: (id, auth headers)."""
    body = {"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD, **extra}
    r = await client.post(f"/api/collections/{collection}/records", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["id"], await login(client, collection, email)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(i["id"] for i in response.json()["items"])

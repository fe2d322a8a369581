"""Fixtures: real keepbase servers (SQLite, PostgreSQL, two nodes on one PostgreSQL) and helpers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .servers import EMAIL, PASSWORD, Server, start_server, upsert_superuser

SERVER_ENV = {"KEEPBASE_REALTIME_QUEUE_SIZE": "64", "KEEPBASE_REALTIME_PING_INTERVAL": "1"}


def _pg_url() -> tuple[str, Any]:
    from tests.pg_server import create_database, drop_database, ensure_postgres

    url = create_database(ensure_postgres())
    return url, drop_database


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One node; every test makes its own collections, so the module shares it."""
    root = tmp_path_factory.mktemp(f"rt-{request.param}")
    db_url, drop = ("", None) if request.param == "sqlite" else _pg_url()
    upsert_superuser(root / "data", db_url)
    srv = start_server(request.param, root / "data", db_url, SERVER_ENV)
    try:
        yield srv
    finally:
        srv.stop()
        if drop is not None:
            drop(db_url)


@pytest.fixture(scope="module")
def pg_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server, str]]:
    """Two ``keepbase serve`` processes sharing one PostgreSQL database."""
    root = tmp_path_factory.mktemp("rt-nodes")
    db_url, drop = _pg_url()
    upsert_superuser(root / "a", db_url)
    a = start_server("node-a", root / "a", db_url, SERVER_ENV)
    try:
        b = start_server("node-b", root / "b", db_url, SERVER_ENV)
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b, db_url
    finally:
        a.stop()
        b.stop()
        drop(db_url)


async def admin_token(base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url) as c:
        r = await c.post("/api/collections/_superusers/auth-with-password",
                         json={"identity": EMAIL, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


async def make_collection(http: httpx.AsyncClient, token: str, **payload: Any) -> dict[str, Any]:
    r = await http.post("/api/collections", json=payload, headers={"Authorization": token})
    assert r.status_code == 200, r.text
    return dict(r.json())


def base_dir() -> Path:
    return Path(__file__).resolve().parent

"""Shared fixtures: a fresh keepbase App per test on SQLite and on a real PostgreSQL server.

``app`` is parametrized over both engines; ``client`` talks HTTP to it in-process through
httpx's ASGITransport; ``su_headers`` carries a superuser token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keepbase.app import App, create_app
from keepbase.core.config import Config

SU_EMAIL = "admin@example.com"
SU_PASSWORD = "adminpass123"
ENGINES = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    from tests.pg_server import ensure_postgres

    return ensure_postgres()


def _make_app(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[App, str | None]:
    db_url = None
    if engine == "postgres":
        from tests.pg_server import create_database

        db_url = create_database(request.getfixturevalue("pg_base_url"))
    overrides = {"access_log": False}  # a module turns it on by overriding ``config_overrides``
    overrides.update(request.getfixturevalue("config_overrides"))
    cfg = Config(dir=str(tmp_path / "kb_data"), db=db_url or "", pg_pool_size=4, sqlite_readers=4, **overrides)
    return create_app(cfg), db_url


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Config values of the ``app`` fixture beyond the defaults (override in a test module)."""
    return {}


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[App]:
    kb, db_url = _make_app(engine, tmp_path, request)
    kb.upsert_superuser(SU_EMAIL, SU_PASSWORD)
    try:
        yield kb
    finally:
        kb.close()
        if db_url:
            from tests.pg_server import drop_database

            drop_database(db_url)


@pytest.fixture
async def client(app: App) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def su_headers(client: httpx.AsyncClient) -> dict[str, str]:
    r = await client.post("/api/collections/_superusers/auth-with-password",
                          json={"identity": SU_EMAIL, "password": SU_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": r.json()["token"]}


async def make_collection(client: httpx.AsyncClient, headers: dict[str, str], **payload: Any) -> dict[str, Any]:
    r = await client.post("/api/collections", json=payload, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())

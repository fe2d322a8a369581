"""Rate limits are shared by several keepbase nodes on one PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keepbase.app import App, create_app
from keepbase.core.config import Config
from keepbase.store.rate_limits import PostgresRateLimiter


@pytest.fixture
def two_nodes(tmp_path: Path, pg_base_url: str) -> Iterator[tuple[App, App]]:
    from tests.pg_server import create_database, drop_database

    url = create_database(pg_base_url)
    a = create_app(Config(dir=str(tmp_path / "a"), db=url, pg_pool_size=3))
    b = create_app(Config(dir=str(tmp_path / "b"), db=url, pg_pool_size=3))
    try:
        yield a, b
    finally:
        a.close()
        b.close()
        drop_database(url)


def test_nodes_share_one_window(two_nodes: tuple[App, App]) -> None:
    a, b = two_nodes
    assert isinstance(a.rate_limiter, PostgresRateLimiter)
    clock = [1000.0]
    a.rate_limiter.clock = b.rate_limiter.clock = lambda: clock[0]
    assert a.rate_limiter.consume("k", 2, 10) == 0
    assert b.rate_limiter.consume("k", 2, 10) == 0
    assert a.rate_limiter.consume("k", 2, 10) == 10  # the window is spent across both nodes
    assert b.rate_limiter.consume("k", 2, 10) == 10
    clock[0] += 10
    assert b.rate_limiter.consume("k", 2, 10) == 0  # refilled once the window has passed
    b.rate_limiter.release("k")
    assert a.rate_limiter.consume("k", 2, 10) == 0


async def test_settings_rule_counts_requests_to_both_nodes(two_nodes: tuple[App, App]) -> None:
    a, b = two_nodes
    a.settings.patch({"rateLimits": {"enabled": True, "rules": [
        {"label": "/api/health", "audience": "", "duration": 60, "maxRequests": 2}]}})
    b.settings.invalidate()
    statuses = []
    for app in (a, b, a):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.asgi), base_url="http://t") as c:
            statuses.append((await c.get("/api/health")).status_code)
    assert statuses == [200, 200, 429]

"""The Redis rate limiter keeps PocketBase's fixed-window semantics, shared by every limiter on one namespace."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keepbase.app import create_app
from keepbase.core.config import Config
from keepbase.security.redis_rate_limiter import RedisRateLimiter
from tests.redis_server import redis_url  # noqa: F401  (the session fixture)


@pytest.fixture
def limiters(redis_url: str) -> Iterator[tuple[RedisRateLimiter, RedisRateLimiter]]:  # noqa: F811
    namespace = f"kbtest:{secrets.token_hex(4)}"
    a, b = RedisRateLimiter(redis_url, namespace), RedisRateLimiter(redis_url, namespace)
    try:
        yield a, b
    finally:
        a.reset()
        a.close()
        b.close()


def test_window_is_shared_and_refills(limiters: tuple[RedisRateLimiter, RedisRateLimiter]) -> None:
    a, b = limiters
    assert a.consume("k", 3, 2) == 0
    assert b.consume("k", 3, 2) == 0
    assert a.consume("k", 3, 2) == 0
    assert 1 <= b.consume("k", 3, 2) <= 2  # spent across both: seconds until the window refills
    assert a.consume("other", 3, 2) == 0  # keys are independent
    deadline = time.monotonic() + 10
    while a.consume("k", 3, 2) != 0:  # whole Redis seconds: refilled within about 2 s
        assert time.monotonic() < deadline, "the window never refilled"
        time.sleep(0.2)


def test_release_gives_a_token_back(limiters: tuple[RedisRateLimiter, RedisRateLimiter]) -> None:
    a, b = limiters
    assert a.consume("k", 1, 60) == 0
    assert b.consume("k", 1, 60) > 0
    b.release("k")
    assert a.consume("k", 1, 60) == 0
    assert a.consume("k", 1, 60) > 0
    a.release("never-used")  # no window: nothing to give back, and no error
    assert a.consume("never-used", 1, 60) == 0
    a.release("never-used")
    a.release("never-used")  # never above the maximum
    assert a.consume("never-used", 1, 60) == 0
    assert a.consume("never-used", 1, 60) > 0


def test_reset_by_prefix(limiters: tuple[RedisRateLimiter, RedisRateLimiter]) -> None:
    a, b = limiters

    def spent(key: str) -> bool:
        return a.consume(key, 1, 60) > 0

    for key in ("rl:x:1", "rl:x:2", "rl*:3", "bf:1"):
        assert a.consume(key, 1, 60) == 0
    b.reset("rl*")  # the prefix is literal, not a pattern
    assert not spent("rl*:3")
    assert spent("rl:x:1")
    b.reset("rl:")
    assert not spent("rl:x:1") and not spent("rl:x:2")
    assert spent("bf:1")
    b.reset()
    assert not spent("bf:1")


def test_namespaces_are_isolated(redis_url: str) -> None:  # noqa: F811
    a = RedisRateLimiter(redis_url, f"kbtest:{secrets.token_hex(4)}")
    b = RedisRateLimiter(redis_url, f"kbtest:{secrets.token_hex(4)}")
    try:
        assert a.consume("k", 1, 60) == 0
        assert b.consume("k", 1, 60) == 0
        b.reset()
        assert a.consume("k", 1, 60) > 0
    finally:
        a.reset()
        a.close()
        b.close()


def test_idle_windows_expire(limiters: tuple[RedisRateLimiter, RedisRateLimiter]) -> None:
    a, _ = limiters
    assert a.consume("k", 5, 30) == 0
    ttl = a.client.ttl(a.prefix + "k")
    assert 0 < int(ttl) <= 30


async def test_unreachable_redis_fails_closed_with_503(tmp_path: Path) -> None:
    """Nothing listens on the Redis port: guarded requests get 503 + Retry-After, never a 500 and
    never an unlimited pass; requests no limit covers are served."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    app = create_app(Config(dir=str(tmp_path / "kb"), redis_url=dead))
    try:
        transport = httpx.ASGITransport(app=app.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://kb.test") as client:
            r = await client.post("/api/collections/users/auth-with-password",
                                  json={"identity": "a@example.com", "password": "wrong-password"})
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "5"
            assert r.json() == {"data": {}, "message": "The service is temporarily unavailable. Try again later.",
                                "status": 503}
            assert (await client.get("/api/health")).status_code == 200
    finally:
        app.close()

"""Rate limits: settings.rateLimits as PocketBase (docs 10), and keepbase's always-on brute-force limits."""

from __future__ import annotations

from typing import Any

import httpx

from keepbase.app import App
from keepbase.security.rate_limiter import MemoryRateLimiter
from tests.conftest import make_collection

Headers = dict[str, str]
PW = "password123"
VERIFIED_RULES = [
    {"label": "items:list", "audience": "@guest", "duration": 10, "maxRequests": 2},
    {"label": "*:auth", "audience": "", "duration": 3, "maxRequests": 2},
    {"label": "/api/", "audience": "", "duration": 10, "maxRequests": 300},
]


async def enable_limits(client: httpx.AsyncClient, su: Headers, rules: list[dict[str, Any]],
                        **extra: Any) -> None:
    r = await client.patch("/api/settings", json={"rateLimits": {"enabled": True, "rules": rules, **extra}},
                           headers=su)
    assert r.status_code == 200, r.text


async def user_headers(client: httpx.AsyncClient, email: str = "u1@example.com") -> Headers:
    r = await client.post("/api/collections/users/records", json={"email": email, "password": PW,
                                                                  "passwordConfirm": PW})
    assert r.status_code == 200, r.text
    r = await client.post("/api/collections/users/auth-with-password", json={"identity": email, "password": PW})
    assert r.status_code == 200, r.text
    return {"Authorization": r.json()["token"]}


async def test_verified_example(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="items", listRule="", fields=[{"name": "t", "type": "text"}])
    user = await user_headers(client)
    await enable_limits(client, su_headers, VERIFIED_RULES)
    codes = [(await client.get("/api/collections/items/records")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = await client.get("/api/collections/items/records")
    assert r.json() == {"data": {}, "message": "Too Many Requests.", "status": 429}
    assert "retry-after" not in r.headers and not any(h.startswith("x-ratelimit") for h in r.headers)
    assert r.headers["x-content-type-options"] == "nosniff"  # still inside the security headers
    assert (await client.get("/api/collections/items/records", headers=user)).status_code == 200
    bad = {"identity": "u1@example.com", "password": "wrong-password"}
    codes = [(await client.post("/api/collections/users/auth-with-password", json=bad)).status_code
             for _ in range(3)]
    assert codes == [400, 400, 429]


async def test_superusers_and_excluded_ips_are_never_limited(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="items", listRule="")
    await enable_limits(client, su_headers, [{"label": "/api/", "audience": "", "duration": 60, "maxRequests": 1}])
    for _ in range(3):
        assert (await client.get("/api/collections/items/records", headers=su_headers)).status_code == 200
    assert (await client.get("/api/collections/items/records")).status_code == 200
    assert (await client.get("/api/collections/items/records")).status_code == 429
    await enable_limits(client, su_headers, [{"label": "/api/", "audience": "", "duration": 60, "maxRequests": 1}],
                        excludedIPs=["127.0.0.0/8"])
    for _ in range(3):
        assert (await client.get("/api/collections/items/records")).status_code == 200


async def test_labels_audiences_and_selection_order(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="items", listRule="", createRule="")
    user = await user_headers(client)
    await enable_limits(client, su_headers, [
        {"label": "*:create", "audience": "@auth", "duration": 60, "maxRequests": 1},
        {"label": "POST /api/collections/items/records", "audience": "", "duration": 60, "maxRequests": 2},
        {"label": "/api/health", "audience": "", "duration": 60, "maxRequests": 1},
    ])
    # authenticated: "*:create" (collection tags come before method+path)
    codes = [(await client.post("/api/collections/items/records", json={}, headers=user)).status_code
             for _ in range(2)]
    assert codes == [200, 429]
    # guests skip the @auth rule and fall through to the exact "METHOD path" label
    codes = [(await client.post("/api/collections/items/records", json={})).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    codes = [(await client.get("/api/health")).status_code for _ in range(2)]
    assert codes == [200, 429]


async def test_trusted_proxy_header_gives_each_client_its_counter(client: httpx.AsyncClient,
                                                                  su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="items", listRule="")
    r = await client.patch("/api/settings", json={"trustedProxy": {"headers": ["X-Forwarded-For"]}},
                           headers=su_headers)
    assert r.status_code == 200, r.text
    await enable_limits(client, su_headers, [{"label": "items:list", "audience": "", "duration": 60,
                                              "maxRequests": 1}])

    async def get(ip: str) -> int:
        r = await client.get("/api/collections/items/records", headers={"X-Forwarded-For": f"6.6.6.6, {ip}"})
        return r.status_code

    assert [await get("10.0.0.1"), await get("10.0.0.1"), await get("10.0.0.2")] == [200, 429, 200]


async def test_disabled_by_default(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="items", listRule="")
    for _ in range(5):
        assert (await client.get("/api/collections/items/records")).status_code == 200


# --- keepbase's always-on brute-force limits ---

async def test_password_brute_force_per_identity_with_retry_after(client: httpx.AsyncClient) -> None:
    await user_headers(client)
    bad = {"identity": "u1@example.com", "password": "wrong-password"}
    codes = [(await client.post("/api/collections/users/auth-with-password", json=bad)).status_code
             for _ in range(11)]
    assert codes == [400] * 10 + [429]
    r = await client.post("/api/collections/users/auth-with-password",
                          json={"identity": "U1@example.com", "password": PW})
    assert r.status_code == 429  # even the right password, for this identity (case-insensitive key)
    assert 0 < int(r.headers["retry-after"]) <= 300
    assert r.json() == {"data": {}, "message": "Too Many Requests.", "status": 429}
    # another identity from the same IP is not blocked yet
    r = await client.post("/api/collections/users/auth-with-password",
                          json={"identity": "other@example.com", "password": PW})
    assert r.status_code == 400


async def test_successful_sign_ins_do_not_count(client: httpx.AsyncClient) -> None:
    await user_headers(client)
    for _ in range(15):
        r = await client.post("/api/collections/users/auth-with-password",
                              json={"identity": "u1@example.com", "password": PW})
        assert r.status_code == 200


async def test_mail_requests_limited_per_email(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.patch("/api/collections/users", json={"otp": {"enabled": True}}, headers=su_headers)
    assert r.status_code == 200
    codes = [(await client.post("/api/collections/users/request-otp", json={"email": "x@example.com"})).status_code
             for _ in range(6)]
    assert codes == [200] * 5 + [429]
    r = await client.post("/api/collections/users/request-password-reset", json={"email": "x@example.com"})
    assert r.status_code == 204  # per endpoint
    for _ in range(5):
        await client.post("/api/collections/users/request-verification", json={"email": "y@example.com"})
    r = await client.post("/api/collections/users/request-verification", json={"email": "y@example.com"})
    assert r.status_code == 429 and "retry-after" in r.headers


async def test_per_ip_limit_across_identities(app: App, client: httpx.AsyncClient) -> None:
    codes = []
    for i in range(31):
        r = await client.post("/api/collections/users/auth-with-password",
                              json={"identity": f"n{i}@example.com", "password": "wrong-password"})
        codes.append(r.status_code)
    assert codes == [400] * 30 + [429]
    assert "retry-after" in r.headers


def test_memory_limiter_window_and_release() -> None:
    now = [1000.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    assert [limiter.consume("k", 2, 10) for _ in range(3)] == [0, 0, 10]
    limiter.release("k")
    assert limiter.consume("k", 2, 10) == 0
    now[0] += 4
    assert limiter.consume("k", 2, 10) == 6
    now[0] += 6
    assert limiter.consume("k", 2, 10) == 0
    limiter.reset("k")
    assert limiter.consume("k", 1, 10) == 0

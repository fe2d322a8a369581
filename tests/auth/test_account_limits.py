"""Per-account failed sign-in limits (keepbase's ``auth.attempts``), on SQLite and PostgreSQL.

Every attempt comes from its own loopback address, so the per-address limits never apply."""

from __future__ import annotations

from itertools import count
from typing import Any

import httpx

from keepbase.app import App
from tests.auth.test_otp_mfa import PW, USERS, configure, make_user, new_otp

Headers = dict[str, str]
TOO_MANY = {"data": {}, "message": "Too Many Requests.", "status": 429}
_hosts = count(2)


async def sign_in(app: App, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST ``body`` to ``path`` from a loopback address no other request used."""
    transport = httpx.ASGITransport(app=app.asgi, client=(f"127.0.0.{next(_hosts)}", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        return await c.post(path, json=body)


async def password(app: App, identity: str, pw: str = "wrong-password") -> httpx.Response:
    return await sign_in(app, f"{USERS}/auth-with-password", {"identity": identity, "password": pw})


async def test_eleventh_attempt_from_a_new_address_is_refused(app: App, client: httpx.AsyncClient) -> None:
    user = await make_user(client)
    for _ in range(10):
        r = await password(app, user["email"])
        assert r.status_code == 400, r.text
    r = await password(app, user["email"], PW)  # even the right password, from an address never seen
    assert r.status_code == 429 and r.json() == TOO_MANY


async def test_configured_limit_per_method_reset_by_success(app: App, client: httpx.AsyncClient,
                                                            su_headers: Headers) -> None:
    user = await make_user(client)
    await configure(client, su_headers, otp={"enabled": True}, accountLimit={"maxFailures": 3, "duration": 600})
    r = await client.get(USERS, headers=su_headers)
    assert r.json()["accountLimit"] == {"maxFailures": 3, "duration": 600}
    for _ in range(2):
        assert (await password(app, user["email"])).status_code == 400
    assert (await password(app, user["email"], PW)).status_code == 200  # a success forgets the failures
    for _ in range(3):
        assert (await password(app, user["email"])).status_code == 400
    for identity in (user["email"], user["email"].upper()):  # identities are compared case-blind
        r = await password(app, identity, PW)
        assert r.status_code == 429 and r.json() == TOO_MANY
    # an unknown identity: refused after the same number of failures, with the same answer
    for _ in range(3):
        assert (await password(app, "ghost@example.com")).status_code == 400
    r = await password(app, "ghost@example.com")
    assert r.status_code == 429 and r.json() == TOO_MANY
    # the password lockout does not block the owner's OTP sign-in
    otp_id, code = new_otp(app, user)
    for _ in range(2):  # a few wrong codes first: counted for OTP only, and reset by the success
        r = await sign_in(app, f"{USERS}/auth-with-otp", {"otpId": otp_id, "password": "00000000"})
        assert r.status_code == 400
    r = await sign_in(app, f"{USERS}/auth-with-otp", {"otpId": otp_id, "password": code})
    assert r.status_code == 200, r.text
    assert r.json()["record"]["id"] == user["id"]
    # ... and OTP success does not lift the password lockout
    assert (await password(app, user["email"], PW)).status_code == 429


async def test_otp_failures_limited_per_account(app: App, client: httpx.AsyncClient, su_headers: Headers) -> None:
    user = await make_user(client)
    await configure(client, su_headers, otp={"enabled": True}, accountLimit={"maxFailures": 2})
    first, _ = new_otp(app, user)
    for _ in range(2):
        r = await sign_in(app, f"{USERS}/auth-with-otp", {"otpId": first, "password": "00000000"})
        assert r.status_code == 400
    otp_id, code = new_otp(app, user)  # a fresh OTP of the same account is refused too
    r = await sign_in(app, f"{USERS}/auth-with-otp", {"otpId": otp_id, "password": code})
    assert r.status_code == 429 and r.json() == TOO_MANY
    assert (await password(app, user["email"], PW)).status_code == 200  # password sign-in unaffected


async def test_account_limit_option_is_validated(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.patch(USERS, json={"accountLimit": {"maxFailures": -1}}, headers=su_headers)
    assert r.status_code == 400
    assert "maxFailures" in r.json()["data"]["accountLimit"]
    r = await client.get(USERS, headers=su_headers)
    assert "accountLimit" not in r.json()  # absent until set: the payload stays PocketBase's

"""OTP (request-otp / auth-with-otp) and PocketBase's MFA flow, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from sqlalchemy import update

from keepbase.app import App
from tests.auth.conftest import Mailbox, html_of

Headers = dict[str, str]
PW = "password123"
USERS = "/api/collections/users"


async def make_user(client: httpx.AsyncClient, email: str = "u1@example.com") -> dict[str, Any]:
    r = await client.post(f"{USERS}/records", json={"email": email, "password": PW, "passwordConfirm": PW})
    assert r.status_code == 200, r.text
    assert "email" not in r.json()  # a guest's sign-up response hides the private email (PocketBase)
    return {**r.json(), "email": email}


async def configure(client: httpx.AsyncClient, su: Headers, **options: Any) -> None:
    r = await client.patch(USERS, json=options, headers=su)
    assert r.status_code == 200, r.text


def new_otp(app: App, user: dict[str, Any]) -> tuple[str, str]:
    c = app.collections.get("users")
    return app.otp.create_otp(c, {"id": user["id"]}, user["email"])


async def test_otp_by_real_mail_verifies_and_resets_password(mail_app: App, client: httpx.AsyncClient,
                                                             su_headers: Headers, mailbox: Mailbox) -> None:
    user = await make_user(client)
    assert user["verified"] is False
    old = await client.post(f"{USERS}/auth-with-password", json={"identity": user["email"], "password": PW})
    old_token = old.json()["token"]
    await configure(client, su_headers, otp={"enabled": True, "length": 6})
    r = await client.post(f"{USERS}/request-otp", json={"email": user["email"]})
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["otpId"] and len(r.json()["otpId"]) == 15
    msg = mailbox.wait(1)[0]
    assert msg["To"] == user["email"] and msg["Subject"] == "OTP for Acme"
    m = re.search(r"<strong>(\d+)</strong>", html_of(msg))
    assert m and len(m.group(1)) == 6
    r = await client.post(f"{USERS}/auth-with-otp", json={"otpId": r.json()["otpId"], "password": m.group(1)})
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["record", "token"]
    assert r.json()["record"]["verified"] is True
    # unverified + MFA off: the password was replaced, so old credentials and tokens are dead
    r = await client.post(f"{USERS}/auth-with-password", json={"identity": user["email"], "password": PW})
    assert r.status_code == 400
    r = await client.post(f"{USERS}/auth-refresh", headers={"Authorization": old_token})
    assert r.status_code == 401


async def test_request_otp_errors_and_no_enumeration(app: App, client: httpx.AsyncClient,
                                                     su_headers: Headers) -> None:
    r = await client.post(f"{USERS}/request-otp", json={"email": "nobody@example.com"})
    assert r.status_code == 403
    assert r.json()["message"] == "The collection is not configured to allow OTP authentication."
    await configure(client, su_headers, otp={"enabled": True})
    r = await client.post(f"{USERS}/request-otp", json={"email": "nobody@example.com"})
    assert r.status_code == 200 and len(r.json()["otpId"]) == 15
    r = await client.post(f"{USERS}/auth-with-otp", json={"otpId": r.json()["otpId"], "password": "12345678"})
    assert r.status_code == 400
    assert r.json() == {"data": {}, "message": "Invalid or expired OTP.", "status": 400}
    r = await client.post(f"{USERS}/request-otp", json={"email": "not-an-email"})
    assert r.status_code == 400 and r.json()["data"]["email"]["code"] == "validation_is_email"
    r = await client.post(f"{USERS}/request-otp", json={})
    assert r.json()["data"]["email"]["code"] == "validation_required"
    r = await client.post(f"{USERS}/auth-with-otp", json={})
    assert r.status_code == 400
    assert {k: v["code"] for k, v in r.json()["data"].items()} == {
        "otpId": "validation_required", "password": "validation_required"}


async def test_expired_otp_rejected(app: App, client: httpx.AsyncClient, su_headers: Headers) -> None:
    await configure(client, su_headers, otp={"enabled": True})
    user = await make_user(client)
    otp_id, password = new_otp(app, user)
    table = app.otp._table()
    with app.db.write() as conn:
        conn.execute(update(table).where(table.c.id == otp_id).values(created="2020-01-01 00:00:00.000Z"))
    r = await client.post(f"{USERS}/auth-with-otp", json={"otpId": otp_id, "password": password})
    assert r.status_code == 400 and r.json()["message"] == "Invalid or expired OTP."


async def test_otp_of_another_collection_rejected(app: App, client: httpx.AsyncClient, su_headers: Headers) -> None:
    await configure(client, su_headers, otp={"enabled": True})
    r = await client.patch("/api/collections/_superusers", json={"otp": {"enabled": True}}, headers=su_headers)
    assert r.status_code == 200, r.text
    user = await make_user(client)
    otp_id, password = new_otp(app, user)
    r = await client.post("/api/collections/_superusers/auth-with-otp", json={"otpId": otp_id, "password": password})
    assert r.status_code == 400


async def test_otp_brute_force_stopped(app: App, client: httpx.AsyncClient, su_headers: Headers) -> None:
    await configure(client, su_headers, otp={"enabled": True})
    user = await make_user(client)
    otp_id, password = new_otp(app, user)
    wrong = "0" * 8 if password != "0" * 8 else "1" * 8
    for _ in range(5):
        r = await client.post(f"{USERS}/auth-with-otp", json={"otpId": otp_id, "password": wrong})
        assert r.status_code == 400
    r = await client.post(f"{USERS}/auth-with-otp", json={"otpId": otp_id, "password": password})
    assert r.status_code == 429
    assert r.json()["message"] == "Too many attempts, please try again later with a new OTP."


async def test_parallel_uses_of_one_otp_exactly_one_success(app: App, client: httpx.AsyncClient,
                                                            su_headers: Headers) -> None:
    await configure(client, su_headers, otp={"enabled": True})
    user = await make_user(client)
    otp_id, password = new_otp(app, user)
    rs = await asyncio.gather(*[client.post(f"{USERS}/auth-with-otp", json={"otpId": otp_id, "password": password})
                                for _ in range(20)])
    codes = [r.status_code for r in rs]
    assert codes.count(200) == 1, codes
    assert set(codes) <= {200, 400, 429}


def test_otp_consume_is_atomic_without_rate_limits(app: App) -> None:
    """The service, with the attempt limit out of the way: 20 threads, one OTP, one winner."""
    from concurrent.futures import ThreadPoolExecutor

    from keepbase.core.errors import ApiError

    c = app.collections.get("users")
    c.options["otp"]["enabled"] = True
    su = app.records.create_record(c, {"email": "t@example.com", "password": PW, "passwordConfirm": PW,
                                       "verified": True}, _superuser(app))
    otp_id, password = app.otp.create_otp(c, {"id": su["id"]}, "t@example.com")
    app.otp.limiter.consume = lambda *_a: 0  # type: ignore[method-assign]

    def use(_i: int) -> bool:
        try:
            app.otp.authenticate(c, otp_id, password)
            return True
        except ApiError:
            return False

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(use, range(20)))
    assert results.count(True) == 1


def _superuser(app: App) -> Any:
    from keepbase.core.types import AuthInfo, RequestInfo

    return RequestInfo(auth=AuthInfo("pbc_3142635823", "_superusers", {"id": ""}))


async def test_mfa_two_steps_password_then_otp(app: App, client: httpx.AsyncClient, su_headers: Headers) -> None:
    await configure(client, su_headers, otp={"enabled": True}, mfa={"enabled": True})
    user = await make_user(client)
    login = {"identity": user["email"], "password": PW}
    r = await client.post(f"{USERS}/auth-with-password", json=login)
    assert r.status_code == 401
    assert list(r.json()) == ["mfaId"] and len(r.json()["mfaId"]) == 15
    mfa_id = r.json()["mfaId"]
    r = await client.post(f"{USERS}/auth-with-password", json={**login, "mfaId": mfa_id})
    assert r.status_code == 400 and r.json()["message"] == "A different authentication method is required."
    otp_id, password = new_otp(app, user)
    r = await client.post(f"{USERS}/auth-with-otp?mfaId={mfa_id}", json={"otpId": otp_id, "password": password})
    assert r.status_code == 200, r.text
    assert r.json()["record"]["id"] == user["id"] and r.json()["token"]
    # single use
    otp_id, password = new_otp(app, user)
    r = await client.post(f"{USERS}/auth-with-otp", json={"otpId": otp_id, "password": password, "mfaId": mfa_id})
    assert r.status_code == 400 and r.json()["message"] == "Invalid or expired MFA session."
    # OTP as the first factor, password second; MFA on, so the password survived the OTP login
    otp_id, password = new_otp(app, user)
    r = await client.post(f"{USERS}/auth-with-otp", json={"otpId": otp_id, "password": password})
    assert r.status_code == 401
    r = await client.post(f"{USERS}/auth-with-password", json={**login, "mfaId": r.json()["mfaId"]})
    assert r.status_code == 200, r.text


async def test_mfa_session_errors(app: App, client: httpx.AsyncClient, su_headers: Headers) -> None:
    await configure(client, su_headers, otp={"enabled": True}, mfa={"enabled": True})
    u1, u2 = await make_user(client), await make_user(client, "u2@example.com")
    r = await client.post(f"{USERS}/auth-with-password", json={"identity": u1["email"], "password": PW})
    mfa_id = r.json()["mfaId"]
    otp_id, password = new_otp(app, u2)
    r = await client.post(f"{USERS}/auth-with-otp", json={"otpId": otp_id, "password": password, "mfaId": mfa_id})
    assert r.status_code == 400 and r.json()["message"] == "Invalid MFA session."
    r = await client.post(f"{USERS}/auth-with-otp", json={"otpId": otp_id, "password": password,
                                                          "mfaId": "x" * 15})
    assert r.status_code == 400  # the OTP was consumed by the previous call
    # expired session
    r = await client.post(f"{USERS}/auth-with-password", json={"identity": u1["email"], "password": PW})
    mfa_id = r.json()["mfaId"]
    table = app.mfa._table()
    with app.db.write() as conn:
        conn.execute(update(table).where(table.c.id == mfa_id).values(created="2020-01-01 00:00:00.000Z"))
    otp_id, password = new_otp(app, u1)
    r = await client.post(f"{USERS}/auth-with-otp", json={"otpId": otp_id, "password": password, "mfaId": mfa_id})
    assert r.status_code == 400 and r.json()["message"] == "Invalid or expired MFA session."


async def test_mfa_rule_selects_records(app: App, client: httpx.AsyncClient, su_headers: Headers) -> None:
    await configure(client, su_headers, otp={"enabled": True},
                    mfa={"enabled": True, "rule": "email = 'boss@example.com'"})
    await make_user(client)
    await make_user(client, "boss@example.com")
    r = await client.post(f"{USERS}/auth-with-password", json={"identity": "u1@example.com", "password": PW})
    assert r.status_code == 200, r.text
    r = await client.post(f"{USERS}/auth-with-password", json={"identity": "boss@example.com", "password": PW})
    assert r.status_code == 401 and "mfaId" in r.json()
    # refresh never asks for MFA
    r = await client.post(f"{USERS}/auth-with-password", json={"identity": "u1@example.com", "password": PW})
    r = await client.post(f"{USERS}/auth-refresh", headers={"Authorization": r.json()["token"]})
    assert r.status_code == 200


async def test_parallel_mfa_completion_exactly_one_success(app: App, client: httpx.AsyncClient,
                                                          su_headers: Headers) -> None:
    await configure(client, su_headers, otp={"enabled": True}, mfa={"enabled": True})
    user = await make_user(client)
    c = app.collections.get("users")
    mfa_id = app.mfa.begin(c, user["id"], "otp")
    login = {"identity": user["email"], "password": PW, "mfaId": mfa_id}
    rs = await asyncio.gather(*[client.post(f"{USERS}/auth-with-password", json=login) for _ in range(8)])
    codes = [r.status_code for r in rs]
    assert codes.count(200) == 1, codes

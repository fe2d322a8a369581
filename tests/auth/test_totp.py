"""TOTP second factor (keepbase addition): enrol, confirm, sign in, skew, replay, recovery codes."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pyotp

from keepbase.app import App

Headers = dict[str, str]
PW = "password123"
USERS = "/api/collections/users"
T0 = 1_800_000_000.0  # a fixed clock, at the start of a 30 s step


async def signed_in_user(client: httpx.AsyncClient, email: str = "u1@example.com") -> tuple[str, Headers]:
    r = await client.post(f"{USERS}/records", json={"email": email, "password": PW, "passwordConfirm": PW})
    assert r.status_code == 200, r.text
    r = await client.post(f"{USERS}/auth-with-password", json={"identity": email, "password": PW})
    assert r.status_code == 200, r.text
    return r.json()["record"]["id"], {"Authorization": r.json()["token"]}


async def enable_totp(app: App, client: httpx.AsyncClient, headers: Headers) -> tuple[pyotp.TOTP, list[str]]:
    app.totp.clock = lambda: T0
    r = await client.post(f"{USERS}/totp/enroll", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["uri"].startswith("otpauth://totp/") and "issuer=Acme" in r.json()["uri"]
    totp = pyotp.TOTP(r.json()["secret"])
    r = await client.post(f"{USERS}/totp/confirm", json={"code": "000000" if totp.at(T0) != "000000" else "111111"},
                          headers=headers)
    assert r.status_code == 400 and r.json()["data"]["code"]["code"] == "validation_invalid_code"
    r = await client.post(f"{USERS}/totp/confirm", json={"code": totp.at(T0)}, headers=headers)
    assert r.status_code == 200, r.text
    codes = r.json()["recoveryCodes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    return totp, codes


async def password_step(client: httpx.AsyncClient, email: str = "u1@example.com") -> str:
    r = await client.post(f"{USERS}/auth-with-password", json={"identity": email, "password": PW})
    assert r.status_code == 401, r.text
    return str(r.json()["mfaId"])


async def totp_step(client: httpx.AsyncClient, mfa_id: str, code: str) -> httpx.Response:
    return await client.post(f"{USERS}/auth-with-totp", json={"mfaId": mfa_id, "code": code})


async def test_enrol_confirm_and_sign_in_with_totp(app: App, client: httpx.AsyncClient) -> None:
    record_id, headers = await signed_in_user(client)
    r = await client.get(f"{USERS}/totp", headers=headers)
    assert r.json() == {"enabled": False, "recoveryCodes": 0}
    totp, _codes = await enable_totp(app, client, headers)
    r = await client.get(f"{USERS}/totp", headers=headers)
    assert r.json() == {"enabled": True, "recoveryCodes": 10}
    r = await client.post(f"{USERS}/totp/enroll", headers=headers)
    assert r.status_code == 400  # already enabled
    # collection MFA is off, but the record has TOTP: password alone is not enough
    mfa_id = await password_step(client)
    app.totp.clock = lambda: T0 + 30
    r = await totp_step(client, mfa_id, totp.at(T0 + 30))
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["record", "token"] and r.json()["record"]["id"] == record_id
    # never visible through the records API, and not a collection
    r = await client.get(f"{USERS}/records/{record_id}", headers=headers)
    assert not any("totp" in k.lower() or "secret" in k.lower() for k in r.json())
    r = await client.get("/api/collections/_kbTotp/records", headers=headers)
    assert r.status_code == 404


async def test_clock_skew_replay_and_wrong_codes(app: App, client: httpx.AsyncClient) -> None:
    _rid, headers = await signed_in_user(client)
    totp, _codes = await enable_totp(app, client, headers)
    now = T0 + 300
    app.totp.clock = lambda: now
    # one step behind and one ahead are accepted (each in a fresh MFA session)
    for offset in (-30, 30):
        r = await totp_step(client, await password_step(client), totp.at(now + offset))
        assert r.status_code == 200, (offset, r.text)
    # two steps away: rejected
    r = await totp_step(client, await password_step(client), totp.at(now + 90))
    assert r.status_code == 400
    # replay: the code of a step already used (or older) is refused
    app.totp.clock = lambda: now + 120
    code = totp.at(now + 120)
    assert (await totp_step(client, await password_step(client), code)).status_code == 200
    r = await totp_step(client, await password_step(client), code)
    assert r.status_code == 400 and r.json()["message"] == "Failed to authenticate."


async def test_wrong_code_rejected_then_attempts_limited(app: App, client: httpx.AsyncClient) -> None:
    _rid, headers = await signed_in_user(client)
    totp, _codes = await enable_totp(app, client, headers)
    mfa_id = await password_step(client)
    wrong = "123456" if totp.at(T0) != "123456" else "654321"
    for _ in range(5):
        assert (await totp_step(client, mfa_id, wrong)).status_code == 400
    r = await totp_step(client, mfa_id, totp.at(T0 + 30))
    assert r.status_code == 429


async def test_mfa_with_totp_needs_totp_as_one_method(app: App, client: httpx.AsyncClient,
                                                      su_headers: Headers) -> None:
    r = await client.patch(USERS, json={"otp": {"enabled": True}, "mfa": {"enabled": True}}, headers=su_headers)
    assert r.status_code == 200, r.text
    record_id, _headers = await _user_no_login(client)
    c = app.collections.get("users")
    _enable_direct(app, c, record_id)
    mfa_id = await password_step(client)
    otp_id, password = app.otp.create_otp(c, {"id": record_id}, "u1@example.com")
    r = await client.post(f"{USERS}/auth-with-otp", json={"otpId": otp_id, "password": password, "mfaId": mfa_id})
    assert r.status_code == 400 and r.json()["message"] == "A different authentication method is required."


async def _user_no_login(client: httpx.AsyncClient) -> tuple[str, Headers]:
    r = await client.post(f"{USERS}/records", json={"email": "u1@example.com", "password": PW, "passwordConfirm": PW})
    assert r.status_code == 200, r.text
    return r.json()["id"], {}


def _enable_direct(app: App, c: Any, record_id: str) -> tuple[pyotp.TOTP, list[str]]:
    app.totp.clock = lambda: T0
    secret = app.totp.enroll(c, record_id, "u1@example.com", "Acme")["secret"]
    totp = pyotp.TOTP(secret)
    codes = app.totp.confirm(c, record_id, totp.at(T0))
    assert codes is not None
    return totp, codes


async def test_recovery_code_signs_in_once(app: App, client: httpx.AsyncClient) -> None:
    _rid, headers = await signed_in_user(client)
    _totp, codes = await enable_totp(app, client, headers)
    r = await totp_step(client, await password_step(client), codes[0].upper())
    assert r.status_code == 200, r.text
    r = await totp_step(client, await password_step(client), codes[0])
    assert r.status_code == 400
    r = await client.get(f"{USERS}/totp", headers=headers)
    assert r.json()["recoveryCodes"] == 9


async def test_parallel_uses_of_one_recovery_code_exactly_one_success(app: App, client: httpx.AsyncClient) -> None:
    record_id, _headers = await _user_no_login(client)
    c = app.collections.get("users")
    _totp, codes = _enable_direct(app, c, record_id)
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _i: app.totp.use_recovery_code(c, record_id, codes[3]), range(20)))
    assert results.count(True) == 1
    # and through HTTP: 20 MFA sessions racing with one code
    mfa_ids = [app.mfa.begin(c, record_id, "password") for _ in range(20)]
    rs = await asyncio.gather(*[totp_step(client, m, codes[4]) for m in mfa_ids])
    statuses = [r.status_code for r in rs]
    assert statuses.count(200) == 1, statuses


async def test_disable_with_code_or_by_superuser(app: App, client: httpx.AsyncClient, su_headers: Headers) -> None:
    record_id, headers = await signed_in_user(client)
    totp, codes = await enable_totp(app, client, headers)
    r = await client.request("DELETE", f"{USERS}/totp", json={"code": "999999"}, headers=headers)
    assert r.status_code == 400
    app.totp.clock = lambda: T0 + 60
    r = await client.request("DELETE", f"{USERS}/totp", json={"code": totp.at(T0 + 60)}, headers=headers)
    assert r.status_code == 204
    assert (await client.post(f"{USERS}/auth-with-password",
                              json={"identity": "u1@example.com", "password": PW})).status_code == 200
    await enable_totp(app, client, headers)
    r = await client.request("DELETE", f"{USERS}/totp", json={"recordId": record_id})
    assert r.status_code == 401
    r = await client.request("DELETE", f"{USERS}/totp", json={"recordId": record_id}, headers=su_headers)
    assert r.status_code == 204
    assert not app.totp.is_enabled(app.collections.get("users"), record_id)
    assert codes  # the old codes died with the old enrolment


async def test_totp_endpoints_need_the_owner(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.post(f"{USERS}/totp/enroll")
    assert r.status_code == 401
    r = await client.post(f"{USERS}/totp/enroll", headers=su_headers)
    assert r.status_code == 403
    r = await client.post(f"{USERS}/auth-with-totp", json={})
    assert r.status_code == 400 and set(r.json()["data"]) == {"mfaId", "code"}
    r = await client.post(f"{USERS}/auth-with-totp", json={"mfaId": "x" * 15, "code": "123456"})
    assert r.status_code == 400 and r.json()["message"] == "Invalid or expired MFA session."

"""A squatter registers (unverified) with a victim's address; the victim later signs in through
OAuth2 with that address verified by the provider. As PocketBase 0.40 does (checked against the
binary): the victim gets the account, and everything the pre-registration left stops working -
its password, its tokens, every external identity it had linked, its pending MFA sessions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from sqlalchemy import select

from keepbase.app import App
from tests.auth.oidc_provider import OIDCProvider, RunningProvider
from tests.auth.test_oauth2 import REDIRECT, create_user, external_auths, password_ok, provider_config

VICTIM = "victim@example.com"


@pytest.fixture(scope="module")
def idp() -> Iterator[OIDCProvider]:
    with RunningProvider() as provider:
        yield provider


async def enable_providers(client: httpx.AsyncClient, su: dict[str, str], idp: OIDCProvider, *names: str,
                           **options: Any) -> None:
    """OAuth2 on ``users`` with one provider entry per name, all backed by the same test IdP."""
    r = await client.patch("/api/collections/users", headers=su, json={
        "oauth2": {"enabled": True, "providers": [provider_config(idp, name=n) for n in names]}, **options})
    assert r.status_code == 200, r.text


async def sign_in(client: httpx.AsyncClient, login: str, provider: str = "oidc",
                  headers: dict[str, str] | None = None) -> httpx.Response:
    r = await client.get("/api/collections/users/auth-methods")
    entry = next(p for p in r.json()["oauth2"]["providers"] if p["name"] == provider)
    res = httpx.get(entry["authURL"] + quote(REDIRECT, safe="") + "&login=" + login, follow_redirects=False)
    code = parse_qs(urlsplit(res.headers["location"]).query)["code"][0]
    return await client.post("/api/collections/users/auth-with-oauth2", headers=headers or {}, json={
        "provider": provider, "code": code, "codeVerifier": entry["codeVerifier"], "redirectURL": REDIRECT})


async def password_token(client: httpx.AsyncClient, email: str, password: str = "password123") -> str:
    r = await client.post("/api/collections/users/auth-with-password", json={"identity": email, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def token_works(client: httpx.AsyncClient, token: str) -> bool:
    r = await client.post("/api/collections/users/auth-refresh", headers={"Authorization": token})
    return r.status_code == 200


def links(app: App) -> list[tuple[str, str, str]]:
    return sorted((x["recordRef"], x["provider"], x["providerId"]) for x in external_auths(app))


async def squat(app: App, client: httpx.AsyncClient, idp: OIDCProvider, provider: str) -> tuple[str, str]:
    """The squatter registers VICTIM's address and links their own identity at ``provider``
    while signed in; (record id, squatter's token)."""
    record = await create_user(client, VICTIM)
    token = await password_token(client, VICTIM)
    idp.add_user("sub-mallory", email="mallory@evil.example", email_verified=True)
    r = await sign_in(client, "sub-mallory", provider, headers={"Authorization": token})
    assert r.status_code == 200, r.text
    assert r.json()["record"]["id"] == record["id"] and r.json()["record"]["verified"] is False
    # linking while signed in is the owner's own act: no reset
    assert await password_ok(client, VICTIM) and await token_works(client, token)
    assert links(app) == [(record["id"], provider, "sub-mallory")]
    return str(record["id"]), token


@pytest.mark.parametrize("squatter_provider", ["oidc", "oidc2"])
async def test_verified_oauth2_sign_in_takes_a_squatted_account_back(
        app: App, client: httpx.AsyncClient, su_headers: dict[str, str], idp: OIDCProvider,
        squatter_provider: str) -> None:
    await enable_providers(client, su_headers, idp, "oidc", "oidc2")
    record_id, squatter_token = await squat(app, client, idp, squatter_provider)

    idp.add_user("sub-victim", name="Victim", email=VICTIM, email_verified=True)
    r = await sign_in(client, "sub-victim")
    assert r.status_code == 200, r.text  # was 400: the squatter's link blocked the victim's
    body = r.json()
    assert body["record"]["id"] == record_id and body["meta"]["isNew"] is False
    assert body["record"]["verified"] is True
    assert await token_works(client, body["token"])

    # everything the pre-registration left is dead
    assert not await password_ok(client, VICTIM)
    assert not await token_works(client, squatter_token)
    r = await client.get(f"/api/collections/users/records/{record_id}", headers={"Authorization": squatter_token})
    assert r.status_code in (401, 404)
    assert links(app) == [(record_id, "oidc", "sub-victim")]
    # the squatter's identity now leads to an account of its own, not to the victim's
    r = await sign_in(client, "sub-mallory", squatter_provider)
    assert r.status_code == 200, r.text
    assert r.json()["record"]["id"] != record_id and r.json()["meta"]["isNew"] is True
    assert r.json()["record"]["email"] == "mallory@evil.example"
    # and the victim keeps signing in
    again = await sign_in(client, "sub-victim")
    assert again.status_code == 200 and again.json()["record"]["id"] == record_id


async def test_squatters_pending_mfa_session_is_dropped(
        app: App, client: httpx.AsyncClient, su_headers: dict[str, str], idp: OIDCProvider) -> None:
    await enable_providers(client, su_headers, idp, "oidc")
    record = await create_user(client, VICTIM)
    r = await client.patch("/api/collections/users", headers=su_headers,
                           json={"mfa": {"enabled": True}, "otp": {"enabled": True}})
    assert r.status_code == 200, r.text
    r = await client.post("/api/collections/users/auth-with-password",
                          json={"identity": VICTIM, "password": "password123"})
    assert r.status_code == 401, r.text
    squatter_mfa = r.json()["mfaId"]

    idp.add_user("sub-victim", email=VICTIM, email_verified=True)
    r = await sign_in(client, "sub-victim")
    assert r.status_code == 401, r.text  # the victim's own MFA step; the takeover is done already
    mfas = app.collections.records_table(app.collections.get("_mfas"))
    with app.db.read() as conn:
        ids = [row.id for row in conn.execute(select(mfas.c.id).where(mfas.c.recordRef == record["id"]))]
    assert squatter_mfa not in ids and len(ids) == 1
    assert links(app) == [(record["id"], "oidc", "sub-victim")]
    r = await client.post("/api/collections/users/auth-with-password",
                          json={"identity": VICTIM, "password": "password123", "mfaId": squatter_mfa})
    assert r.status_code == 400


async def test_verified_account_keeps_its_password_and_identities(
        app: App, client: httpx.AsyncClient, su_headers: dict[str, str], idp: OIDCProvider) -> None:
    """Only an *unverified* record is treated as squatted: a verified owner adding a second
    provider keeps everything."""
    await enable_providers(client, su_headers, idp, "oidc", "oidc2")
    record = await create_user(client, VICTIM)
    r = await client.patch(f"/api/collections/users/records/{record['id']}", headers=su_headers,
                           json={"verified": True})
    assert r.status_code == 200, r.text
    token = await password_token(client, VICTIM)
    idp.add_user("sub-first", email=VICTIM, email_verified=True)
    assert (await sign_in(client, "sub-first", "oidc2")).status_code == 200
    idp.add_user("sub-second", email=VICTIM, email_verified=True)
    r = await sign_in(client, "sub-second", "oidc")
    assert r.status_code == 200 and r.json()["record"]["id"] == record["id"]
    assert await password_ok(client, VICTIM) and await token_works(client, token)
    assert links(app) == sorted([(record["id"], "oidc2", "sub-first"), (record["id"], "oidc", "sub-second")])


async def test_unverified_provider_email_still_cannot_take_over(
        app: App, client: httpx.AsyncClient, su_headers: dict[str, str], idp: OIDCProvider) -> None:
    """The reverse: the squatter is at the provider, with the address unverified there."""
    await enable_providers(client, su_headers, idp, "oidc")
    owner = await create_user(client, VICTIM)
    token = await password_token(client, VICTIM)
    idp.add_user("sub-mallory", email=VICTIM, email_verified=False)
    r = await sign_in(client, "sub-mallory")
    assert r.status_code == 400, r.text  # users' email is required and the address is taken
    assert links(app) == []
    assert await password_ok(client, VICTIM) and await token_works(client, token)
    r = await client.get(f"/api/collections/users/records/{owner['id']}", headers=su_headers)
    assert r.json()["verified"] is False

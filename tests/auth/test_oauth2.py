"""OAuth2 sign-in against a real OpenID Connect provider (authlib server, RS256 ID tokens, PKCE),
on both engines: auth-methods, auth-with-oauth2, account linking rules, oauth2-redirect."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from sqlalchemy import select

from keepbase.app import App
from keepbase.security.egress import Egress
from tests.auth.oidc_provider import OIDCProvider, RunningProvider

REDIRECT = "https://app.example.com/oauth2-callback"
META_KEYS = ["expiry", "rawUser", "id", "name", "username", "avatarURL", "accessToken", "refreshToken", "email",
             "avatarUrl", "isNew"]


@pytest.fixture(scope="module")
def idp() -> Iterator[OIDCProvider]:
    with RunningProvider() as provider:
        yield provider


@pytest.fixture(autouse=True)
def _reset_users(idp: OIDCProvider) -> None:
    idp.users.clear()


def provider_config(idp: OIDCProvider, **overrides: Any) -> dict[str, Any]:
    config = {"name": "oidc", "clientId": idp.client.client_id, "clientSecret": idp.client.client_secret,
              "authURL": idp.base_url + "/authorize", "tokenURL": idp.base_url + "/token",
              "userInfoURL": idp.base_url + "/userinfo", "displayName": "Test IdP", "pkce": None, "extra": {}}
    config.update(overrides)
    return config


async def enable_oauth2(client: httpx.AsyncClient, su: dict[str, str], idp: OIDCProvider, collection: str = "users",
                        **overrides: Any) -> None:
    r = await client.patch(f"/api/collections/{collection}", headers=su,
                           json={"oauth2": {"enabled": True, "providers": [provider_config(idp, **overrides)]}})
    assert r.status_code == 200, r.text


async def start(client: httpx.AsyncClient, collection: str = "users") -> dict[str, Any]:
    r = await client.get(f"/api/collections/{collection}/auth-methods")
    assert r.status_code == 200, r.text
    providers = r.json()["oauth2"]["providers"]
    assert len(providers) == 1
    return dict(providers[0])


def consent(entry: dict[str, Any], login: str) -> str:
    """The browser part: open the authURL as ``login`` and read the code off the redirect."""
    url = entry["authURL"] + quote(REDIRECT, safe="") + "&login=" + login
    res = httpx.get(url, follow_redirects=False)
    assert res.status_code == 302, res.text
    location = res.headers["location"]
    assert location.startswith(REDIRECT)
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [entry["state"]]
    return query["code"][0]


async def sign_in(client: httpx.AsyncClient, login: str, collection: str = "users", **body: Any) -> httpx.Response:
    entry = await start(client, collection)
    code = consent(entry, login)
    payload = {"provider": "oidc", "code": code, "codeVerifier": entry["codeVerifier"], "redirectURL": REDIRECT}
    payload.update(body)
    return await client.post(f"/api/collections/{collection}/auth-with-oauth2", json=payload)


def external_auths(app: App) -> list[dict[str, Any]]:
    c = app.collections.get("_externalAuths")
    table = app.collections.records_table(c)
    with app.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table)).all()]


async def create_user(client: httpx.AsyncClient, email: str, password: str = "password123") -> dict[str, Any]:
    r = await client.post("/api/collections/users/records",
                          json={"email": email, "password": password, "passwordConfirm": password})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def password_ok(client: httpx.AsyncClient, email: str, password: str = "password123") -> bool:
    r = await client.post("/api/collections/users/auth-with-password", json={"identity": email, "password": password})
    return r.status_code == 200


async def test_providers_list(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    r = await client.get("/api/collections/meta/oauth2-providers", headers=su_headers)
    assert r.status_code == 200
    names = [p["name"] for p in r.json()]
    assert names == ["apple", "google", "microsoft", "yandex", "facebook", "instagram2", "github", "gitlab",
                     "bitbucket", "gitee", "gitea", "discord", "twitter", "kakao", "vk", "linear", "notion", "monday",
                     "lark", "box", "spotify", "trakt", "twitch", "patreon", "strava", "wakatime", "livechat",
                     "mailcow", "planningcenter", "oidc", "oidc2", "oidc3"]
    assert r.json()[0] == {"name": "apple", "displayName": "Apple", "logo": ""}
    assert (await client.get("/api/collections/meta/oauth2-providers")).status_code == 401


async def test_auth_methods_entry(client: httpx.AsyncClient, su_headers: dict[str, str], idp: OIDCProvider) -> None:
    r = await client.get("/api/collections/users/auth-methods")
    assert r.json()["oauth2"] == {"providers": [], "enabled": False}
    await enable_oauth2(client, su_headers, idp)
    r = await client.get("/api/collections/users/auth-methods")
    body = r.json()
    assert body["oauth2"]["enabled"] is True
    entry = body["oauth2"]["providers"][0]
    assert list(entry) == ["name", "displayName", "logo", "state", "authURL", "authUrl", "codeVerifier",
                           "codeChallenge", "codeChallengeMethod"]
    assert entry["name"] == "oidc" and entry["displayName"] == "Test IdP"
    assert len(entry["state"]) == 30 and len(entry["codeVerifier"]) == 43
    digest = hashlib.sha256(entry["codeVerifier"].encode()).digest()
    assert entry["codeChallenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert entry["codeChallengeMethod"] == "S256"
    assert entry["authURL"] == entry["authUrl"]
    assert entry["authURL"] == (
        f"{idp.base_url}/authorize?client_id={idp.client.client_id}&code_challenge={entry['codeChallenge']}"
        f"&code_challenge_method=S256&response_type=code&scope=openid+email+profile&state={entry['state']}"
        "&redirect_uri=")
    assert body["authProviders"] == body["oauth2"]["providers"]
    again = (await client.get("/api/collections/users/auth-methods")).json()["oauth2"]["providers"][0]
    assert again["state"] != entry["state"] and again["codeVerifier"] != entry["codeVerifier"]


async def test_full_sign_in_creates_user(app: App, client: httpx.AsyncClient, su_headers: dict[str, str],
                                         idp: OIDCProvider) -> None:
    await enable_oauth2(client, su_headers, idp)
    app.oauth2.egress = Egress(allow=frozenset({("127.0.0.1", int(urlsplit(idp.base_url).port or 0))}))
    idp.add_user("sub-alice", name="Alice Liddell", username="alice", email="alice@example.com",
                 picture=idp.base_url + "/avatar.png")
    r = await sign_in(client, "sub-alice")
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["meta", "record", "token"]
    meta = body["meta"]
    assert list(meta) == META_KEYS
    assert meta["id"] == "sub-alice" and meta["name"] == "Alice Liddell" and meta["username"] == "alice"
    assert meta["email"] == "alice@example.com" and meta["isNew"] is True
    assert meta["avatarURL"] == meta["avatarUrl"] == idp.base_url + "/avatar.png"
    assert meta["rawUser"]["sub"] == "sub-alice" and meta["rawUser"]["email_verified"] is True
    assert meta["accessToken"] and meta["refreshToken"] and meta["expiry"].endswith("Z")
    record = body["record"]
    assert record["email"] == "alice@example.com" and record["name"] == "Alice Liddell"
    assert record["verified"] is True
    assert record["avatar"].endswith(".png")  # downloaded from the provider into the file field
    links = external_auths(app)
    assert [(x["recordRef"], x["provider"], x["providerId"]) for x in links] == [(record["id"], "oidc", "sub-alice")]
    # the token works
    me = await client.get(f"/api/collections/users/records/{record['id']}", headers={"Authorization": body["token"]})
    assert me.status_code == 200
    audit = await client.get("/api/audit?action=auth_with_oauth2", headers=su_headers)
    assert audit.json()["items"][0]["recordId"] == record["id"]
    assert audit.json()["items"][0]["data"] == {"isNew": True, "method": "oauth2", "provider": "oidc"}


async def test_second_sign_in_links_same_user(app: App, client: httpx.AsyncClient, su_headers: dict[str, str],
                                              idp: OIDCProvider) -> None:
    await enable_oauth2(client, su_headers, idp)
    idp.add_user("sub-bob", name="Bob", email="bob@example.com")
    first = await sign_in(client, "sub-bob")
    assert first.status_code == 200, first.text
    idp.users["sub-bob"].name = "Robert"  # profile changes are not copied over existing records
    second = await sign_in(client, "sub-bob")
    assert second.status_code == 200, second.text
    assert second.json()["meta"]["isNew"] is False
    assert second.json()["record"]["id"] == first.json()["record"]["id"]
    assert second.json()["record"]["name"] == "Bob"
    assert len(external_auths(app)) == 1


async def test_verified_email_links_existing_password_user(app: App, client: httpx.AsyncClient,
                                                           su_headers: dict[str, str], idp: OIDCProvider) -> None:
    await enable_oauth2(client, su_headers, idp)
    existing = await create_user(client, "carol@example.com")
    assert existing["verified"] is False
    idp.add_user("sub-carol", name="Carol", email="carol@example.com", email_verified=True)
    r = await sign_in(client, "sub-carol")
    assert r.status_code == 200, r.text
    assert r.json()["record"]["id"] == existing["id"]
    assert r.json()["meta"]["isNew"] is False
    assert r.json()["record"]["verified"] is True
    # the record was unverified: whoever set its password may not be the address's owner
    assert not await password_ok(client, "carol@example.com")
    assert [x["recordRef"] for x in external_auths(app)] == [existing["id"]]


async def test_verified_email_keeps_password_of_verified_user(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                              idp: OIDCProvider) -> None:
    await enable_oauth2(client, su_headers, idp)
    existing = await create_user(client, "dave@example.com")
    r = await client.patch(f"/api/collections/users/records/{existing['id']}", headers=su_headers,
                           json={"verified": True})
    assert r.status_code == 200, r.text
    idp.add_user("sub-dave", email="dave@example.com")
    r = await sign_in(client, "sub-dave")
    assert r.status_code == 200 and r.json()["record"]["id"] == existing["id"]
    assert await password_ok(client, "dave@example.com")


async def test_unverified_email_does_not_take_over(app: App, client: httpx.AsyncClient, su_headers: dict[str, str],
                                                   idp: OIDCProvider) -> None:
    await enable_oauth2(client, su_headers, idp)
    victim = await create_user(client, "erin@example.com")
    idp.add_user("sub-mallory", name="Mallory", email="erin@example.com", email_verified=False)
    r = await sign_in(client, "sub-mallory")
    # the unverified address is dropped (as PocketBase does); users' email is required → no account
    assert r.status_code == 400, r.text
    assert external_auths(app) == []
    assert await password_ok(client, "erin@example.com")
    r = await client.get(f"/api/collections/users/records/{victim['id']}", headers=su_headers)
    assert r.json()["verified"] is False


async def test_unverified_email_creates_separate_account(app: App, client: httpx.AsyncClient,
                                                         su_headers: dict[str, str], idp: OIDCProvider) -> None:
    users = (await client.get("/api/collections/users", headers=su_headers)).json()
    fields = [dict(f, required=False) if f["name"] == "email" else f for f in users["fields"]]
    r = await client.patch("/api/collections/users", headers=su_headers, json={"fields": fields})
    assert r.status_code == 200, r.text
    await enable_oauth2(client, su_headers, idp)
    victim = await create_user(client, "frank@example.com")
    idp.add_user("sub-mallory2", name="Mallory", email="frank@example.com", email_verified=False)
    r = await sign_in(client, "sub-mallory2", createData={"email": "frank@example.com"})
    assert r.status_code == 200, r.text
    record = r.json()["record"]
    assert record["id"] != victim["id"]
    assert record["email"] == ""  # neither the provider's unverified address nor createData's
    assert r.json()["meta"]["email"] == ""
    assert await password_ok(client, "frank@example.com")
    assert [x["recordRef"] for x in external_auths(app)] == [record["id"]]


async def test_create_data_is_used(client: httpx.AsyncClient, su_headers: dict[str, str], idp: OIDCProvider) -> None:
    await enable_oauth2(client, su_headers, idp)
    idp.add_user("sub-gina", name="Gina from IdP", email="gina@example.com")
    r = await sign_in(client, "sub-gina", createData={"name": "Gina (chosen)", "password": "chosenpass1",
                                                      "passwordConfirm": "chosenpass1"})
    assert r.status_code == 200, r.text
    assert r.json()["record"]["name"] == "Gina (chosen)"  # createData wins over mappedFields
    assert await password_ok(client, "gina@example.com", "chosenpass1")
    idp.add_user("sub-gina2", email="gina2@example.com")
    bad = await sign_in(client, "sub-gina2", createData={"name": "x" * 300})
    assert bad.status_code == 400, bad.text
    assert bad.json()["data"]["name"]["code"].startswith("validation_")  # createData errors are shown


async def test_bad_code_and_verifier_rejected(app: App, client: httpx.AsyncClient, su_headers: dict[str, str],
                                              idp: OIDCProvider) -> None:
    await enable_oauth2(client, su_headers, idp)
    idp.add_user("sub-hank", email="hank@example.com")
    token_error = {"data": {}, "message": "Failed to fetch OAuth2 token.", "status": 400}
    entry = await start(client)
    code = consent(entry, "sub-hank")
    base = {"provider": "oidc", "redirectURL": REDIRECT}
    r = await client.post("/api/collections/users/auth-with-oauth2",
                          json={**base, "code": "not-a-code", "codeVerifier": entry["codeVerifier"]})
    assert (r.status_code, r.json()) == (400, token_error)
    # another request's verifier (a stolen code without its verifier) fails PKCE at the provider
    other = await start(client)
    r = await client.post("/api/collections/users/auth-with-oauth2",
                          json={**base, "code": code, "codeVerifier": other["codeVerifier"]})
    assert (r.status_code, r.json()) == (400, token_error)
    entry = await start(client)
    code = consent(entry, "sub-hank")
    r = await client.post("/api/collections/users/auth-with-oauth2", json={**base, "code": code, "codeVerifier": ""})
    assert (r.status_code, r.json()) == (400, token_error)
    entry = await start(client)
    code = consent(entry, "sub-hank")
    good = {**base, "code": code, "codeVerifier": entry["codeVerifier"]}
    assert (await client.post("/api/collections/users/auth-with-oauth2", json=good)).status_code == 200
    r = await client.post("/api/collections/users/auth-with-oauth2", json=good)  # a code is single-use
    assert (r.status_code, r.json()) == (400, token_error)
    assert len(external_auths(app)) == 1


async def test_bad_state_on_redirect(app: App, client: httpx.AsyncClient) -> None:
    # as PocketBase: a redirect to the dashboard's result page (307 for GET, 303 for POST)
    failed = "../_/#/auth/oauth2-redirect-failure"
    r = await client.get("/api/oauth2-redirect?state=unknown&code=abc")
    assert (r.status_code, r.headers["location"]) == (307, failed)
    r = await client.get("/api/oauth2-redirect?code=abc")
    assert (r.status_code, r.headers["location"]) == (307, failed)
    # a realtime client subscribed to @oauth2 gets the code, once
    rt = app.realtime
    rt_client = rt.connect("127.0.0.1")
    try:
        rt.clients.set_subscriptions(rt_client, ["@oauth2"])
        r = await client.post("/api/oauth2-redirect", data={"state": rt_client.id, "code": "the-code"})
        assert (r.status_code, r.headers["location"]) == (303, "../_/#/auth/oauth2-redirect-success")
        frame = rt_client.queue.get_nowait()
        assert frame is not None
        assert b"event:@oauth2" in frame
        assert b'"state":"' + rt_client.id.encode() + b'","code":"the-code"' in frame
        assert "@oauth2" not in rt_client.subscriptions
        r = await client.get(f"/api/oauth2-redirect?state={rt_client.id}&code=again")
        assert r.headers["location"] == failed  # unsubscribed after the first message
    finally:
        rt.disconnect(rt_client)


async def test_form_errors(client: httpx.AsyncClient, su_headers: dict[str, str], idp: OIDCProvider) -> None:
    r = await client.post("/api/collections/users/auth-with-oauth2", json={"provider": "oidc", "code": "x"})
    assert r.status_code == 403
    assert r.json()["message"] == "The collection is not configured to allow OAuth2 authentication."
    await enable_oauth2(client, su_headers, idp)
    r = await client.post("/api/collections/users/auth-with-oauth2", json={})
    assert r.status_code == 400
    assert r.json()["message"] == "An error occurred while loading the submitted data."
    assert set(r.json()["data"]) == {"provider", "code", "redirectURL"}
    r = await client.post("/api/collections/users/auth-with-oauth2",
                          json={"provider": "discord", "code": "x", "redirectURL": REDIRECT})
    assert r.json()["data"]["provider"] == {"code": "validation_invalid_provider",
                                            "message": "Provider with name discord is missing or is not enabled.",
                                            "params": {"name": "discord"}}
    r = await client.post("/api/collections/_superusers/auth-with-oauth2",
                          json={"provider": "oidc", "code": "x", "redirectURL": REDIRECT})
    assert r.status_code == 403


async def test_mfa_with_oauth2_as_first_factor(client: httpx.AsyncClient, su_headers: dict[str, str],
                                               idp: OIDCProvider) -> None:
    await enable_oauth2(client, su_headers, idp)
    await create_user(client, "ivy@example.com")
    r = await client.patch("/api/collections/users", headers=su_headers, json={"mfa": {"enabled": True}})
    assert r.status_code == 200, r.text
    idp.add_user("sub-ivy", email="ivy@example.com")
    r = await sign_in(client, "sub-ivy")
    assert r.status_code == 401 and list(r.json()) == ["mfaId"]
    mfa_id = r.json()["mfaId"]
    again = await sign_in(client, "sub-ivy", mfaId=mfa_id)
    assert again.status_code == 400
    assert again.json()["message"] == "A different authentication method is required."


async def test_discovery(client: httpx.AsyncClient, su_headers: dict[str, str], idp: OIDCProvider) -> None:
    """No URLs configured: the discovery document fills them in."""
    await enable_oauth2(client, su_headers, idp, authURL="", tokenURL="", userInfoURL="",
                        extra={"discoveryURL": idp.base_url + "/.well-known/openid-configuration"})
    idp.add_user("sub-jane", name="Jane", email="jane@example.com")
    entry = await start(client)
    assert entry["authURL"].startswith(idp.base_url + "/authorize?")
    r = await sign_in(client, "sub-jane")
    assert r.status_code == 200, r.text
    assert r.json()["record"]["email"] == "jane@example.com" and r.json()["record"]["verified"] is True


async def test_id_token_claims(client: httpx.AsyncClient, su_headers: dict[str, str], idp: OIDCProvider) -> None:
    """Without a userInfoURL the user comes from the id_token, signature checked against jwksURL."""
    extra = {"jwksURL": idp.base_url + "/jwks", "issuers": [idp.base_url]}
    await enable_oauth2(client, su_headers, idp, userInfoURL="", extra=extra)
    idp.add_user("sub-kim", name="Kim", email="kim@example.com")
    r = await sign_in(client, "sub-kim")
    assert r.status_code == 200, r.text
    raw = r.json()["meta"]["rawUser"]
    assert raw["iss"] == idp.base_url and raw["aud"] == [idp.client.client_id] and raw["sub"] == "sub-kim"
    assert r.json()["record"]["email"] == "kim@example.com"
    await enable_oauth2(client, su_headers, idp, userInfoURL="", extra={**extra, "issuers": ["https://other"]})
    r = await sign_in(client, "sub-kim")
    assert (r.status_code, r.json()["message"]) == (400, "Failed to fetch OAuth2 user.")

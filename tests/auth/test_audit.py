"""The ``_audit`` trail: sign-ins, token revocation, impersonation and account flows are logged
with who/what/when/IP, never a password, token or secret; superusers read it at GET /api/audit."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from keepbase.app import App
from tests.auth.conftest import Mailbox, token_from
from tests.auth.test_mail_flows import PASSWORD, login, make_user
from tests.conftest import SU_PASSWORD


async def audit(client: httpx.AsyncClient, su: dict[str, str], **query: str) -> list[dict[str, Any]]:
    r = await client.get("/api/audit", headers=su, params={"perPage": "200", **query})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def all_rows_text(app: App) -> str:
    with app.db.read() as conn:
        return "\n".join(repr(tuple(r)) for r in conn.execute(select(app.audit.table)).all())


def secrets_of(app: App, collection: str) -> list[str]:
    c = app.collections.get(collection)
    table = app.collections.records_table(c)
    with app.db.read() as conn:
        rows = conn.execute(select(table.c.tokenKey, table.c.password)).all()
    opts = [v["secret"] for v in c.options.values() if isinstance(v, dict) and v.get("secret")]
    return [v for r in rows for v in r] + opts


async def test_audit_endpoint_access_and_paging(app: App, client: httpx.AsyncClient,
                                                su_headers: dict[str, str]) -> None:
    r = await client.get("/api/audit")
    assert r.status_code == 401
    await make_user(client, su_headers)
    user = {"Authorization": (await login(client, "u1@example.com")).json()["token"]}
    r = await client.get("/api/audit", headers=user)
    assert r.status_code == 403
    r = await client.get("/api/audit", headers=su_headers, params={"perPage": "1"})
    body = r.json()
    assert list(body) == ["items", "page", "perPage", "totalItems", "totalPages"]
    assert body["perPage"] == 1 and len(body["items"]) == 1 and body["totalItems"] >= 2
    assert body["totalPages"] == body["totalItems"]
    item = body["items"][0]
    assert sorted(item) == ["action", "actorCollectionId", "actorId", "collectionId", "created", "data", "id",
                            "ip", "recordId", "success"]
    # newest first: the user's sign-in came after the superuser's
    assert item["action"] == "auth_with_password" and item["collectionId"] == "_pb_users_auth_"
    r = await client.get("/api/audit", headers=su_headers, params={"collectionId": "pbc_3142635823"})
    assert {i["collectionId"] for i in r.json()["items"]} == {"pbc_3142635823"}
    r = await client.get("/api/audit", headers=su_headers, params={"fields": "action"})
    assert all(list(i) == ["action"] for i in r.json()["items"])


async def test_sign_ins_are_audited_without_secrets(app: App, client: httpx.AsyncClient,
                                                    su_headers: dict[str, str]) -> None:
    user = await make_user(client, su_headers)
    assert (await login(client, "u1@example.com")).status_code == 200
    assert (await login(client, "u1@example.com", "wrong-password-1")).status_code == 400
    assert (await login(client, "ghost@example.com", "ghostpass1")).status_code == 400
    # a password typed into the identity box must not be logged
    assert (await login(client, "MySecretPass99", "whatever1")).status_code == 400
    rows = await audit(client, su_headers, collectionId="_pb_users_auth_", action="auth_with_password")
    assert [(r["success"], r["recordId"]) for r in rows] == [
        (False, ""), (False, ""), (False, user["id"]), (True, user["id"])]
    assert all(r["ip"] == "127.0.0.1" for r in rows)
    assert rows[1]["data"] == {"identity": "ghost@example.com", "method": "password",
                               "reason": "Failed to authenticate."}
    assert rows[0]["data"] == {"method": "password", "reason": "Failed to authenticate."}
    text = all_rows_text(app) + str(rows)
    for secret in ("MySecretPass99", "wrong-password-1", "ghostpass1", PASSWORD, SU_PASSWORD,
                   *secrets_of(app, "users"), *secrets_of(app, "_superusers")):
        assert secret not in text


async def test_ip_from_trusted_proxy_only(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await make_user(client, su_headers)
    spoof = {"X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6"}
    r = await client.post("/api/collections/users/auth-with-password", headers=spoof,
                          json={"identity": "u1@example.com", "password": PASSWORD})
    assert r.status_code == 200
    assert (await audit(client, su_headers, collectionId="_pb_users_auth_"))[0]["ip"] == "127.0.0.1"
    app.settings.patch({"trustedProxy": {"headers": ["X-Forwarded-For"], "useLeftmostIP": False}})
    r = await client.post("/api/collections/users/auth-with-password",
                          headers={"X-Forwarded-For": "1.2.3.4, 10.0.0.7"},
                          json={"identity": "u1@example.com", "password": PASSWORD})
    assert (await audit(client, su_headers, collectionId="_pb_users_auth_"))[0]["ip"] == "10.0.0.7"


async def test_flows_and_revocation_are_audited(mail_app: App, mailbox: Mailbox, client: httpx.AsyncClient,
                                                su_headers: dict[str, str]) -> None:
    user = await make_user(client, su_headers)
    uid = user["id"]
    await client.post("/api/collections/users/request-verification", json={"email": "u1@example.com"})
    token = token_from(mailbox.wait(1)[-1], "confirm-verification")
    assert (await client.post("/api/collections/users/confirm-verification", json={"token": token})).status_code == 204
    await client.post("/api/collections/users/request-password-reset", json={"email": "u1@example.com"})
    await client.post("/api/collections/users/request-password-reset", json={"email": "ghost@example.com"})
    reset = token_from(mailbox.wait(2)[-1], "confirm-password-reset")
    r = await client.post("/api/collections/users/confirm-password-reset",
                          json={"token": reset, "password": "newpass456", "passwordConfirm": "newpass456"})
    assert r.status_code == 204
    auth = {"Authorization": (await login(client, "u1@example.com", "newpass456")).json()["token"]}
    r = await client.post("/api/collections/users/request-email-change", headers=auth,
                          json={"newEmail": "new@example.com"})
    assert r.status_code == 204
    change = token_from(mailbox.wait(3)[-1], "confirm-email-change")
    r = await client.post("/api/collections/users/confirm-email-change",
                          json={"token": change, "password": "newpass456"})
    assert r.status_code == 204
    r = await client.post(f"/api/collections/users/impersonate/{uid}", headers=su_headers, json={"duration": 60})
    assert r.status_code == 200
    imp_token = r.json()["token"]
    # a password change through the records API revokes tokens as well
    auth = {"Authorization": (await login(client, "new@example.com", "newpass456")).json()["token"]}
    r = await client.patch(f"/api/collections/users/records/{uid}", headers=auth,
                           json={"oldPassword": "newpass456", "password": "third789x", "passwordConfirm": "third789x"})
    assert r.status_code == 200, r.text

    rows = list(reversed(await audit(client, su_headers, recordId=uid)))
    actions = [r["action"] for r in rows if r["action"] != "auth_with_password"]
    assert actions == ["request_verification", "confirm_verification", "request_password_reset",
                       "tokens_revoked", "confirm_password_reset", "request_email_change", "tokens_revoked",
                       "confirm_email_change", "impersonate", "tokens_revoked"]
    assert all(r["success"] and r["ip"] == "127.0.0.1" and r["collectionId"] == "_pb_users_auth_" for r in rows)
    revoked = [r for r in rows if r["action"] == "tokens_revoked"]
    assert [r["data"]["changed"] for r in revoked] == [["password"], ["email"], ["password"]]
    assert revoked[2]["actorId"] == uid
    imp = next(r for r in rows if r["action"] == "impersonate")
    assert imp["actorCollectionId"] == "pbc_3142635823" and imp["actorId"] and imp["data"] == {"duration": 60}
    unknown = await audit(client, su_headers, action="request_password_reset", recordId="")
    assert len(unknown) == 1 and unknown[0]["success"] is False
    text = all_rows_text(mail_app)
    for secret in (token, reset, change, imp_token, "newpass456", "third789x", PASSWORD,
                   *secrets_of(mail_app, "users")):
        assert secret not in text

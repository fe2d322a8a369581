"""Verification, password reset and email change end-to-end through a real SMTP server, plus
impersonation and the test-email endpoint, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import httpx
import orjson

from keepbase.app import App
from keepbase.security.jwt_tokens import sign
from tests.auth.conftest import APP_URL, Mailbox, html_of, text_of, token_from

PASSWORD = "userpass123"
VALIDATE = "An error occurred while validating the submitted data."


async def make_user(client: httpx.AsyncClient, su: dict[str, str], email: str = "u1@example.com",
                    **extra: Any) -> dict[str, Any]:
    r = await client.post("/api/collections/users/records", headers=su,
                          json={"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD, **extra})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/collections/users/auth-with-password",
                             json={"identity": email, "password": password})


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def token_error(r: httpx.Response, field: str = "token") -> str:
    assert r.status_code == 400, r.text
    assert r.json()["message"] == VALIDATE
    return str(r.json()["data"][field]["code"])


async def test_verification_flow(mail_app: App, mailbox: Mailbox, client: httpx.AsyncClient,
                                 su_headers: dict[str, str]) -> None:
    user = await make_user(client, su_headers, name="Bob")
    assert user["verified"] is False
    r = await client.post("/api/collections/users/request-verification", json={"email": "u1@example.com"})
    assert r.status_code == 204, r.text
    (msg,) = mailbox.wait(1)
    assert msg["To"] == "u1@example.com"
    assert msg["Subject"] == "Verify your Acme email"
    assert msg["From"] == "Support <noreply@example.com>"
    assert msg.get_content_type() == "multipart/alternative"
    token = token_from(msg, "confirm-verification")
    assert token in text_of(msg)
    c = claims(token)
    assert sorted(c) == ["collectionId", "email", "exp", "id", "type"]
    assert c["type"] == "verification" and c["email"] == "u1@example.com" and c["id"] == user["id"]
    # a second request within 2 minutes: still 204, nothing sent
    r = await client.post("/api/collections/users/request-verification", json={"email": "u1@example.com"})
    assert r.status_code == 204
    r = await client.post("/api/collections/users/confirm-verification", json={"token": token})
    assert r.status_code == 204, r.text
    r = await client.get(f"/api/collections/users/records/{user['id']}", headers=su_headers)
    assert r.json()["verified"] is True
    # PocketBase answers 204 again once verified (nothing left to do), and sends no more mails
    r = await client.post("/api/collections/users/confirm-verification", json={"token": token})
    assert r.status_code == 204
    r = await client.post("/api/collections/users/request-verification", json={"email": "u1@example.com"})
    assert r.status_code == 204
    await asyncio.sleep(0.2)
    assert len(mailbox.messages) == 1


async def test_verification_errors(mail_app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    user = await make_user(client, su_headers)
    r = await client.post("/api/collections/users/confirm-verification", json={})
    assert token_error(r) == "validation_required"
    r = await client.post("/api/collections/users/confirm-verification", json={"token": "not-a-jwt"})
    assert token_error(r) == "validation_invalid_token_claims"
    assert r.json()["data"]["token"]["message"] == "Missing email token claim."
    c = mail_app.collections.get("users")
    stored = _stored(mail_app, "users", user["id"])
    forged = sign({"collectionId": c.id, "id": user["id"], "type": "verification", "email": "u1@example.com"},
                  "wrong-key" * 8, 60)
    r = await client.post("/api/collections/users/confirm-verification", json={"token": forged})
    assert token_error(r) == "validation_invalid_token"
    key = stored["tokenKey"] + c.options["verificationToken"]["secret"]
    other = sign({"collectionId": c.id, "id": user["id"], "type": "verification", "email": "x@example.com"}, key, 60)
    r = await client.post("/api/collections/users/confirm-verification", json={"token": other})
    assert token_error(r) == "validation_token_email_mismatch"
    expired = sign({"collectionId": c.id, "id": user["id"], "type": "verification", "email": "u1@example.com"},
                   key, -10)
    r = await client.post("/api/collections/users/confirm-verification", json={"token": expired})
    assert token_error(r) == "validation_invalid_token"
    # a valid token of another type is not a verification token
    reset = sign({"collectionId": c.id, "id": user["id"], "type": "passwordReset", "email": "u1@example.com"},
                 stored["tokenKey"] + c.options["passwordResetToken"]["secret"], 60)
    r = await client.post("/api/collections/users/confirm-verification", json={"token": reset})
    assert token_error(r) == "validation_invalid_token"
    r = await client.post("/api/collections/users/request-verification", json={"email": "nope"})
    assert r.status_code == 400 and r.json()["data"]["email"]["code"] == "validation_is_email"
    for path in ("request-verification", "confirm-verification"):
        r = await client.post(f"/api/collections/_superusers/{path}", json={"email": "a@b.c"})
        assert r.status_code == 400
        assert r.json() == {"data": {}, "message": "All superusers are verified by default.", "status": 400}
    r = await client.post("/api/collections/nope/request-verification", json={"email": "a@b.c"})
    assert r.status_code == 404 and r.json()["message"] == "Missing or invalid collection context."


def _stored(app: App, collection: str, record_id: str) -> dict[str, Any]:
    from sqlalchemy import select

    c = app.collections.get(collection)
    table = app.collections.records_table(c)
    with app.db.read() as conn:
        row = conn.execute(select(table).where(table.c.id == record_id)).one()
    return dict(row._mapping)


async def test_password_reset_flow(mail_app: App, mailbox: Mailbox, client: httpx.AsyncClient,
                                   su_headers: dict[str, str]) -> None:
    user = await make_user(client, su_headers)
    old_auth = (await login(client, "u1@example.com")).json()["token"]
    r = await client.post("/api/collections/users/request-password-reset", json={"email": "u1@example.com"})
    assert r.status_code == 204, r.text
    (msg,) = mailbox.wait(1)
    assert msg["Subject"] == "Reset your Acme password" and msg["To"] == "u1@example.com"
    token = token_from(msg, "confirm-password-reset")
    assert claims(token)["type"] == "passwordReset"
    r = await client.post("/api/collections/users/confirm-password-reset",
                          json={"token": token, "password": "newpass456", "passwordConfirm": "nope"})
    assert token_error(r, "passwordConfirm") == "validation_values_mismatch"
    r = await client.post("/api/collections/users/confirm-password-reset",
                          json={"token": token, "password": "newpass456", "passwordConfirm": "newpass456"})
    assert r.status_code == 204, r.text
    assert (await login(client, "u1@example.com")).status_code == 400
    assert (await login(client, "u1@example.com", "newpass456")).status_code == 200
    # the token email matched: the record is now verified
    r = await client.get(f"/api/collections/users/records/{user['id']}", headers=su_headers)
    assert r.json()["verified"] is True
    # every earlier token died with the tokenKey: auth token and the reset token itself
    r = await client.post("/api/collections/users/auth-refresh", headers={"Authorization": old_auth})
    assert r.status_code == 401
    r = await client.post("/api/collections/users/confirm-password-reset",
                          json={"token": token, "password": "again789x", "passwordConfirm": "again789x"})
    assert token_error(r) == "validation_invalid_token"
    assert (await login(client, "u1@example.com", "newpass456")).status_code == 200


async def test_password_reset_validation(mail_app: App, client: httpx.AsyncClient,
                                         su_headers: dict[str, str]) -> None:
    user = await make_user(client, su_headers)
    r = await client.post("/api/collections/users/confirm-password-reset", json={})
    assert r.status_code == 400
    data = r.json()["data"]
    assert {k: v["code"] for k, v in data.items()} == {
        "token": "validation_required", "password": "validation_required", "passwordConfirm": "validation_required"}
    c = mail_app.collections.get("users")
    key = _stored(mail_app, "users", user["id"])["tokenKey"] + c.options["passwordResetToken"]["secret"]
    good = sign({"collectionId": c.id, "id": user["id"], "type": "passwordReset", "email": "u1@example.com"}, key, 60)
    r = await client.post("/api/collections/users/confirm-password-reset",
                          json={"token": good, "password": "short", "passwordConfirm": "short"})
    assert token_error(r, "password") == "validation_length_out_of_range"
    r = await client.post("/api/collections/_superusers/confirm-password-reset",
                          json={"token": good, "password": "newpass456", "passwordConfirm": "newpass456"})
    assert token_error(r) == "validation_token_collection_mismatch"
    r = await client.post("/api/collections/users/confirm-password-reset",
                          json={"token": 123, "password": "newpass456", "passwordConfirm": "newpass456"})
    assert r.status_code == 400 and r.json()["message"] == "An error occurred while loading the submitted data."
    r = await client.patch("/api/collections/users", headers=su_headers, json={"passwordAuth": {"enabled": False}})
    assert r.status_code == 200, r.text
    r = await client.post("/api/collections/users/request-password-reset", json={"email": "u1@example.com"})
    assert r.status_code == 400
    assert r.json()["message"] == "The collection is not configured to allow password authentication."


async def test_expired_reset_token_rejected(mail_app: App, client: httpx.AsyncClient,
                                            su_headers: dict[str, str]) -> None:
    user = await make_user(client, su_headers)
    c = mail_app.collections.get("users")
    key = _stored(mail_app, "users", user["id"])["tokenKey"] + c.options["passwordResetToken"]["secret"]
    expired = sign({"collectionId": c.id, "id": user["id"], "type": "passwordReset", "email": "u1@example.com"},
                   key, -1)
    r = await client.post("/api/collections/users/confirm-password-reset",
                          json={"token": expired, "password": "newpass456", "passwordConfirm": "newpass456"})
    assert token_error(r) == "validation_invalid_token"
    assert (await login(client, "u1@example.com")).status_code == 200


async def test_reset_token_dies_when_password_changes(mail_app: App, mailbox: Mailbox, client: httpx.AsyncClient,
                                                      su_headers: dict[str, str]) -> None:
    user = await make_user(client, su_headers)
    r = await client.post("/api/collections/users/request-password-reset", json={"email": "u1@example.com"})
    assert r.status_code == 204
    token = token_from(mailbox.wait(1)[0], "confirm-password-reset")
    auth = {"Authorization": (await login(client, "u1@example.com")).json()["token"]}
    r = await client.patch(f"/api/collections/users/records/{user['id']}", headers=auth,
                           json={"oldPassword": PASSWORD, "password": "changed123", "passwordConfirm": "changed123"})
    assert r.status_code == 200, r.text
    r = await client.post("/api/collections/users/confirm-password-reset",
                          json={"token": token, "password": "attacker1", "passwordConfirm": "attacker1"})
    assert token_error(r) == "validation_invalid_token"
    assert (await login(client, "u1@example.com", "changed123")).status_code == 200


async def test_parallel_confirms_one_token_exactly_one_success(mail_app: App, mailbox: Mailbox,
                                                               client: httpx.AsyncClient,
                                                               su_headers: dict[str, str]) -> None:
    await make_user(client, su_headers)
    r = await client.post("/api/collections/users/request-password-reset", json={"email": "u1@example.com"})
    assert r.status_code == 204
    token = token_from(mailbox.wait(1)[0], "confirm-password-reset")

    async def confirm(i: int) -> httpx.Response:
        pw = f"parallel{i:02d}x"
        return await client.post("/api/collections/users/confirm-password-reset",
                                 json={"token": token, "password": pw, "passwordConfirm": pw})

    results = await asyncio.gather(*[confirm(i) for i in range(20)])
    statuses = sorted(r.status_code for r in results)
    assert statuses == [204] + [400] * 19, [r.text for r in results]
    assert all(token_error(r) == "validation_invalid_token" for r in results if r.status_code == 400)
    winner = next(i for i, r in enumerate(results) if r.status_code == 204)
    assert (await login(client, "u1@example.com", f"parallel{winner:02d}x")).status_code == 200
    losers = [i for i in range(20) if i != winner]
    assert (await login(client, "u1@example.com", f"parallel{losers[0]:02d}x")).status_code == 400


async def test_no_enumeration(mail_app: App, mailbox: Mailbox, client: httpx.AsyncClient,
                              su_headers: dict[str, str]) -> None:
    await make_user(client, su_headers)
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    for path in ("request-password-reset", "request-verification"):
        for kind, email in (("unknown", "ghost@example.com"), ("known", "u1@example.com")):
            start = time.perf_counter()
            r = await client.post(f"/api/collections/users/{path}", json={"email": email})
            timings[kind].append(time.perf_counter() - start)
            assert r.status_code == 204 and r.content == b""
    mailbox.wait(2)
    await asyncio.sleep(0.2)
    assert sorted(m["To"] for m in mailbox.messages) == ["u1@example.com", "u1@example.com"]
    # no slow path that gives the known email away: the mail goes out in the background, so a
    # known address costs no SMTP round trip (loose bound: the test machines are shared)
    assert max(timings["known"]) < 3.0 and max(timings["unknown"]) < 3.0


async def test_links_use_app_url_not_host_header(mail_app: App, mailbox: Mailbox, client: httpx.AsyncClient,
                                                 su_headers: dict[str, str]) -> None:
    await make_user(client, su_headers)
    hostile = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http",
               "Forwarded": "host=evil.example", "Origin": "https://evil.example"}
    for path in ("request-password-reset", "request-verification"):
        r = await client.post(f"/api/collections/users/{path}", json={"email": "u1@example.com"}, headers=hostile)
        assert r.status_code == 204
    for msg in mailbox.wait(2):
        body = html_of(msg) + text_of(msg)
        assert "evil" not in body
        assert f"{APP_URL}/_/#/auth/" in body


async def test_email_change_flow(mail_app: App, mailbox: Mailbox, client: httpx.AsyncClient,
                                 su_headers: dict[str, str]) -> None:
    user = await make_user(client, su_headers)
    await make_user(client, su_headers, email="taken@example.com")
    auth = {"Authorization": (await login(client, "u1@example.com")).json()["token"]}
    r = await client.post("/api/collections/users/request-email-change", json={"newEmail": "new@example.com"})
    assert r.status_code == 401
    assert r.json()["message"] == "The request requires valid record authorization token."
    for new, code in (("", "validation_required"), ("bad", "validation_is_email"),
                      ("u1@example.com", "validation_not_in_invalid"),
                      ("taken@example.com", "validation_invalid_new_email")):
        r = await client.post("/api/collections/users/request-email-change", headers=auth, json={"newEmail": new})
        assert token_error(r, "newEmail") == code, new
    r = await client.post("/api/collections/users/request-email-change", headers=auth,
                          json={"newEmail": "new@example.com"})
    assert r.status_code == 204, r.text
    (msg,) = mailbox.wait(1)
    assert msg["To"] == "new@example.com"
    assert msg["Subject"] == "Confirm your Acme new email address"
    token = token_from(msg, "confirm-email-change")
    c = claims(token)
    assert c["type"] == "emailChange" and c["newEmail"] == "new@example.com" and c["email"] == "u1@example.com"
    r = await client.post("/api/collections/users/confirm-email-change", json={"token": token, "password": "wrong"})
    assert token_error(r, "password") == "validation_invalid_password"
    r = await client.post("/api/collections/users/confirm-email-change", json={"token": token, "password": PASSWORD})
    assert r.status_code == 204, r.text
    r = await client.get(f"/api/collections/users/records/{user['id']}", headers=su_headers)
    assert r.json()["email"] == "new@example.com" and r.json()["verified"] is True
    r = await client.post("/api/collections/users/auth-refresh", headers=auth)
    assert r.status_code == 401  # tokenKey rotated
    assert (await login(client, "new@example.com")).status_code == 200
    assert (await login(client, "u1@example.com")).status_code == 400
    r = await client.post("/api/collections/users/confirm-email-change", json={"token": token, "password": PASSWORD})
    assert token_error(r) in ("validation_invalid_token", "validation_invalid_token_email")


async def test_email_change_errors(mail_app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    user = await make_user(client, su_headers)
    await make_user(client, su_headers, email="taken@example.com")
    r = await client.post("/api/collections/users/confirm-email-change", json={})
    assert r.status_code == 400
    assert {k: v["code"] for k, v in r.json()["data"].items()} == {
        "token": "validation_required", "password": "validation_required"}
    c = mail_app.collections.get("users")
    base = {"collectionId": c.id, "id": user["id"], "type": "emailChange", "email": "u1@example.com"}
    key = _stored(mail_app, "users", user["id"])["tokenKey"] + c.options["emailChangeToken"]["secret"]
    r = await client.post("/api/collections/users/confirm-email-change",
                          json={"token": sign(base, key, 60), "password": PASSWORD})
    assert token_error(r) == "validation_invalid_token_payload"
    # a forged token never tells whether an address is registered
    forged = sign({**base, "newEmail": "taken@example.com"}, "guess" * 10, 60)
    r = await client.post("/api/collections/users/confirm-email-change", json={"token": forged, "password": PASSWORD})
    assert token_error(r) == "validation_invalid_token"
    taken = sign({**base, "newEmail": "taken@example.com"}, key, 60)
    r = await client.post("/api/collections/users/confirm-email-change", json={"token": taken, "password": PASSWORD})
    assert token_error(r) == "validation_invalid_token_email"
    # other collection's token → 403 on request; _superusers cannot use the flow
    su = su_headers
    r = await client.post("/api/collections/users/request-email-change", headers=su, json={"newEmail": "a@b.cd"})
    assert r.status_code == 403
    assert r.json()["message"] == "The request requires auth record from _superusers collection."
    r = await client.post("/api/collections/_superusers/request-email-change", headers=su, json={"newEmail": "a@b.cd"})
    assert r.status_code == 400 and r.json()["message"] == "All superusers can change their emails directly."
    r = await client.post("/api/collections/_superusers/confirm-email-change", json={"token": "x", "password": "y"})
    assert r.status_code == 400 and r.json()["message"] == "All superusers can change their emails directly."


async def test_email_change_mail_failure(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await make_user(client, su_headers)  # SMTP is not enabled in this app
    auth = {"Authorization": (await login(client, "u1@example.com")).json()["token"]}
    r = await client.post("/api/collections/users/request-email-change", headers=auth,
                          json={"newEmail": "new@example.com"})
    assert r.status_code == 400
    assert r.json() == {"data": {}, "message": "Failed to request email change.", "status": 400}


async def test_templates_editable_through_collections_api(mail_app: App, mailbox: Mailbox,
                                                          client: httpx.AsyncClient,
                                                          su_headers: dict[str, str]) -> None:
    await make_user(client, su_headers, name="Bob <b>")
    template = {"subject": "Hi {RECORD:name} from {APP_NAME}",
                "body": '<p><a href="{APP_URL}/verify?t={TOKEN}">go</a> {RECORD:email} {RECORD:tokenKey}'
                        " {RECORD:password}</p>"}
    r = await client.patch("/api/collections/users", headers=su_headers, json={"verificationTemplate": template})
    assert r.status_code == 200, r.text
    assert r.json()["verificationTemplate"] == template
    r = await client.get("/api/collections/users", headers=su_headers)
    assert r.json()["verificationTemplate"] == template
    r = await client.post("/api/collections/users/request-verification", json={"email": "u1@example.com"})
    assert r.status_code == 204
    (msg,) = mailbox.wait(1)
    assert msg["Subject"] == "Hi Bob &lt;b&gt; from Acme"
    body = html_of(msg)
    assert f'href="{APP_URL}/verify?t=' in body and "u1@example.com" in body
    # hidden fields are never substituted: no tokenKey or password hash in a mail
    assert "{RECORD:tokenKey}" in body and "{RECORD:password}" in body
    stored = _stored(mail_app, "users", msg_user_id(mail_app))
    assert stored["tokenKey"] not in body and stored["password"] not in body


def msg_user_id(app: App) -> str:
    from sqlalchemy import select

    table = app.collections.records_table(app.collections.get("users"))
    with app.db.read() as conn:
        return str(conn.execute(select(table.c.id).where(table.c.email == "u1@example.com")).scalar_one())


async def test_impersonate(mail_app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    user = await make_user(client, su_headers)
    url = f"/api/collections/users/impersonate/{user['id']}"
    r = await client.post(url)
    assert r.status_code == 401
    user_auth = {"Authorization": (await login(client, "u1@example.com")).json()["token"]}
    r = await client.post(url, headers=user_auth)
    assert r.status_code == 403
    assert r.json()["message"] == "The authorized record is not allowed to perform this action."
    r = await client.post(url, headers=su_headers, json={"duration": 100})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["record", "token"]
    assert body["record"]["id"] == user["id"] and body["record"]["email"] == "u1@example.com"
    c = claims(body["token"])
    assert c["refreshable"] is False and c["type"] == "auth" and c["id"] == user["id"]
    assert abs(c["exp"] - (time.time() + 100)) < 5
    r = await client.post("/api/collections/users/auth-refresh", headers={"Authorization": body["token"]})
    assert r.status_code == 200 and r.json()["token"] == body["token"]
    r = await client.post(url, headers=su_headers)
    assert abs(claims(r.json()["token"])["exp"] - (time.time() + 432000)) < 5
    r = await client.post(url, headers=su_headers, json={"duration": -1})
    assert token_error(r, "duration") == "validation_min_greater_equal_than_required"
    r = await client.post(url, headers=su_headers, json={"duration": "x"})
    assert r.status_code == 400 and r.json()["message"] == "An error occurred while loading the submitted data."
    r = await client.post("/api/collections/users/impersonate/missing", headers=su_headers)
    assert r.status_code == 404
    r = await client.post(f"/api/collections/nope/impersonate/{user['id']}", headers=su_headers)
    assert r.status_code == 404 and r.json()["message"] == "Missing or invalid collection context."


async def test_settings_test_email(mail_app: App, mailbox: Mailbox, client: httpx.AsyncClient,
                                   su_headers: dict[str, str]) -> None:
    r = await client.post("/api/settings/test/email", json={"email": "t@example.com", "template": "verification"})
    assert r.status_code == 401
    r = await client.post("/api/settings/test/email", headers=su_headers, json={})
    assert r.status_code == 400 and r.json()["message"] == "Failed to send the test email."
    assert {k: v["code"] for k, v in r.json()["data"].items()} == {
        "email": "validation_required", "template": "validation_required"}
    r = await client.post("/api/settings/test/email", headers=su_headers,
                          json={"email": "t@example.com", "template": "bogus"})
    assert r.json()["data"]["template"]["code"] == "validation_in_invalid"
    expected = {"verification": "Verify your Acme email", "password-reset": "Reset your Acme password",
                "email-change": "Confirm your Acme new email address", "otp": "OTP for Acme",
                "login-alert": "Login from a new location"}
    for i, (template, subject) in enumerate(expected.items()):
        r = await client.post("/api/settings/test/email", headers=su_headers,
                              json={"email": "t@example.com", "template": template, "collection": "users"})
        assert r.status_code == 204, r.text
        msgs = mailbox.wait(i + 1)
        assert msgs[-1]["Subject"] == subject and msgs[-1]["To"] == "t@example.com"
    assert "123456" in html_of(mailbox.messages[3])
    mail_app.settings.patch({"smtp": {"enabled": False}})
    r = await client.post("/api/settings/test/email", headers=su_headers,
                          json={"email": "t@example.com", "template": "verification"})
    assert r.status_code == 400
    assert r.json()["message"].startswith("Failed to send the test email. Raw error: \n")

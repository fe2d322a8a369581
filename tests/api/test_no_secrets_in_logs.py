"""No secret reaches a log: password sign-in, OTP request and sign-in, password reset, verification and
a protected file download with a file token, driven through the API; then every log store (the
``_logs`` rows, the ``_audit`` rows, the access log on stdout and every logging record) is searched
for each secret value (passwords, the OTP code, reset/verification tokens, the file token, the
auth tokens), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from keepbase.api.access_log import flush_all
from keepbase.app import App
from tests.auth.conftest import APP_URL, Mailbox, html_of, running_mailbox, token_from
from tests.conftest import SU_PASSWORD, make_collection

USERS = "/api/collections/users"
# the test's own side: its HTTP client and its SMTP server log what they send and receive
NOT_THE_SERVER = ("httpx", "httpcore", "mail.log")
PASSWORD, NEW_PASSWORD = "first-Pass-7431", "second-Pass-9182"


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"access_log": True}


@pytest.fixture
def box(app: App) -> Iterator[Mailbox]:
    with running_mailbox() as mailbox:
        app.settings.patch({"smtp": {"enabled": True, "host": "127.0.0.1", "port": mailbox.port, "tls": False},
                            "meta": {"appURL": APP_URL, "appName": "Acme", "senderAddress": "noreply@example.com"}})
        yield mailbox


def _table_text(db: Any, table: Any) -> str:
    with db.read() as conn:
        return "\n".join(repr(tuple(r)) for r in conn.execute(select(table)).all())


async def test_no_secret_in_any_log(app: App, box: Mailbox, client: httpx.AsyncClient, su_headers: dict[str, str],
                                    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: dict[str, str] = {"superuser password": SU_PASSWORD, "superuser token": su_headers["Authorization"],
                               "password": PASSWORD, "new password": NEW_PASSWORD}
    r = await client.patch(USERS, json={"otp": {"enabled": True, "length": 8}}, headers=su_headers)
    assert r.status_code == 200, r.text
    r = await client.post(f"{USERS}/records", json={"email": "u1@example.com", "password": PASSWORD,
                                                    "passwordConfirm": PASSWORD})
    assert r.status_code == 200, r.text
    user_id = r.json()["id"]

    # verification
    assert (await client.post(f"{USERS}/request-verification", json={"email": "u1@example.com"})).status_code == 204
    secrets["verification token"] = token_from(box.wait(1)[-1], "confirm-verification")
    r = await client.post(f"{USERS}/confirm-verification", json={"token": secrets["verification token"]})
    assert r.status_code == 204, r.text
    # password sign-in, a wrong attempt too
    r = await client.post(f"{USERS}/auth-with-password", json={"identity": "u1@example.com", "password": PASSWORD})
    assert r.status_code == 200, r.text
    secrets["auth token"] = r.json()["token"]
    r = await client.post(f"{USERS}/auth-with-password", json={"identity": "u1@example.com",
                                                               "password": PASSWORD + "x"})
    assert r.status_code == 400
    # OTP request and sign-in
    r = await client.post(f"{USERS}/request-otp", json={"email": "u1@example.com"})
    assert r.status_code == 200, r.text
    m = re.search(r"<strong>(\d+)</strong>", html_of(box.wait(2)[-1]))
    assert m
    secrets["otp"] = m.group(1)
    r = await client.post(f"{USERS}/auth-with-otp", json={"otpId": r.json()["otpId"], "password": secrets["otp"]})
    assert r.status_code == 200, r.text
    secrets["otp auth token"] = r.json()["token"]
    # password reset request and confirm
    assert (await client.post(f"{USERS}/request-password-reset", json={"email": "u1@example.com"})).status_code == 204
    secrets["reset token"] = token_from(box.wait(3)[-1], "confirm-password-reset")
    r = await client.post(f"{USERS}/confirm-password-reset", json={
        "token": secrets["reset token"], "password": NEW_PASSWORD, "passwordConfirm": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    # a protected file, downloaded with a file token
    await make_collection(client, su_headers, name="docs", type="base", createRule="", viewRule="owner = @request.auth.id",
                          fields=[{"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_"},
                                  {"name": "f", "type": "file", "protected": True}])
    r = await client.post("/api/collections/docs/records", data={"owner": user_id},
                          files=[("f", ("secret.txt", b"top secret", "text/plain"))])
    assert r.status_code == 200, r.text
    rec = r.json()
    r = await client.post(f"{USERS}/auth-with-password", json={"identity": "u1@example.com",
                                                               "password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    r = await client.post("/api/files/token", headers={"Authorization": r.json()["token"]})
    secrets["file token"] = r.json()["token"]
    r = await client.get(f"/api/files/docs/{rec['id']}/{rec['f']}", params={"token": secrets["file token"]})
    assert r.status_code == 200 and r.content == b"top secret"

    app.logs.writer.flush()
    flush_all()
    out = capsys.readouterr()
    stores = {"_logs": _table_text(app.logs.db, app.logs.table), "_audit": _table_text(app.db, app.audit.table),
              "log records": "\n".join(rec.getMessage() + (rec.exc_text or "") for rec in caplog.records
                                        if not rec.name.startswith(NOT_THE_SERVER)),
              "stdout/stderr": out.out + out.err}
    # the stores did record these requests (a search of empty logs would prove nothing)
    assert "/api/files/docs/" in stores["_logs"] and "token=[redacted]" in stores["stdout/stderr"]
    assert "auth_with_otp" in stores["_audit"] and "confirm_password_reset" in stores["_audit"]
    found = [f"{what} in {store}" for what, value in secrets.items() for store, text in stores.items()
             if value in text]
    assert found == []

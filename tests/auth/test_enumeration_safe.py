"""``enumerationSafe`` (keepbase's opt-in auth collection option), on SQLite and PostgreSQL:
an email change request to a taken address answers like a success and warns the address's owner."""

from __future__ import annotations

import httpx

from keepbase.app import App
from tests.auth.conftest import Mailbox, text_of
from tests.auth.test_otp_mfa import PW, USERS, configure, make_user

Headers = dict[str, str]


async def token_of(client: httpx.AsyncClient, email: str) -> str:
    r = await client.post(f"{USERS}/auth-with-password", json={"identity": email, "password": PW})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def test_email_change_to_a_taken_address(mail_app: App, client: httpx.AsyncClient, su_headers: Headers,
                                               mailbox: Mailbox) -> None:
    await make_user(client, "owner@example.com")
    await make_user(client, "prober@example.com")
    headers = {"Authorization": await token_of(client, "prober@example.com")}
    r = await client.post(f"{USERS}/request-email-change", json={"newEmail": "owner@example.com"}, headers=headers)
    assert r.status_code == 400  # off by default: PocketBase's answer
    assert r.json()["data"]["newEmail"]["code"] == "validation_invalid_new_email"
    assert "enumerationSafe" not in (await client.get(USERS, headers=su_headers)).json()
    await configure(client, su_headers, enumerationSafe=True)
    assert (await client.get(USERS, headers=su_headers)).json()["enumerationSafe"] is True
    free = await client.post(f"{USERS}/request-email-change", json={"newEmail": "fresh@example.com"},
                             headers=headers)
    taken = await client.post(f"{USERS}/request-email-change", json={"newEmail": "owner@example.com"},
                              headers=headers)
    assert (taken.status_code, taken.content) == (free.status_code, free.content) == (204, b"")
    first, notice = mailbox.wait(2)
    assert first["To"] == "fresh@example.com"
    assert notice["To"] == "owner@example.com"
    assert "Someone tried to change an account's email to your email address" in text_of(notice)
    await configure(client, su_headers, enumerationSafe=False)
    assert "enumerationSafe" not in (await client.get(USERS, headers=su_headers)).json()

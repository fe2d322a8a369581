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


async def test_duplicate_sign_up(mail_app: App, client: httpx.AsyncClient, su_headers: Headers,
                                 mailbox: Mailbox) -> None:
    owner = await make_user(client, "owner@example.com")
    body = {"email": "owner@example.com", "password": PW, "passwordConfirm": PW, "emailVisibility": True}
    r = await client.post(f"{USERS}/records", json=body)
    assert r.status_code == 400  # off by default: PocketBase's answer
    assert r.json()["data"]["email"]["code"] == "validation_not_unique"
    await configure(client, su_headers, enumerationSafe=True)
    free = await client.post(f"{USERS}/records", json=dict(body, email="fresh@example.com"))
    taken = await client.post(f"{USERS}/records", json=body)
    assert free.status_code == taken.status_code == 200, taken.text
    assert sorted(free.json()) == sorted(taken.json())  # the same shape
    assert taken.json()["email"] == "owner@example.com" and taken.json()["id"] != owner["id"]
    # nothing was stored: the decoy's id exists nowhere, and the owner's record is as it was
    listed = (await client.get(f"{USERS}/records?perPage=100", headers=su_headers)).json()["items"]
    assert sorted(i["email"] for i in listed) == ["fresh@example.com", "owner@example.com"]
    assert taken.json()["id"] not in {i["id"] for i in listed}
    notice = mailbox.wait(1)[-1]
    assert notice["To"] == "owner@example.com"
    assert "Someone tried to sign up with your email address" in text_of(notice)
    # another error still answers as PocketBase does (only a taken address is hidden)
    bad = await client.post(f"{USERS}/records", json=dict(body, passwordConfirm="different-password"))
    assert bad.status_code == 400 and list(bad.json()["data"]) == ["passwordConfirm"]
    # superusers see the real error
    su = await client.post(f"{USERS}/records", json=body, headers=su_headers)
    assert su.status_code == 400 and su.json()["data"]["email"]["code"] == "validation_not_unique"

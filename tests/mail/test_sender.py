"""The Mailer: SMTP error classes against a real SMTP server, and the sendmail fallback (a
real fake ``sendmail`` process) when SMTP is disabled, as PocketBase's mail client does."""

from __future__ import annotations

import logging
from email import message_from_bytes
from email.header import decode_header, make_header
from email.policy import default as default_policy
from typing import Any

import httpx
import pytest

from keepbase.app import App
from keepbase.mail.sender import NO_SENDMAIL, Mailer, MailError, Message, NoTransportError

from .conftest import FakeSendmail, ScriptedSmtp, free_port

NO_SMTP = {"smtp": {"enabled": False}, "meta": {"senderName": "Acme Support", "senderAddress": "noreply@example.com"}}


def _no_smtp() -> dict[str, Any]:
    return NO_SMTP


def test_sendmail_gets_the_message_like_pocketbase(sendmail: FakeSendmail) -> None:
    Mailer(_no_smtp).send(Message(to=["a@example.com", "b@example.com"], subject="Grüße", html="<p>Hi</p>",
                                  text="Hi"))
    ((args, raw),) = sendmail.wait(1)
    assert args == "-i -t"  # recipients come from the To header (PocketBase 0.40.6 does the same)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [  # Go's sorted http.Header, CRLF line ends
        b"Content-Type: text/html; charset=UTF-8",
        b'From: "Acme Support" <noreply@example.com>',
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=",
        b"To: a@example.com,b@example.com",
    ]
    assert body == b"<p>Hi</p>"
    parsed = message_from_bytes(raw, policy=default_policy)
    assert str(make_header(decode_header(str(parsed["Subject"])))) == "Grüße"


def test_sendmail_text_only_message(sendmail: FakeSendmail) -> None:
    Mailer(_no_smtp).send(Message(to=["a@example.com"], subject="Plain", html="", text="just text"))
    ((_args, raw),) = sendmail.wait(1)
    assert raw.endswith(b"\r\n\r\njust text")


def test_sendmail_exit_status(sendmail: FakeSendmail) -> None:
    sendmail.exit_code = 75  # EX_TEMPFAIL: the local MTA asks to try again later
    sendmail.install()
    with pytest.raises(MailError) as info:
        Mailer(_no_smtp).send(Message(to=["a@example.com"], subject="s", html="h"))
    assert str(info.value) == "exit status 75" and info.value.transient
    sendmail.exit_code = 1
    sendmail.install()
    with pytest.raises(MailError) as info:
        Mailer(_no_smtp).send(Message(to=["a@example.com"], subject="s", html="h"))
    assert str(info.value) == "exit status 1" and not info.value.transient


def test_no_transport_is_logged_once(no_sendmail: None, caplog: pytest.LogCaptureFixture) -> None:
    mailer = Mailer(_no_smtp)
    with caplog.at_level(logging.ERROR, logger="keepbase.mail"):
        for _ in range(3):
            with pytest.raises(NoTransportError) as info:
                mailer.send(Message(to=["a@example.com"], subject="s", html="h"))
            assert str(info.value) == NO_SENDMAIL and not info.value.transient
    lines = [r.getMessage() for r in caplog.records if r.name == "keepbase.mail"]
    assert len(lines) == 1 and "SMTP is disabled" in lines[0] and "sendmail" in lines[0]


def test_smtp_reply_classes(smtp: ScriptedSmtp, smtp_mailer: Mailer) -> None:
    smtp.replies = ["451 4.3.0 try again later", "550 5.1.1 no such user"]
    with pytest.raises(MailError) as info:
        smtp_mailer.send(Message(to=["a@example.com"], subject="s", html="h"))
    assert info.value.transient and "451" in str(info.value)
    with pytest.raises(MailError) as info:
        smtp_mailer.send(Message(to=["a@example.com"], subject="s", html="h"))
    assert not info.value.transient and "550" in str(info.value)
    smtp_mailer.send(Message(to=["a@example.com"], subject="s", html="h"))
    assert smtp.delivered == ["a@example.com"]


def test_smtp_connection_refused_is_transient() -> None:
    port = free_port()  # nothing listens there
    mailer = Mailer(lambda: {"smtp": {"enabled": True, "host": "127.0.0.1", "port": port}, "meta": {}}, timeout=2)
    with pytest.raises(MailError) as info:
        mailer.send(Message(to=["a@example.com"], subject="s", html="h"))
    assert info.value.transient and "ConnectionRefusedError" in str(info.value)


# --- through the HTTP API, on both engines ---

async def _user(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    r = await client.post("/api/collections/users/records", headers=su, json={
        "email": "u1@example.com", "password": "userpass123", "passwordConfirm": "userpass123"})
    assert r.status_code == 200, r.text


async def test_auth_mails_go_through_sendmail_when_smtp_is_off(app: App, client: httpx.AsyncClient,
                                                               su_headers: dict[str, str],
                                                               sendmail: FakeSendmail) -> None:
    app.settings.patch({"meta": {"appName": "Acme", "appURL": "https://app.example.com"}})
    assert not app.settings.get()["smtp"]["enabled"]
    await _user(client, su_headers)
    r = await client.post("/api/collections/users/request-verification", json={"email": "u1@example.com"})
    assert r.status_code == 204
    ((args, raw),) = sendmail.wait(1)
    assert args == "-i -t"
    assert b"To: u1@example.com\r\n" in raw and b"Subject: Verify your Acme email\r\n" in raw
    assert b"https://app.example.com/_/#/auth/confirm-verification/" in raw
    r = await client.post("/api/settings/test/email", headers=su_headers,
                          json={"email": "t@example.com", "template": "password-reset", "collection": "users"})
    assert r.status_code == 204, r.text
    assert b"To: t@example.com\r\n" in sendmail.wait(2)[1][1]
    assert app.accounts.queue_size() == 0


async def test_without_smtp_or_sendmail(app: App, client: httpx.AsyncClient, su_headers: dict[str, str],
                                        no_sendmail: None, caplog: pytest.LogCaptureFixture) -> None:
    await _user(client, su_headers)
    with caplog.at_level(logging.DEBUG, logger="keepbase.mail"):
        r = await client.post("/api/settings/test/email", headers=su_headers,
                              json={"email": "t@example.com", "template": "verification"})
        # checked on PocketBase 0.40.6 with no sendmail installed
        assert r.json() == {"data": {}, "status": 400, "message":
                            "Failed to send the test email. Raw error: \nfailed to locate a sendmail executable path."}
        for path in ("request-verification", "request-password-reset"):
            r = await client.post(f"/api/collections/users/{path}", json={"email": "u1@example.com"})
            assert r.status_code == 204  # as PocketBase: the mail is sent in the background
        assert app.accounts.mail_queue.flush(10)
    assert app.accounts.mail_queue.failed == 2 and app.accounts.mail_queue.sent == 0
    # one line says why mail is not going out; the dropped mails themselves only at debug level
    (line,) = [r for r in caplog.records if r.name == "keepbase.mail" and r.levelno >= logging.WARNING]
    assert "SMTP is disabled in the settings and no sendmail executable was found" in line.getMessage()
    # request-email-change sends synchronously and says so, like PocketBase
    token = (await client.post("/api/collections/users/auth-with-password",
                               json={"identity": "u1@example.com", "password": "userpass123"})).json()["token"]
    r = await client.post("/api/collections/users/request-email-change", headers={"Authorization": token},
                          json={"newEmail": "new@example.com"})
    assert r.json() == {"data": {}, "message": "Failed to request email change.", "status": 400}

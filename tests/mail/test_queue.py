"""The MailQueue against a real SMTP server (aiosmtpd) whose replies each test scripts:
retries with backoff on 4xx and refused connections, no retry on 5xx, the size bound, the
per-client/per-recipient cap and round-robin order, and draining on close."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest

from keepbase.app import App
from keepbase.mail.queue import MailQueue
from keepbase.mail.sender import Mailer, MailError, Message

from .conftest import ScriptedSmtp, free_port


def mail(to: str) -> Message:
    return Message(to=[to], subject="Hello", html="<p>hi</p>")


def wait_until(check: object, timeout: float = 10.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_transient_reply_is_retried_with_backoff(smtp: ScriptedSmtp, smtp_mailer: Mailer) -> None:
    smtp.replies = ["451 4.7.1 greylisted", "421 4.3.2 busy"]
    queue = MailQueue(smtp_mailer.send, backoff=0.2, attempts=4)
    started = time.monotonic()
    assert queue.submit(mail("a@example.com"), client="10.0.0.1", what="verification")
    assert smtp.wait_delivered(1) == ["a@example.com"]
    assert smtp.attempts == 3
    assert time.monotonic() - started >= 0.2 + 0.4  # waited 0.2 s, then 0.4 s
    assert queue.sent == 1 and queue.failed == 0
    assert queue.flush(5) and len(queue) == 0
    queue.close(1)


def test_permanent_reply_is_not_retried(smtp: ScriptedSmtp, smtp_mailer: Mailer,
                                        caplog: pytest.LogCaptureFixture) -> None:
    smtp.replies = ["550 5.1.1 no such user"]
    failures: list[MailError] = []
    queue = MailQueue(smtp_mailer.send, backoff=0.05)
    with caplog.at_level(logging.ERROR, logger="keepbase.mail"):
        assert queue.submit(mail("gone@example.com"), what="password reset", on_failure=failures.append)
        assert queue.flush(5)
    assert smtp.attempts == 1 and smtp.delivered == []
    assert queue.failed == 1 and len(failures) == 1 and "550" in str(failures[0])
    assert any("failed to send the password reset email to gone@example.com after 1 try" in r.getMessage()
               for r in caplog.records)
    queue.close(1)


def test_transient_failures_give_up_after_the_last_attempt(smtp: ScriptedSmtp, smtp_mailer: Mailer) -> None:
    smtp.replies = ["452 4.2.2 mailbox full"] * 10
    queue = MailQueue(smtp_mailer.send, backoff=0.05, attempts=3)
    queue.submit(mail("a@example.com"))
    assert queue.flush(5)
    assert smtp.attempts == 3 and queue.failed == 1 and queue.sent == 0
    queue.close(1)


def test_refused_connection_is_retried_until_the_server_is_back() -> None:
    server = ScriptedSmtp(free_port())  # not started yet: connections are refused
    queue = MailQueue(Mailer(server.settings, timeout=2).send, backoff=0.3, attempts=5)
    try:
        queue.submit(mail("a@example.com"))
        time.sleep(0.1)
        assert len(queue) == 1  # waiting for its retry
        server.start()
        assert server.wait_delivered(1) == ["a@example.com"]
        assert queue.flush(5) and queue.sent == 1
    finally:
        queue.close(1)
        server.stop()


def test_bounded_and_fair(smtp: ScriptedSmtp, smtp_mailer: Mailer, caplog: pytest.LogCaptureFixture) -> None:
    smtp.gate.clear()  # the server holds every mail: nothing leaves the queue
    queue = MailQueue(smtp_mailer.send, max_size=8, max_per_key=3, workers=1)
    with caplog.at_level(logging.WARNING, logger="keepbase.mail"):
        # one client floods: 3 mails are accepted, the rest are dropped
        accepted = [queue.submit(mail(f"spam{i}@example.com"), client="203.0.113.66") for i in range(6)]
        assert accepted == [True] * 3 + [False] * 3
        # many clients flooding one recipient: capped the same way
        accepted = [queue.submit(mail("victim@example.com"), client=f"198.51.100.{i}") for i in range(5)]
        assert accepted == [True] * 3 + [False] * 2
        # everybody else still gets in, until the queue is full
        assert queue.submit(mail("bob@example.com"), client="192.0.2.7")
        assert queue.submit(mail("carol@example.com"), client="192.0.2.8")
        assert len(queue) == 8
        assert not queue.submit(mail("dave@example.com"), client="192.0.2.9")
    assert queue.dropped == 6
    drops = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dropped")]
    assert len(drops) == 6 and any("queue is full (8 mails waiting)" in d for d in drops)
    smtp.gate.set()
    delivered = smtp.wait_delivered(8)
    # round-robin over clients: the flooder gets one turn per round, so its last mail waits behind
    # everybody else's (whether its 2nd goes before them depends on when the worker took its 1st)
    assert delivered[0] == "spam0@example.com" and delivered[-1] == "spam2@example.com"
    assert delivered.index("bob@example.com") < delivered.index("spam2@example.com")
    assert queue.flush(5) and len(queue) == 0
    assert queue.submit(mail("spam9@example.com"), client="203.0.113.66")  # the cap counts waiting mail only
    queue.close(5)


def test_close_sends_pending_mail_and_is_bounded(smtp: ScriptedSmtp, smtp_mailer: Mailer) -> None:
    smtp.gate.clear()
    queue = MailQueue(smtp_mailer.send)
    for i in range(3):
        queue.submit(mail(f"u{i}@example.com"), client=f"10.0.0.{i}")
    threading.Timer(0.3, smtp.gate.set).start()
    assert queue.close(10) is True
    assert sorted(smtp.delivered) == ["u0@example.com", "u1@example.com", "u2@example.com"]
    assert not queue.submit(mail("late@example.com"))  # closed
    # a server that never answers: close gives up after its timeout
    smtp.gate.clear()
    stuck = MailQueue(smtp_mailer.send)
    stuck.submit(mail("x@example.com"))
    started = time.monotonic()
    assert stuck.close(0.5) is False
    assert time.monotonic() - started < 2.5
    smtp.gate.set()


def test_close_retries_waiting_mail_at_once(smtp: ScriptedSmtp, smtp_mailer: Mailer) -> None:
    smtp.replies = ["451 later"]
    queue = MailQueue(smtp_mailer.send, backoff=60)  # the retry would come a minute later
    queue.submit(mail("a@example.com"))
    wait_until(lambda: smtp.attempts == 1)
    started = time.monotonic()
    assert queue.close(10)
    assert time.monotonic() - started < 5 and smtp.delivered == ["a@example.com"]


async def test_app_close_flushes_the_auth_mail_queue(app: App, client: httpx.AsyncClient,
                                                     su_headers: dict[str, str], smtp: ScriptedSmtp) -> None:
    app.settings.patch(smtp.settings())
    for i in range(3):
        r = await client.post("/api/collections/users/records", headers=su_headers, json={
            "email": f"u{i}@example.com", "password": "userpass123", "passwordConfirm": "userpass123"})
        assert r.status_code == 200
    smtp.gate.clear()
    for i in range(3):
        r = await client.post("/api/collections/users/request-password-reset", json={"email": f"u{i}@example.com"})
        assert r.status_code == 204
    assert app.accounts.queue_size() == 3
    threading.Timer(0.3, smtp.gate.set).start()
    assert app.accounts.close(timeout=10)
    assert sorted(smtp.delivered) == ["u0@example.com", "u1@example.com", "u2@example.com"]
    assert app.accounts.queue_size() == 0


async def test_otp_mails_use_the_queue(app: App, client: httpx.AsyncClient, su_headers: dict[str, str],
                                       smtp: ScriptedSmtp) -> None:
    app.settings.patch(smtp.settings())
    r = await client.patch("/api/collections/users", headers=su_headers, json={"otp": {"enabled": True}})
    assert r.status_code == 200, r.text
    for name in ("a", "b"):
        r = await client.post("/api/collections/users/records", headers=su_headers, json={
            "email": f"{name}@example.com", "password": "userpass123", "passwordConfirm": "userpass123"})
        assert r.status_code == 200
    smtp.gate.clear()
    r = await client.post("/api/collections/users/request-otp", json={"email": "a@example.com"})
    assert r.status_code == 200
    assert app.accounts.queue_size() == 1  # queued, not on a thread of its own
    smtp.gate.set()
    assert smtp.wait_delivered(1) == ["a@example.com"]
    # a permanent failure deletes the OTP nobody received
    smtp.replies = ["550 5.1.1 no such user"]
    r = await client.post("/api/collections/users/request-otp", json={"email": "b@example.com"})
    otp_id = r.json()["otpId"]
    assert app.accounts.mail_queue.flush(10)

    async def otp_ids() -> list[str]:
        r = await client.get("/api/collections/_otps/records", headers=su_headers)
        assert r.status_code == 200, r.text
        return [item["id"] for item in r.json()["items"]]

    assert otp_id not in await otp_ids() and len(await otp_ids()) == 1

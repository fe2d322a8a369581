"""A real SMTP server (aiosmtpd) on a free port, and an app whose settings send mail to it."""

from __future__ import annotations

import email
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from keepbase.app import App

APP_URL = "https://app.example.com"


class Mailbox:
    """Every message the SMTP server accepted, parsed; thread-safe."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._lock = threading.Lock()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        msg = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        with self._lock:
            self.messages.append(msg)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} mail(s), got {len(self.messages)}")

    def last(self) -> EmailMessage:
        with self._lock:
            return self.messages[-1]


def html_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def token_from(msg: EmailMessage, route: str) -> str:
    """The token of the ``{APP_URL}/_/#/auth/<route>/<token>`` link in a mail."""
    m = re.search(re.escape(APP_URL) + r"/_/#/auth/" + re.escape(route) + r"/([A-Za-z0-9._-]+)", html_of(msg))
    assert m, html_of(msg)
    return m.group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on a free local port, collecting what it receives."""
    box = Mailbox(_free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with running_mailbox() as box:
        yield box


@pytest.fixture
def mail_app(app: App, mailbox: Mailbox) -> App:
    """``app`` with SMTP pointed at ``mailbox`` and ``meta.appURL`` = APP_URL."""
    app.settings.patch({"smtp": {"enabled": True, "host": "127.0.0.1", "port": mailbox.port, "tls": False},
                        "meta": {"appURL": APP_URL, "appName": "Acme", "senderAddress": "noreply@example.com"}})
    return app


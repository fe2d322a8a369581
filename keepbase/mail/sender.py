"""Send mail over SMTP (stdlib ``smtplib``) using the ``smtp`` and ``meta`` settings."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any


class MailError(Exception):
    """Sending failed; the message is safe to log (no credentials)."""


@dataclass
class Message:
    to: list[str]
    subject: str
    html: str
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class Mailer:
    """Builds and sends messages. ``settings`` is called at send time so changes apply at once."""

    def __init__(self, settings: Callable[[], dict[str, Any]], timeout: float = 15.0) -> None:
        self._settings = settings
        self.timeout = timeout

    def send(self, message: Message) -> None:
        s = self._settings()
        smtp, meta = s.get("smtp", {}), s.get("meta", {})
        msg = EmailMessage()
        msg["From"] = formataddr((meta.get("senderName", ""), meta.get("senderAddress", "")))
        msg["To"] = ", ".join(message.to)
        msg["Subject"] = message.subject
        msg["Message-ID"] = make_msgid()
        for key, value in message.headers.items():
            msg[key] = value
        msg.set_content(message.text or "This message requires an HTML capable mail client.")
        msg.add_alternative(message.html, subtype="html")
        if not smtp.get("enabled"):
            raise MailError("SMTP is not enabled in the settings.")
        host, port = str(smtp.get("host", "")), int(smtp.get("port") or 25)
        try:
            if smtp.get("tls") and port == 465:
                client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=self.timeout,
                                                        context=ssl.create_default_context(),
                                                        local_hostname=smtp.get("localName") or None)
            else:
                client = smtplib.SMTP(host, port, timeout=self.timeout, local_hostname=smtp.get("localName") or None)
            with client:
                if smtp.get("tls") and port != 465:
                    client.starttls(context=ssl.create_default_context())
                if smtp.get("username"):
                    client.login(str(smtp["username"]), str(smtp.get("password", "")))
                client.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"{type(exc).__name__}: {exc}") from exc

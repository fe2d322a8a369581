"""Send mail using the ``smtp`` and ``meta`` settings: over SMTP (stdlib ``smtplib``) when SMTP
is enabled, else through a local ``sendmail`` executable, as PocketBase's mail client does.

Errors carry ``transient``: a 4xx SMTP reply, a refused or timed-out connection, a dropped
session or sendmail's EX_TEMPFAIL may succeed later (the mail queue retries them); a 5xx reply,
a TLS certificate failure, a missing transport or any other sendmail exit status will not.
"""

from __future__ import annotations

import logging
import shutil
import smtplib
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.charset import QP, Charset
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

log = logging.getLogger("keepbase.mail")

#: where PocketBase looks for sendmail, in order (the last one searches PATH)
SENDMAIL_PATHS = ("/usr/sbin/sendmail", "/usr/bin/sendmail", "sendmail")
NO_SENDMAIL = "failed to locate a sendmail executable path"  # PocketBase's text
EX_TEMPFAIL = 75  # sysexits.h: "temporary failure, try again later"


class MailError(Exception):
    """Sending failed; the message is safe to log (no credentials). ``transient``: worth a retry."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class NoTransportError(MailError):
    """SMTP is disabled and there is no sendmail executable: nothing can deliver mail."""


@dataclass
class Message:
    to: list[str]
    subject: str
    html: str
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def find_sendmail() -> str | None:
    for option in SENDMAIL_PATHS:
        path = shutil.which(option)
        if path:
            return path
    return None


def _q_encode(value: str) -> str:
    """Go's ``mime.QEncoding.Encode("utf-8", s)``: ASCII stays as is."""
    if value.isascii():
        return value
    charset = Charset("utf-8")
    charset.header_encoding = QP
    return str(charset.header_encode(value))


def _go_address(name: str, address: str) -> str:
    """Go's ``mail.Address.String()``: ``"Name" <addr>`` or ``<addr>``."""
    if not name:
        return f"<{address}>"
    if not name.isascii():
        return f"{_q_encode(name)} <{address}>"
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>'


def _smtp_transient(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False  # a wrong certificate stays wrong
    # ConnectionRefusedError, TimeoutError, DNS failures and other socket errors
    return isinstance(exc, OSError)


class Mailer:
    """Builds and sends messages. ``settings`` is called at send time so changes apply at once."""

    def __init__(self, settings: Callable[[], dict[str, Any]], timeout: float = 15.0) -> None:
        self._settings = settings
        self.timeout = timeout
        self._lock = threading.Lock()
        self._warned_no_transport = False

    def send(self, message: Message) -> None:
        s = self._settings()
        smtp, meta = s.get("smtp", {}), s.get("meta", {})
        if smtp.get("enabled"):
            self._send_smtp(message, smtp, meta)
        else:
            self._send_sendmail(message, meta)
        with self._lock:
            self._warned_no_transport = False

    def _send_smtp(self, message: Message, smtp: dict[str, Any], meta: dict[str, Any]) -> None:
        msg = EmailMessage()
        msg["From"] = formataddr((meta.get("senderName", ""), meta.get("senderAddress", "")))
        msg["To"] = ", ".join(message.to)
        msg["Subject"] = message.subject
        msg["Message-ID"] = make_msgid()
        for key, value in message.headers.items():
            msg[key] = value
        msg.set_content(message.text or "This message requires an HTML capable mail client.")
        msg.add_alternative(message.html, subtype="html")
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
            raise MailError(f"{type(exc).__name__}: {exc}", transient=_smtp_transient(exc)) from exc

    def _send_sendmail(self, message: Message, meta: dict[str, Any]) -> None:
        """PocketBase's Sendmail client: an HTML-only message piped into ``sendmail -i -t``
        (the recipients are read from the To header; checked on the 0.40 binary)."""
        path = find_sendmail()
        if path is None:
            with self._lock:
                first, self._warned_no_transport = not self._warned_no_transport, True
            if first:
                log.error("mail is not sent: SMTP is disabled in the settings and no sendmail executable was "
                          "found (%s); enable SMTP in the settings or install sendmail", ", ".join(SENDMAIL_PATHS))
            raise NoTransportError(NO_SENDMAIL)
        headers = {
            "Content-Type": "text/html; charset=UTF-8",
            "From": _go_address(str(meta.get("senderName", "")), str(meta.get("senderAddress", ""))),
            "Subject": _q_encode(message.subject),
            "To": ",".join(message.to),
            **message.headers,
        }
        head = "".join(f"{k}: {v}\r\n" for k, v in sorted(headers.items()))
        data = (head + "\r\n" + (message.html or message.text)).encode()
        try:
            proc = subprocess.run([path, "-i", "-t"], input=data, capture_output=True, timeout=self.timeout,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise MailError(f"{path} did not finish within {self.timeout:g}s", transient=True) from exc
        except OSError as exc:
            raise MailError(f"{type(exc).__name__}: {exc}") from exc
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace").strip()
            if stderr:
                log.warning("sendmail (%s) failed: %s", path, stderr[:500])
            raise MailError(f"exit status {proc.returncode}", transient=proc.returncode == EX_TEMPFAIL)

"""Outgoing mail: an SMTP (or sendmail) sender configured from runtime settings, and the queue
that sends auth mails in the background."""

from __future__ import annotations

from .queue import MailQueue
from .sender import Mailer, MailError, Message, NoTransportError

__all__ = ["MailError", "MailQueue", "Mailer", "Message", "NoTransportError"]

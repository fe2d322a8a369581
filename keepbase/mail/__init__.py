"""Outgoing mail: an SMTP sender configured from runtime settings."""

from __future__ import annotations

from .sender import Mailer, MailError, Message

__all__ = ["MailError", "Mailer", "Message"]

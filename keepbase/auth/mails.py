"""The auth mails (verification, password reset, email change, OTP, login alert), built from the
collection's templates like PocketBase's ``mails`` package.

Links come from ``settings.meta.appURL`` only, never from request headers (Host,
X-Forwarded-*): a forged Host must not be able to point a reset link at an attacker's site.
"""

from __future__ import annotations

import html
from typing import Any

from ..mail.sender import Message
from ..mail.templates import build_message
from ..store.models import Collection
from .tokens import new_record_token


def placeholders(settings: dict[str, Any], c: Collection, record: dict[str, Any],
                 **extra: str) -> dict[str, str]:
    """``{APP_NAME}``, ``{APP_URL}``, ``{RECORD:<field>}`` (non-hidden fields only, HTML-escaped)
    plus ``extra`` (``TOKEN="..."`` → ``{TOKEN}``)."""
    meta = settings.get("meta", {})
    out = {"{" + k + "}": v for k, v in extra.items()}
    out.setdefault("{APP_NAME}", str(meta.get("appName", "")))
    out.setdefault("{APP_URL}", str(meta.get("appURL", "")))
    for f in c.fields:
        if f.hidden:  # never tokenKey or the password hash
            continue
        value = record.get(f.name)
        text = "" if value is None else ("true" if value is True else "false" if value is False else str(value))
        out.setdefault("{RECORD:" + f.name + "}", html.escape(text))
    return out


def verification_message(settings: dict[str, Any], c: Collection, record: dict[str, Any]) -> Message:
    token = new_record_token(c, record, "verification", email=record.get("email", ""))
    return build_message(str(record.get("email", "")), c.options.get("verificationTemplate", {}),
                         placeholders(settings, c, record, TOKEN=token))


def password_reset_message(settings: dict[str, Any], c: Collection, record: dict[str, Any]) -> Message:
    token = new_record_token(c, record, "passwordReset", email=record.get("email", ""))
    return build_message(str(record.get("email", "")), c.options.get("resetPasswordTemplate", {}),
                         placeholders(settings, c, record, TOKEN=token))


def email_change_message(settings: dict[str, Any], c: Collection, record: dict[str, Any],
                         new_email: str) -> Message:
    """Sent to the *new* address: following the link proves the caller owns it."""
    token = new_record_token(c, record, "emailChange", email=record.get("email", ""), newEmail=new_email)
    return build_message(new_email, c.options.get("confirmEmailChangeTemplate", {}),
                         placeholders(settings, c, record, TOKEN=token))


def otp_message(settings: dict[str, Any], c: Collection, record: dict[str, Any], otp_id: str,
                password: str) -> Message:
    template = c.options.get("otp", {}).get("emailTemplate", {})
    return build_message(str(record.get("email", "")), template,
                         placeholders(settings, c, record, OTP=password, OTP_ID=otp_id))


def auth_alert_message(settings: dict[str, Any], c: Collection, record: dict[str, Any], info: str) -> Message:
    template = c.options.get("authAlert", {}).get("emailTemplate", {})
    return build_message(str(record.get("email", "")), template,
                         placeholders(settings, c, record, ALERT_INFO=html.escape(info)))

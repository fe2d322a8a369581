"""Mail templates: ``{subject, body}`` with PocketBase's ``{PLACEHOLDER}`` substitution.

Placeholders are plain string replacements in both subject and body (``{APP_NAME}``,
``{APP_URL}``, ``{TOKEN}``, ``{OTP}``, ``{OTP_ID}``, ``{ALERT_INFO}``, ``{RECORD:<field>}``).
The caller decides which values go in; record values must already be HTML-escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from .sender import Message

LAYOUT = """<!DOCTYPE html>
<html>
<head>
<meta name="viewport" content="width=device-width,initial-scale=1" />
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head>
<body>
{CONTENT}
</body>
</html>
"""

_TAG_RE = re.compile(r"<[^>]+>")
_LINK_RE = re.compile(r"<a\b[^>]*\bhref=\"([^\"]*)\"[^>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_BLANKS_RE = re.compile(r"\n\s*\n+")


def resolve(template: Mapping[str, Any], placeholders: Mapping[str, str]) -> tuple[str, str]:
    """(subject, body) with every placeholder replaced."""
    subject, body = str(template.get("subject", "")), str(template.get("body", ""))
    for key, value in placeholders.items():
        subject = subject.replace(key, value)
        body = body.replace(key, value)
    return subject, body


def html_to_text(body: str) -> str:
    """A readable plain-text alternative: links become ``text (url)``, tags are dropped."""
    text = _LINK_RE.sub(lambda m: f"{_TAG_RE.sub('', m.group(2)).strip()} {m.group(1)}", body)
    text = re.sub(r"<br\s*/?>", "\n", text, flags=re.IGNORECASE)
    text = re.sub(r"</p>", "\n\n", text, flags=re.IGNORECASE)
    text = html.unescape(_TAG_RE.sub("", text))
    lines = [line.strip() for line in text.splitlines()]
    return _BLANKS_RE.sub("\n\n", "\n".join(lines)).strip()


def build_message(to: str, template: Mapping[str, Any], placeholders: Mapping[str, str]) -> Message:
    subject, body = resolve(template, placeholders)
    return Message(to=[to], subject=subject, html=LAYOUT.replace("{CONTENT}", body), text=html_to_text(body))

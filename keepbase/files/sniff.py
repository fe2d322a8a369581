"""Content sniffing: the MIME type of a file from its first bytes, never from the client.

A small magic-number table in the spirit of gabriel-vasile/mimetype (what PocketBase uses),
returning the same type strings for the formats that matter here: images (thumbnails and the
inline list), media, PDF, archives, and the text family (HTML/SVG/XML are told apart so they
can be served safely).
"""

from __future__ import annotations

import re

SNIFF_LEN = 3072  # how many leading bytes the detectors look at (mimetype's default)
OCTET = "application/octet-stream"
TEXT = "text/plain; charset=utf-8"

_MAGIC: list[tuple[bytes, int, str]] = [  # (signature, offset, type)
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"BM", 0, "image/bmp"),
    (b"\x00\x00\x01\x00", 0, "image/x-icon"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"%PDF-", 0, "application/pdf"),
    (b"\x1f\x8b", 0, "application/gzip"),
    (b"PK\x03\x04", 0, "application/zip"),
    (b"7z\xbc\xaf\x27\x1c", 0, "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", 0, "application/x-rar-compressed"),
    (b"\x1a\x45\xdf\xa3", 0, "video/webm"),
    (b"OggS", 0, "audio/ogg"),
    (b"ID3", 0, "audio/mpeg"),
    (b"\xff\xfb", 0, "audio/mpeg"),
    (b"\xff\xf3", 0, "audio/mpeg"),
    (b"fLaC", 0, "audio/flac"),
    (b"MThd", 0, "audio/midi"),
    (b"wOFF", 0, "font/woff"),
    (b"wOF2", 0, "font/woff2"),
    (b"\x7fELF", 0, "application/x-elf"),
    (b"MZ", 0, "application/vnd.microsoft.portable-executable"),
]

_EXTENSIONS = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
    "image/bmp": ".bmp", "image/x-icon": ".ico", "image/tiff": ".tiff", "image/svg+xml": ".svg",
    "application/pdf": ".pdf", "application/gzip": ".gz", "application/zip": ".zip",
    "video/webm": ".webm", "video/mp4": ".mp4", "video/quicktime": ".mov", "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3", "audio/wav": ".wav", "audio/flac": ".flac", "application/json": ".json",
    "text/html; charset=utf-8": ".html", "text/xml; charset=utf-8": ".xml", TEXT: ".txt",
}

_HTML_RE = re.compile(rb"^\s*<(!doctype\s+html|html|head|body|script|iframe|title|style|div|a\s|p[\s>]|"
                      rb"br|h1|table|font|b[\s>]|!--)", re.IGNORECASE)
_SVG_RE = re.compile(rb"<svg[\s>]", re.IGNORECASE)


def detect(head: bytes) -> str:
    """The MIME type of content starting with ``head`` (pass at least SNIFF_LEN bytes)."""
    head = head[:SNIFF_LEN]
    for sig, offset, mime in _MAGIC:
        if head[offset:offset + len(sig)] == sig:
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:10] == b"qt" else "video/mp4"
    return _detect_text(head)


def _detect_text(head: bytes) -> str:
    if not head:
        return TEXT
    body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    if b"\x00" in body:
        return OCTET
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(body) - 4:  # a multi-byte sequence cut at the sniff boundary is fine
            return OCTET
    stripped = body.lstrip()
    if _SVG_RE.search(body) and (stripped.startswith(b"<svg") or stripped.startswith(b"<?xml")
                                 or stripped.startswith(b"<!DOCTYPE svg") or stripped.startswith(b"<!--")):
        return "image/svg+xml"
    if _HTML_RE.match(body):
        return "text/html; charset=utf-8"
    if stripped.startswith(b"<?xml"):
        return "text/xml; charset=utf-8"
    if stripped[:1] in (b"{", b"[") and stripped.rstrip()[-1:] in (b"}", b"]"):
        return "application/json"
    return TEXT


def base_type(mime: str) -> str:
    """``text/plain; charset=utf-8`` → ``text/plain``."""
    return mime.split(";", 1)[0].strip().lower()


def extension_for(mime: str) -> str:
    """The usual extension for a detected type, or ``""``."""
    return _EXTENSIONS.get(mime, "")


def matches(mime: str, allowed: list[str]) -> bool:
    """Whether a detected type is one of ``allowed`` (parameters such as charset ignored)."""
    bt = base_type(mime)
    aliases = {"image/jpg": "image/jpeg", "image/x-png": "image/png", "audio/x-wav": "audio/wav",
               "audio/wave": "audio/wav", "audio/mp3": "audio/mpeg", "application/x-pdf": "application/pdf"}
    wanted = {aliases.get(base_type(a), base_type(a)) for a in allowed if isinstance(a, str)}
    return aliases.get(bt, bt) in wanted

"""Safe stored file names, following PocketBase's scheme.

``<snake_cased base>_<10 random [a-z0-9]><sanitised extension>``. The result only ever holds
``[a-z0-9_]`` in the base and ``[A-Za-z0-9_.*+=#-]`` in the extension: no path separator, no
NUL, no non-ASCII look-alike can survive into a storage key or a header.
"""

from __future__ import annotations

import re
import secrets
import string

from .sniff import detect, extension_for

_LOWER_ALNUM = string.ascii_lowercase + string.digits
# Go's RE2 ``\w`` is ASCII-only; re.ASCII keeps Python's identical.
_EXT_INVALID = re.compile(r"[^\w.*\-+=#]+", re.ASCII)
_SPLIT = re.compile(r"[\W_]+", re.ASCII)
SAFE_NAME_RE = re.compile(r"^[a-z0-9_]+[A-Za-z0-9_.*+=#-]*$", re.ASCII)


def random_suffix(n: int = 10) -> str:
    return "".join(secrets.choice(_LOWER_ALNUM) for _ in range(n))


def _extension(name: str) -> str:
    primary = name.rfind(".")
    if primary == -1:
        return ""
    secondary = name.rfind(".", 0, primary)
    return name[secondary:] if secondary >= 0 else name[primary:]


def snakecase(text: str) -> str:
    out: list[str] = []
    for word in _SPLIT.split(text):
        if not word:
            continue
        if out:
            out.append("_")
        for i, ch in enumerate(word):
            if ch.isupper() and i > 0 and not word[i - 1].isupper():
                out.append("_")
            out.append(ch)
    return "".join(out).lower()


def safe_name(original: str, head: bytes = b"") -> str:
    """The stored name for an upload called ``original`` whose content starts with ``head``."""
    name = original.replace("\x00", "")[-300:]
    original_ext = _extension(name)
    ext = _EXT_INVALID.sub("", original_ext).strip(".")
    if ext:
        ext = "." + ext
    else:
        ext = extension_for(detect(head))
    if len(ext) > 20:
        ext = "." + ext[-19:].lstrip(".")
    base = snakecase(name[: len(name) - len(original_ext)].strip("."))
    if len(base) < 3:
        base += random_suffix()
    base = base[:100]
    return f"{base}_{random_suffix()}{ext}"

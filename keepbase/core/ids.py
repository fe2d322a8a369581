"""Identifier generation matching PocketBase's schemes."""

from __future__ import annotations

import secrets
import string
import zlib

ALNUM_LOWER = string.ascii_lowercase + string.digits
_ALNUM_LOWER = ALNUM_LOWER
_ALNUM = string.ascii_letters + string.digits


def random_string(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_record_id() -> str:
    """A 15-character ``[a-z0-9]`` id, like PocketBase's default record ids."""
    return random_string(15, _ALNUM_LOWER)


def collection_id(ctype: str, name: str) -> str:
    return "pbc_" + str(zlib.crc32((ctype + name).encode()))


def field_id(ftype: str, name: str) -> str:
    return ftype + str(zlib.crc32(name.encode()))

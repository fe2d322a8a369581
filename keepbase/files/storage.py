"""The ``Storage`` protocol and the key rules every backend shares.

Keys look like ``<collectionId>/<recordId>/<name>`` (thumbs: ``.../thumbs_<name>/<size>_<name>``).
Every key is checked by ``check_key`` before a backend touches it, so no client-supplied
component (``..``, an absolute path, a backslash, a NUL) can reach outside the storage root.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

_COMPONENT_RE = re.compile(r"^[A-Za-z0-9_.*+=#-]+$", re.ASCII)
CHUNK = 64 * 1024


class InvalidKeyError(ValueError):
    """A key with a component that could escape the storage root."""


def check_key(key: str, *, prefix: bool = False) -> str:
    """Return ``key`` if every ``/``-separated component is a plain, safe name."""
    parts = key.split("/")
    if prefix and parts and parts[-1] == "":
        parts = parts[:-1]
    if not parts:
        raise InvalidKeyError(key)
    for part in parts:
        if part in ("", ".", "..") or not _COMPONENT_RE.match(part):
            raise InvalidKeyError(key)
    return key


def record_key(collection_id: str, record_id: str, name: str = "") -> str:
    return check_key(f"{collection_id}/{record_id}/{name}" if name else f"{collection_id}/{record_id}")


def thumb_key(collection_id: str, record_id: str, name: str, size: str) -> str:
    return check_key(f"{collection_id}/{record_id}/thumbs_{name}/{size}_{name}")


@dataclass(frozen=True)
class FileStat:
    size: int
    modified: float  # unix seconds


class Storage(Protocol):
    """Where uploaded files live. Implementations: ``LocalStorage`` and ``S3Storage``."""

    def put(self, key: str, src: BinaryIO) -> None:
        """Store the whole of ``src`` (read from its current position) under ``key``, atomically."""

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def read(self, key: str) -> bytes:
        """The whole content; ``FileNotFoundError`` if missing."""

    def iter_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Chunks of bytes ``start..end`` (inclusive; ``None`` = to the end)."""

    def stat(self, key: str) -> FileStat | None:
        """Size and modification time, or None if missing."""

    def delete(self, key: str) -> None:
        """Remove ``key`` (a missing key is not an error)."""

    def delete_prefix(self, prefix: str) -> None:
        """Remove every key under ``prefix/``."""

    def list(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (sorted)."""

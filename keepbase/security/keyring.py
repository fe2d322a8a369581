"""The AES-256-GCM keyring of encrypted fields and the HMAC-SHA-256 blind index.

A keyring is an ordered list of 32-byte keys, each with an id (``KEEPBASE_ENCRYPTION_KEYS``,
see ``core.config.encryption_key_entries``). The first key encrypts; every key decrypts, so a
new key can be put first while values written under the older ones are still read, then
re-encrypted (``keepbase keys rotate``), then the old key removed.

A sealed value is the text ``kb1.<key id>.<base64url(nonce || ciphertext || tag)>``: the key id
says which key opens it, the 12-byte nonce is random per value (never reused with a key: 2^-32
collision odds only after ~2^32 values under one key, far beyond a key's expected life), and
the caller's associated data (which record, collection and field the value belongs to) is
authenticated but not stored, so a value copied anywhere else fails to open.

Each key has a second, separate key for the blind index: derived from it with HKDF-SHA-256
(``info = b"keepbase blind index v1"``) unless given explicitly (``ID:KEY:INDEXKEY``). Why a
separate key: the blind index is a deterministic MAC that equality filters and unique indexes
compare, so it must never be the encryption key itself; deriving it keeps one secret per entry
to manage, and tying it to the entry means removing a retired key also retires its index key.
A blind index is ``base64url(HMAC-SHA-256(index key, message))`` (43 characters).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..core.config import Config, KeyEntry, encryption_key_entries

PREFIX = "kb1."
NONCE_SIZE = 12
INDEX_INFO = b"keepbase blind index v1"


class KeyringError(Exception):
    """A sealed value cannot be opened: its key id is unknown, or it fails authentication (it
    was tampered with, written for another record/field, or under another key with that id).
    ``key_id`` is the id the value names ("" when it is not a sealed value at all)."""

    def __init__(self, message: str, key_id: str = "") -> None:
        super().__init__(message)
        self.key_id = key_id


def derive_index_key(key: bytes) -> bytes:
    """The blind-index key of an encryption key (HKDF-SHA-256, no salt, fixed info)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INDEX_INFO).derive(key)


@dataclass(frozen=True)
class DataKey:
    id: str
    aead: AESGCM
    index_key: bytes

    def __repr__(self) -> str:  # never print key material
        return f"DataKey(id={self.id!r})"


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Keyring:
    """The configured keys; ``primary`` (the first) encrypts."""

    def __init__(self, entries: Sequence[KeyEntry]) -> None:
        if not entries:
            raise ValueError("a keyring needs at least one key")
        self.keys: tuple[DataKey, ...] = tuple(
            DataKey(kid, AESGCM(key), index_key if index_key is not None else derive_index_key(key))
            for kid, key, index_key in entries)
        self._by_id = {k.id: k for k in self.keys}
        self.primary = self.keys[0]

    def __repr__(self) -> str:
        return f"Keyring(ids={self.ids!r})"

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(k.id for k in self.keys)

    def has(self, key_id: str) -> bool:
        return key_id in self._by_id

    def encrypt(self, plain: bytes, aad: bytes) -> str:
        nonce = os.urandom(NONCE_SIZE)
        sealed = self.primary.aead.encrypt(nonce, plain, aad)
        return f"{PREFIX}{self.primary.id}.{_b64e(nonce + sealed)}"

    def decrypt(self, token: str, aad: bytes) -> bytes:
        kid = key_id_of(token)
        if kid is None:
            raise KeyringError("not an encrypted value")
        key = self._by_id.get(kid)
        if key is None:
            raise KeyringError(f"the key {kid!r} is not in the keyring", kid)
        try:
            raw = _b64d(token[len(PREFIX) + len(kid) + 1:])
            return key.aead.decrypt(raw[:NONCE_SIZE], raw[NONCE_SIZE:], aad)
        except (InvalidTag, binascii.Error, ValueError):
            raise KeyringError("the value fails authentication (altered, or written for another record or "
                               "field)", kid) from None

    def blind_index(self, message: bytes, key_id: str | None = None) -> str:
        """The blind index of ``message`` under the primary key's index key (or ``key_id``'s)."""
        key = self.primary if key_id is None else self._by_id[key_id]
        return _b64e(hmac.new(key.index_key, message, sha256).digest())

    def blind_indexes(self, message: bytes) -> list[str]:
        """The blind index of ``message`` under every key: what an equality filter looks for while
        some values are still written under an older key."""
        return [_b64e(hmac.new(k.index_key, message, sha256).digest()) for k in self.keys]


def key_id_of(token: str) -> str | None:
    """The key id a sealed value names, or None when ``token`` is not one."""
    if not token.startswith(PREFIX):
        return None
    end = token.find(".", len(PREFIX))
    return token[len(PREFIX):end] if end > len(PREFIX) else None


def keyring_from_config(cfg: Config) -> Keyring | None:
    """The keyring ``cfg`` configures, or None without keys. Raises ``ConfigError``."""
    entries = encryption_key_entries(cfg)
    return Keyring(entries) if entries else None

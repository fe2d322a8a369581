"""Password hashing: Argon2id for new hashes; bcrypt hashes (PocketBase's) are verified too.

Argon2id parameters are argon2-cffi's RFC 9106 "low memory" profile: t=3, m=64 MiB, p=4.
A bcrypt hash that verifies is reported as needing a rehash, so users moved over from
PocketBase are upgraded to Argon2id at their next sign-in.
"""

from __future__ import annotations

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

_HASHER = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
# A real hash to verify against when the account does not exist, so timing doesn't tell.
_DUMMY = _HASHER.hash("keepbase-dummy-password")


def hash_password(plain: str) -> str:
    return _HASHER.hash(plain)


def verify_password(stored_hash: str, plain: str) -> bool:
    if stored_hash.startswith(("$2a$", "$2b$", "$2y$")):
        try:
            return bcrypt.checkpw(plain.encode()[:72], stored_hash.encode())
        except ValueError:
            return False
    if not stored_hash.startswith("$argon2"):
        verify_dummy(plain)
        return False
    try:
        return _HASHER.verify(stored_hash, plain)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def verify_dummy(plain: str) -> None:
    """Spend the same time as a real verification (for unknown identities)."""
    try:
        _HASHER.verify(_DUMMY, plain)
    except VerificationError:
        pass


def needs_rehash(stored_hash: str) -> bool:
    if not stored_hash.startswith("$argon2"):
        return True
    return _HASHER.check_needs_rehash(stored_hash)

"""JWT helpers: HS256 only (no ``none``, no algorithm confusion)."""

from __future__ import annotations

import time
from typing import Any

import jwt

ALGORITHM = "HS256"


def sign(claims: dict[str, Any], key: str, duration: int) -> str:
    payload = dict(sorted({**claims, "exp": int(time.time()) + int(duration)}.items()))
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def unverified_claims(token: str) -> dict[str, Any] | None:
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            return None
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


def verify(token: str, key: str) -> dict[str, Any] | None:
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["exp"]})
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None

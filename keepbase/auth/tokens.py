"""Auth tokens: JWTs signed with the record's ``tokenKey`` + the collection's per-type secret.

Changing a password or email regenerates ``tokenKey``, so every earlier token dies at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..core.types import AuthInfo
from ..security.jwt_tokens import sign, unverified_claims, verify
from ..store.collections import CollectionStore
from ..store.db import Database
from ..store.models import Collection
from ..store.record_input import row_values


def new_auth_token(c: Collection, record: dict[str, Any], *, refreshable: bool = True,
                   duration: int | None = None) -> str:
    opts = c.options.get("authToken", {})
    claims = {"collectionId": c.id, "id": record["id"], "refreshable": refreshable, "type": "auth"}
    return sign(claims, str(record["tokenKey"]) + str(opts.get("secret", "")),
                duration or int(opts.get("duration", 432000)))


def auth_from_token(db: Database, collections: CollectionStore, token: str) -> AuthInfo | None:
    """The record a valid ``auth`` token belongs to, or None (treated as a guest)."""
    found = find_auth_record_by_token(db, collections, token.removeprefix("Bearer "), "auth")
    if found is None:
        return None
    c, record, _claims = found
    return AuthInfo(collection_id=c.id, collection_name=c.name, record=record)


# token type → the collection option that holds its duration and secret
TOKEN_OPTIONS = {"auth": "authToken", "file": "fileToken", "verification": "verificationToken",
                 "passwordReset": "passwordResetToken", "emailChange": "emailChangeToken"}


def new_record_token(c: Collection, record: dict[str, Any], token_type: str, **claims: Any) -> str:
    """A ``verification``/``passwordReset``/``emailChange``/``file`` token (extra claims as given)."""
    opts = c.options.get(TOKEN_OPTIONS[token_type], {})
    payload = {"collectionId": c.id, "id": record["id"], "type": token_type, **claims}
    return sign(payload, str(record["tokenKey"]) + str(opts.get("secret", "")), int(opts.get("duration", 1800)))


def find_auth_record_by_token(db: Database, collections: CollectionStore, token: str,
                              token_type: str) -> tuple[Collection, dict[str, Any], dict[str, Any]] | None:
    """(collection, stored record values, verified claims) of a valid token of ``token_type``."""
    claims = unverified_claims(token) if token else None
    if not claims or claims.get("type") != token_type or token_type not in TOKEN_OPTIONS:
        return None
    cid, rid = claims.get("collectionId"), claims.get("id")
    if not isinstance(cid, str) or not isinstance(rid, str) or not cid or not rid:
        return None
    c = collections.find(cid)
    if c is None or not c.is_auth or c.id != cid:
        return None
    table = collections.records_table(c)
    with db.read() as conn:
        row = conn.execute(select(table).where(table.c.id == rid)).first()
    if row is None:
        return None
    record = row_values(c, row)
    secret = str(c.options.get(TOKEN_OPTIONS[token_type], {}).get("secret", ""))
    verified = verify(token, str(record.get("tokenKey", "")) + secret)
    if verified is None:
        return None
    return c, record, verified

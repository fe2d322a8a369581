"""auth-with-password: identity lookup, constant-work verification, bcrypt → Argon2id upgrade."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update

from ..core.errors import BadRequestError, FieldError, ForbiddenError, ValidationError
from ..core.types import AuthInfo, RequestInfo
from ..security.passwords import hash_password, needs_rehash, verify_dummy, verify_password
from ..security.rate_limiter import RateLimiter
from ..store.collections import CollectionStore
from ..store.db import Database
from ..store.models import Collection
from ..store.record_input import row_values
from ..store.record_rules import rule_condition
from .attempts import counted_attempt

log = logging.getLogger("keepbase.auth")
FAILED = "Failed to authenticate."


def authenticate_with_password(db: Database, collections: CollectionStore, c: Collection, identity: str,
                               password: str, identity_field: str = "", limiter: RateLimiter | None = None,
                               ) -> dict[str, Any]:
    """The stored values of the record whose identity + password match; 400 otherwise.

    ``limiter``: the app's rate-limit store, for the per-identity failure limit (``attempts``)."""
    pa = c.options.get("passwordAuth", {})
    if not pa.get("enabled"):
        raise ForbiddenError("The collection is not configured to allow password authentication.")
    fields = list(pa.get("identityFields") or [])
    if identity_field:
        if identity_field not in fields:
            raise ValidationError("An error occurred while validating the submitted data.", {
                "identityField": FieldError("validation_in_invalid", "Must be a valid value.")})
        fields = [identity_field]
    table = collections.records_table(c)
    with counted_attempt(limiter, c, "password", identity):  # per identity, known or not
        row = None
        with db.read() as conn:
            for name in fields:
                if c.get_field(name) is None:
                    continue
                row = conn.execute(select(table).where(table.c[name] == identity).limit(1)).first()
                if row is not None:
                    break
        if row is None:
            verify_dummy(password)
            raise BadRequestError(FAILED)
        record = row_values(c, row)
        stored = str(record.get("password") or "")
        if not verify_password(stored, password):
            raise BadRequestError(FAILED)
    if needs_rehash(stored):
        new_hash = hash_password(password)
        try:
            with db.write() as conn:
                conn.execute(update(table).where(table.c.id == record["id"], table.c.password == stored)
                             .values(password=new_hash))
            record["password"] = new_hash
        except Exception:  # opportunistic (a full or read-only disk): sign in anyway, upgrade next time
            log.debug("password rehash of %s skipped", record["id"], exc_info=True)
    rule = c.rules.get("authRule")
    if rule is None or rule:
        info = RequestInfo(auth=AuthInfo(c.id, c.name, record), context="password")
        cond = rule_condition(c, table, rule, info, collections.find, db.dialect)
        if cond is not None:
            with db.read() as conn:
                ok = conn.execute(select(table.c.id).where(table.c.id == record["id"], cond)).first()
            if ok is None:
                raise ForbiddenError("The request doesn't satisfy the collection requirements to authenticate.")
    return record

"""Checks every sign-in method shares: the collection's ``authRule`` against the signing-in record."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..core.errors import ForbiddenError
from ..core.types import AuthInfo, RequestInfo
from ..store.collections import CollectionStore
from ..store.db import Database
from ..store.models import Collection
from ..store.record_rules import rule_condition

AUTH_RULE_FAILED = "The request doesn't satisfy the collection requirements to authenticate."


def record_matches(db: Database, collections: CollectionStore, c: Collection, record_id: str,
                   rule: str | None, info: RequestInfo) -> bool:
    """Whether the stored record ``record_id`` satisfies ``rule`` (None: superusers only → False)."""
    if rule is None:
        return False
    table = collections.records_table(c)
    cond = rule_condition(c, table, rule, info, collections.find, db.dialect)
    if cond is None:
        return True
    with db.read() as conn:
        return conn.execute(select(table.c.id).where(table.c.id == record_id, cond)).first() is not None


def check_auth_rule(db: Database, collections: CollectionStore, c: Collection, record: dict[str, Any],
                    context: str) -> None:
    """403 unless the record may sign in (``authRule``: null = nobody but superusers' own rule, "" = all)."""
    rule = c.rules.get("authRule")
    if rule == "":
        return
    info = RequestInfo(auth=AuthInfo(c.id, c.name, record), context=context)
    if not record_matches(db, collections, c, str(record["id"]), rule, info):
        raise ForbiddenError(AUTH_RULE_FAILED)

"""The first-run installer, as PocketBase does it.

With no superuser yet, ``installer_token`` creates a placeholder superuser
(``__pbinstaller@example.com``, random password nobody knows) and returns a short, non-refreshable
auth token for it; the server prints ``/_/#/pbinstall/<token>``, where the dashboard's setup page
uses that token once to create the real first superuser. ``remove_installer`` (bound after every
superuser create) deletes the placeholder as soon as a real superuser exists, which also ends the
token: it is bound to a record that no longer exists.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import func, select

from ..core.events import RecordEvent
from ..core.types import AuthInfo, RequestInfo
from ..store.collections import CollectionStore
from ..store.db import Database
from ..store.records import RecordService
from .tokens import new_auth_token

INSTALLER_EMAIL = "__pbinstaller@example.com"
INSTALLER_TOKEN_SECONDS = 30 * 60


def _superusers(collections: CollectionStore) -> Any:
    c = collections.get("_superusers")
    return c, collections.records_table(c)


def has_superuser(db: Database, collections: CollectionStore) -> bool:
    """Whether a real superuser (not the installer placeholder) exists."""
    _c, table = _superusers(collections)
    with db.read() as conn:
        n = conn.execute(select(func.count()).select_from(table).where(table.c.email != INSTALLER_EMAIL)).scalar_one()
    return bool(n)


def installer_token(db: Database, collections: CollectionStore, records: RecordService) -> str:
    """A one-time setup token (the placeholder superuser is created or its password renewed)."""
    c, table = _superusers(collections)
    su = RequestInfo(auth=AuthInfo(c.id, c.name, {"id": ""}))
    password = secrets.token_urlsafe(24)
    body = {"email": INSTALLER_EMAIL, "password": password, "passwordConfirm": password}
    with db.read() as conn:
        row = conn.execute(select(table.c.id).where(table.c.email == INSTALLER_EMAIL)).first()
    record = (records.create_record(c, body, su) if row is None else records.update_record(c, row[0], body, su))
    with db.read() as conn:
        stored = conn.execute(select(table).where(table.c.id == record["id"])).mappings().one()
    return new_auth_token(c, dict(stored), refreshable=False, duration=INSTALLER_TOKEN_SECONDS)


def remove_installer(db: Database, collections: CollectionStore, records: RecordService) -> None:
    c, table = _superusers(collections)
    with db.read() as conn:
        row = conn.execute(select(table.c.id).where(table.c.email == INSTALLER_EMAIL)).first()
    if row is not None:
        su = RequestInfo(auth=AuthInfo(c.id, c.name, {"id": ""}))
        records.delete_record(c, row[0], su)


def bind_installer_cleanup(db: Database, collections: CollectionStore, records: RecordService) -> None:
    """Delete the placeholder once a real superuser has been created (by the setup page, the API or the CLI)."""

    def after_create(e: RecordEvent) -> None:
        try:
            if e.record.get("email") != INSTALLER_EMAIL:
                remove_installer(db, collections, records)
        finally:
            e.next()

    records.hooks.record_after_create.bind(after_create, id="keepbase-installer-cleanup", collections=("_superusers",))

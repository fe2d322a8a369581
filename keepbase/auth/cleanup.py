"""Housekeeping for single-use sign-in state: expired OTPs and MFA sessions are deleted.

Expired rows are already useless (every check compares ``created`` with the collection's
duration), so this only keeps ``_otps`` and ``_mfas`` from growing: like PocketBase's hourly
``__pbOTPCleanup__`` / ``__pbMFACleanup__`` jobs, the app schedules :func:`delete_expired`
every hour. Rows of auth collections that no longer exist are removed as well.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, delete, or_

from ..core.clock import format_dt, now
from ..store.collections import CollectionStore
from ..store.db import Database

#: PocketBase's defaults when a collection does not set a duration (seconds)
DEFAULT_DURATION = {"_otps": ("otp", 180), "_mfas": ("mfa", 600)}
JOB_ID = "__kbAuthCleanup__"
SCHEDULE = "0 * * * *"


def delete_expired(db: Database, collections: CollectionStore) -> int:
    """Delete every expired OTP and MFA row; returns how many rows went."""
    auth = [c for c in collections.all() if c.type == "auth"]
    moment = now()
    removed = 0
    with db.write() as conn:
        for system_name, (option, default) in DEFAULT_DURATION.items():
            table = collections.records_table(collections.get(system_name))
            expired = []
            for c in auth:
                duration = int(c.options.get(option, {}).get("duration") or default)
                cutoff = format_dt(moment - timedelta(seconds=duration))
                expired.append(and_(table.c.collectionRef == c.id, table.c.created < cutoff))
            orphan = table.c.collectionRef.not_in([c.id for c in auth])
            result = conn.execute(delete(table).where(or_(orphan, *expired)))
            removed += max(result.rowcount or 0, 0)
    return removed

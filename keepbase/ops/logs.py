"""Log retention: the job that deletes request logs older than ``settings.logs.maxDays``.

PocketBase runs it as ``__pbLogsCleanup__`` every six hours; keepbase names its built-in jobs
``__kb…__`` (docs/compatibility.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ..core.clock import format_dt, now
from ..store.logs import LogStore

JOB_ID = "__kbLogsCleanup__"
SCHEDULE = "0 */6 * * *"


def delete_expired(store: LogStore, settings: Callable[[], dict[str, Any]]) -> int:
    """Delete the logs older than ``maxDays`` days (every log when logging is off, ``maxDays: 0``)."""
    max_days = int((settings().get("logs") or {}).get("maxDays") or 0)
    if max_days <= 0:
        store.delete_all()
        return 0
    return store.delete_created_before(format_dt(now() - timedelta(days=max_days)))

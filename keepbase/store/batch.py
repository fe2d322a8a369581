"""Batch service: run several record writes in ONE transaction, all or nothing.

``run_batch`` opens one unit of work (``db.write()``) and calls the ordinary record services
for each action, so every rule, validation and hook applies exactly as for a single request;
their nested ``db.write()`` calls reuse the batch transaction. The first failing action raises
``BatchActionFailed`` (carrying its index and the error) and the whole transaction rolls back;
"after" hooks registered by earlier actions are dropped with it (they only run after commit).

The HTTP layer (``api/batch.py``) parses requests into ``BatchAction`` objects and renders the
results; the CLI, hooks and tests can call this directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..core.errors import ApiError, BadRequestError, NotFoundError
from ..core.types import RequestInfo
from .db import Database
from .records import RecordService

log = logging.getLogger("keepbase.batch")


@dataclass
class BatchAction:
    """One write: ``action`` is "create", "update", "delete" or "upsert" (PUT)."""

    action: str
    collection: str
    info: RequestInfo
    record_id: str = ""
    body: dict[str, Any] | None = None


Admit = Callable[[BatchAction, str, str], None]


@dataclass
class BatchResult:
    status: int
    body: Any


class BatchActionFailed(Exception):
    """Action ``index`` failed with ``error`` (an ApiError); nothing of the batch was written."""

    def __init__(self, index: int, error: ApiError) -> None:
        super().__init__(error.message)
        self.index = index
        self.error = error


class UnknownAction(Exception):
    """Not one of the executable batch actions (PocketBase's "unknown batch request action")."""


class BatchTimeout(Exception):
    """The batch did not finish within its time budget; nothing was written."""


def run_batch(db: Database, records: RecordService, actions: list[BatchAction], timeout: float,
              shape: Callable[[int, dict[str, Any]], Any] | None = None,
              admit: Admit | None = None) -> list[BatchResult]:
    """Run ``actions`` in one transaction. ``shape(index, record_json)`` post-processes each
    returned record (the HTTP layer applies ``?fields=`` there) while still inside it.
    ``admit(action, method, path)`` runs just before each write, once the collection is known and
    an upsert is resolved to ``POST …/records`` or ``PATCH …/records/{id}``; an ApiError it raises
    fails that action (the HTTP layer applies the rate limits there).

    The deadline is checked between actions and before the commit: a Python thread cannot be
    interrupted mid-statement, so one slow statement may overrun it (the engine's statement
    timeout still bounds that).
    """
    deadline = time.monotonic() + (timeout if timeout > 0 else 3.0)
    results: list[BatchResult] = []
    with db.write():
        for index, action in enumerate(actions):
            if time.monotonic() > deadline:
                raise BatchTimeout("batch transaction timeout")
            try:
                body = _run_one(db, records, action, admit)
            except ApiError as exc:
                raise BatchActionFailed(index, exc) from exc
            except Exception as exc:  # an unknown action, a hook, a bug: a generic error
                if not isinstance(exc, UnknownAction):
                    log.exception("batch request %d failed", index)
                # PocketBase runs item i+1 inside item i's response finalizer, which wraps a plain
                # error as a 500; only a plain error of the first item reaches ToApiError as a 400.
                raise BatchActionFailed(index, BadRequestError() if index == 0 else ApiError(500)) from exc
            if body is None:
                results.append(BatchResult(204, None))
            else:
                results.append(BatchResult(200, shape(index, body) if shape else body))
        if time.monotonic() > deadline:
            raise BatchTimeout("batch transaction timeout")
    return results


def _run_one(db: Database, records: RecordService, a: BatchAction, admit: Admit | None) -> dict[str, Any] | None:
    if a.action not in ("create", "update", "delete", "upsert"):
        raise UnknownAction(f"unknown batch request action {a.info.method} {a.collection}")
    c = records.collections.find(a.collection)
    if c is None:
        raise NotFoundError("Missing collection context.")
    body = a.body or {}
    if a.action == "upsert":
        rid = body.get("id")
        if rid not in (None, "") and not c.is_view:
            table = records.table(c)
            with db.read() as conn:
                exists = conn.execute(select(table.c.id).where(table.c.id == str(rid))).first() is not None
            if exists:
                a.info.method = "PATCH"
                if admit is not None:
                    admit(a, "PATCH", f"/api/collections/{a.collection}/records/{rid}")
                return records.update_record(c, str(rid), body, a.info)
        a.info.method = "POST"
    if admit is not None:
        suffix = f"/{a.record_id}" if a.action in ("update", "delete") else ""
        method = {"upsert": "POST", "create": "POST", "update": "PATCH", "delete": "DELETE"}[a.action]
        admit(a, method, f"/api/collections/{a.collection}/records{suffix}")
    if a.action in ("create", "upsert"):
        return records.create_record(c, body, a.info)
    if a.action == "update":
        return records.update_record(c, a.record_id, body, a.info)
    records.delete_record(c, a.record_id, a.info)
    return None

"""When the disk refuses writes: which driver errors mean that, and the state of best-effort writers.

``storage_error(exc)`` turns a driver or OS error that means "the storage cannot take this
write" into the API error to send: ``InsufficientStorageError`` (507) when it is full (SQLite's
SQLITE_FULL, ENOSPC/EDQUOT, PostgreSQL's disk_full 53100), ``StorageUnavailableError`` (503) when
it refuses writes (SQLITE_READONLY, SQLITE_IOERR, EROFS/EIO, a read-only PostgreSQL transaction).
``translate_errors`` (``store.db``) applies it, so a failed create or COMMIT answers with the
envelope instead of an unhandled exception.

``WriteHealth`` is the state of one best-effort side writer (request logs, audit rows): their
writes must never fail or hold up the request that caused them. The first failure writes one
line on stderr (through logging), the first success after it one more; between the two the
writer is ``degraded`` (read by the health endpoint) and failures are only counted.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from ..core.errors import ApiError, InsufficientStorageError, StorageUnavailableError

_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL = 8, 10, 13
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_REFUSED_ERRNOS = frozenset({errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM})
_PG_FULL = "53100"  # disk_full
_PG_READ_ONLY = "25006"  # read_only_sql_transaction (a standby, or default_transaction_read_only)


def storage_error(exc: BaseException) -> ApiError | None:
    """The API error for a write the storage refused, or None when ``exc`` means something else."""
    orig: Any = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if isinstance(orig, sqlite3.Error):
        code = (getattr(orig, "sqlite_errorcode", 0) or 0) & 0xFF
        text = str(orig).lower()
        if code == _SQLITE_FULL or "database or disk is full" in text:
            return InsufficientStorageError()
        if code in (_SQLITE_READONLY, _SQLITE_IOERR) or "readonly database" in text or "disk i/o error" in text:
            return StorageUnavailableError()
        return None
    if isinstance(orig, OSError):
        if orig.errno in _FULL_ERRNOS:
            return InsufficientStorageError()
        if orig.errno in _REFUSED_ERRNOS:
            return StorageUnavailableError()
        return None
    state = getattr(orig, "sqlstate", None)  # psycopg
    if state == _PG_FULL:
        return InsufficientStorageError()
    if state == _PG_READ_ONLY:
        return StorageUnavailableError()
    return None


def describe(exc: BaseException) -> str:
    """One line naming the cause (the driver's message, not SQLAlchemy's wrapping)."""
    cause: BaseException = exc
    while isinstance(cause, ApiError) and cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, DBAPIError) and cause.orig is not None:
        cause = cause.orig
    text = " ".join(str(cause).split()) or type(cause).__name__
    return f"{type(cause).__name__}: {text}"[:300]


class WriteHealth:
    """Whether a best-effort writer is failing; reports the change of state once each way.

    ``degraded``: the last write attempt failed. ``status()``: a small dict for the health
    endpoint, ``{"degraded", "since", "reason", "lost"}`` (``since`` a Unix time, ``lost`` the
    rows not written since it started failing)."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what = what
        self._log = logger
        self._lock = threading.Lock()
        self._since: float | None = None
        self.reason = ""
        self.lost = 0

    @property
    def degraded(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException, lost: int = 1) -> None:
        with self._lock:
            self.lost += lost
            if self._since is not None:
                return
            self._since = time.time()
            self.reason = describe(exc)
        self._log.error("%s cannot be written (%s); carrying on without them until writes work again",
                        self.what, self.reason)

    def succeeded(self) -> None:
        if self._since is None:  # the common case: no lock on the hot path
            return
        with self._lock:
            if self._since is None:
                return
            down, lost = time.time() - self._since, self.lost
            self._since, self.reason, self.lost = None, "", 0
        self._log.warning("%s are written again (after %.0f s; %d not written meanwhile)", self.what, down, lost)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"degraded": self._since is not None, "since": self._since, "reason": self.reason,
                    "lost": self.lost}


def folder_status(path: str | Path) -> dict[str, Any]:
    """Free space and writability of a folder (the data folder), for the health endpoint:
    ``{"path", "freeBytes", "readOnly"}``; ``freeBytes`` is -1 when it cannot be read."""
    folder = str(Path(path).resolve())
    try:
        st = os.statvfs(folder)
    except OSError:
        return {"path": folder, "freeBytes": -1, "readOnly": not os.access(folder, os.W_OK)}
    read_only = bool(st.f_flag & os.ST_RDONLY) or not os.access(folder, os.W_OK)
    return {"path": folder, "freeBytes": st.f_bavail * st.f_frsize, "readOnly": read_only}


def startup_problem(exc: BaseException, folder: str | Path) -> str | None:
    """One line for the operator when building the app failed because the data folder cannot be
    written (full, read-only, no permission); None for any other failure."""
    where = str(Path(folder).resolve())
    found: BaseException | None = exc if isinstance(exc, ApiError) else None
    if found is None:
        found = storage_error(exc)
    orig: Any = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    cant_open = isinstance(orig, sqlite3.Error) and "unable to open database" in str(orig)
    if isinstance(found, InsufficientStorageError):
        return f"the data folder {where} is full (no space left on its disk); free some space and start again"
    if isinstance(found, StorageUnavailableError) or cant_open:
        state = folder_status(where if Path(where).exists() else Path(where).parent)
        why = "it is on a read-only file system" if state["readOnly"] else "it cannot be written"
        return (f"the data folder {where} is not writable ({why}: {describe(exc)}); remount it read-write or "
                "fix its permissions, or choose another --dir / KEEPBASE_DIR")
    return None

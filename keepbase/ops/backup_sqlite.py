"""SQLite backups with SQLite's online backup API (never a copy of a live WAL file).

*Snapshot*: with every other write held off (``Database.exclusive``), the writer connection is
copied page by page into a new file in one backup step: a consistent image of the last commit.
The copy is switched to rollback-journal mode so that it is one self-contained file.

*Restore*: the staged file is checked first (``quick_check``, keepbase's system tables, the
live page size), then copied *into* the live database through the writer connection, again
with the backup API, in one step. SQLite applies that as a single write transaction: readers
that are mid-transaction keep their snapshot, every later read sees the restored database, and
a failure anywhere leaves the live database untouched. No file is swapped under an open
connection, so nothing needs reopening.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from .backup_archive import InvalidArchiveError

REQUIRED_TABLES = ("_collections", "_params")


def _raw(conn: Any) -> sqlite3.Connection:
    dbapi = conn.connection.dbapi_connection
    if hasattr(dbapi, "deadline"):  # keepbase's statement timeout must not interrupt the copy
        dbapi.deadline = 0.0
    return dbapi  # type: ignore[no-any-return]


def snapshot_with(conn: Any, dest: Path) -> None:
    """Write a consistent copy of the database to ``dest``. ``conn`` is the writer connection of
    ``db.exclusive()``, so the image matches the storage tree staged under the same lock."""
    target = sqlite3.connect(str(dest), isolation_level=None)
    try:
        _raw(conn).backup(target)
        target.execute("PRAGMA journal_mode = DELETE")
    finally:
        target.close()


def check(path: Path, live_page_size: int) -> None:
    """``InvalidArchiveError`` unless ``path`` is a sound keepbase SQLite database."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise InvalidArchiveError(f"data.db cannot be opened: {exc}") from exc
    try:
        result = conn.execute("PRAGMA quick_check").fetchall()
        if result != [("ok",)]:
            raise InvalidArchiveError(f"data.db failed quick_check: {result[:3]}")
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in REQUIRED_TABLES if t not in names]
        if missing:
            raise InvalidArchiveError(f"data.db has no {', '.join(missing)} table (not a keepbase database)")
        cols = {r[1] for r in conn.execute('PRAGMA table_info("_collections")')}
        if not {"id", "name", "type", "fields", "rules", "options", "seq"} <= cols:
            raise InvalidArchiveError("data.db has an unknown _collections layout")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        if page_size != live_page_size:
            # the backup API cannot change the page size of a WAL database
            raise InvalidArchiveError(f"data.db page size {page_size} differs from the live {live_page_size}")
    except sqlite3.Error as exc:
        raise InvalidArchiveError(f"data.db is not a valid SQLite database: {exc}") from exc
    finally:
        conn.close()


def page_size(conn: Any) -> int:
    return int(_raw(conn).execute("PRAGMA page_size").fetchone()[0])


def restore_with(conn: Any, staged: Path) -> None:
    """Replace the live database (the writer ``conn`` of ``db.exclusive()``) with ``staged``."""
    source = sqlite3.connect(f"file:{staged}?mode=ro", uri=True, isolation_level=None)
    try:
        source.backup(_raw(conn))
    finally:
        source.close()

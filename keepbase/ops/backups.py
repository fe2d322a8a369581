"""Backups: create, list, upload, download, delete and restore archives of the data.

One backup or restore runs at a time per process (and, on PostgreSQL, per database: a session
advisory lock). Archives live in the backups filesystem: ``<data dir>/backups``, or the S3
bucket of the ``backups.s3`` settings, behind the same ``Storage`` interface as uploads.

A backup holds the database and the *local* ``storage/`` tree (as PocketBase's holds pb_data:
files kept on S3 are not in it). On SQLite, writes are held off while the database is copied
with the online backup API and the storage tree is hard-linked into a staging folder, so the
two match exactly; the zip is then written with writes flowing again. On PostgreSQL the rows
come from one REPEATABLE READ snapshot and the storage tree is staged right after it is taken.

A restore validates the whole archive and stages it before anything changes; a corrupt or
foreign archive is refused with ``Missing or invalid backup file.`` and the data stay as they
were. Then (SQLite) the storage folder is swapped and the database replaced in one SQLite write
transaction, or (PostgreSQL) every table is replaced in one transaction and the storage folder
swapped after the commit; caches are reloaded in-process, no restart. See docs/backups.md.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from ..core.clock import format_dt, now
from ..core.errors import REQUIRED, BadRequestError, FieldError, NotFoundError, ValidationError
from ..files import FileStat, InvalidKeyError, LocalStorage, Storage, UploadedFile, check_key, safe_name
from ..files.names import snakecase
from ..files.sniff import SNIFF_LEN, detect
from ..files.switch import StorageSwitch
from ..store.collections import CollectionStore
from ..store.db import Database
from ..store.file_downloads import Download
from ..store.settings import SettingsStore
from ..store.write_health import storage_error
from . import backup_pg, backup_sqlite
from .backup_archive import (
    MANIFEST,
    SQLITE_DB,
    InvalidArchiveError,
    add_storage,
    extract_member,
    extract_storage,
    manifest,
    open_archive,
    snapshot_storage,
    swap_dirs,
)
from .cron import Scheduler

log = logging.getLogger("keepbase.backups")

JOB_ID = "__kbAutoBackup__"
# PocketBase uses "@auto_pb_backup_"; "@" is outside the storage key alphabet (files.check_key)
AUTO_PREFIX = "auto_pb_backup_"
NAME_RE = re.compile(r"^[a-z0-9_-]+\.zip$")
BUSY = "Try again later - another backup/restore process has already been started."
INVALID_FILE = "Missing or invalid backup file."
IN_USE = "The backup is currently being used and cannot be deleted."
DELETE_FAILED = "Invalid or already deleted backup file. Raw error: \n"
VALIDATION_FAILED = "An error occurred while validating the submitted data."
_KEY_INVALID = re.compile(r"[^A-Za-z0-9_.*+=#-]+")
_TEMP_MAX_AGE = 24 * 3600
_PG_LOCK_KEY = int.from_bytes(hashlib.blake2b(b"keepbase-backups", digest_size=8).digest(), "big", signed=True)


@dataclass(frozen=True)
class BackupFile:
    key: str
    size: int
    modified: float

    def to_dict(self) -> dict[str, Any]:
        from datetime import UTC, datetime

        return {"modified": format_dt(datetime.fromtimestamp(self.modified, UTC)), "key": self.key,
                "size": self.size}


def _release(lock: Connection, locked: bool) -> None:
    """Unlock and hand the connection back; a session that cannot unlock is closed (which
    releases its advisory locks), never returned to the pool still holding one."""
    try:
        if locked:
            lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
    except Exception:
        log.exception("backups: releasing the advisory lock failed; dropping the connection")
        lock.invalidate()
    finally:
        lock.close()


def check_backup_key(key: str) -> str:
    """A backup key is one plain storage-key component, not hidden: no path can be reached."""
    if not key or key.startswith(".") or "/" in key:
        raise InvalidKeyError(key)
    return check_key(key)


def upload_key(original_name: str, head: bytes) -> str:
    """The key an uploaded archive is stored under: its own base name where that is a safe key
    (PocketBase keeps any name), otherwise the name with unsafe characters replaced by ``_``."""
    base = original_name.replace("\\", "/").rsplit("/", 1)[-1].replace("\x00", "")
    key = _KEY_INVALID.sub("_", base).lstrip(".")[-150:]
    try:
        return check_backup_key(key)
    except InvalidKeyError:
        return safe_name("backup.zip", head)


class BackupService:
    def __init__(self, *, data_dir: Path, db: Database, collections: CollectionStore, settings: SettingsStore,
                 files_root: Path, scheduler: Scheduler) -> None:
        self.db = db
        self.collections = collections
        self.settings = settings
        self.files_root = Path(files_root)  # the local uploads folder (app.storage.local)
        self.scheduler = scheduler
        self.temp_root = Path(data_dir) / ".kb_temp"
        self.files = StorageSwitch(Path(data_dir) / "backups", lambda: self.settings.get()["backups"]["s3"])
        #: called after a successful restore, once the caches are reloaded
        self.on_restored: list[Callable[[], None]] = []
        self._state = threading.Lock()
        self._active: str | None = None
        self._clean_temp()

    # --- the one-at-a-time guard ---
    @property
    def busy(self) -> bool:
        """A backup or restore is running (health's ``canBackup`` is the opposite)."""
        return self._active is not None

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Mark ``name`` as the running backup/restore; 400 if another one is running."""
        with self._state:
            if self._active is not None:
                raise BadRequestError(BUSY)
            self._active = name
        lock: Connection | None = None
        locked = False
        try:
            if not self.db.is_sqlite:  # and one per database, whichever node asks
                lock = self.db.writer.connect().execution_options(isolation_level="AUTOCOMMIT")
                locked = bool(lock.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_LOCK_KEY}).scalar())
                if not locked:
                    raise BadRequestError(BUSY)
            yield
        finally:
            if lock is not None:
                _release(lock, locked)
            with self._state:
                self._active = None

    # --- listing and files ---
    def list_backups(self) -> list[BackupFile]:
        """Every archive, sorted by key (as PocketBase's backups filesystem lists them)."""
        store = self.files()
        out = []
        for key in store.list():
            try:
                check_backup_key(key)
            except InvalidKeyError:
                continue
            st = store.stat(key)
            if st is not None:
                out.append(BackupFile(key, st.size, st.modified))
        return out

    def _existing(self, key: str) -> tuple[Storage, FileStat] | None:
        try:
            check_backup_key(key)
        except InvalidKeyError:
            return None
        store = self.files()
        st = store.stat(key)
        return None if st is None else (store, st)

    def find_download(self, key: str) -> Download:
        found = self._existing(key)
        if found is None:
            raise NotFoundError()
        store, st = found
        head = b"".join(store.iter_range(key, 0, SNIFF_LEN - 1)) if st.size else b""
        return Download(store, key, key, detect(head), st)

    def delete_backup(self, key: str) -> None:
        if key and key == self._active:
            raise BadRequestError(IN_USE)
        if self._existing(key) is None:
            raise BadRequestError(f"{DELETE_FAILED}[key: {key}] remove {key}: no such file or directory\n"
                                  "resource not found.")
        self.files().delete(key)

    def upload_backup(self, upload: UploadedFile | None) -> str:
        if upload is None:
            raise ValidationError(VALIDATION_FAILED, {"file": REQUIRED})
        if upload.mime != "application/zip":
            shown = safe_name(upload.original_name, upload.head)
            raise ValidationError(VALIDATION_FAILED, {"file": FieldError(
                "validation_invalid_mime_type", f'"{shown}" mime type must be one of: application/zip.')})
        key = upload_key(upload.original_name, upload.head)
        if self._existing(key) is not None:
            raise ValidationError(VALIDATION_FAILED, {"file": FieldError(
                "validation_backup_name_exists", "Backup file with the specified name already exists.")})
        upload.file.seek(0)
        self.files().put(key, upload.file)
        return key

    # --- create ---
    def generate_name(self, prefix: str = "pb_backup_") -> str:
        app_name = snakecase(str(self.settings.get()["meta"].get("appName") or ""))[:50]
        return f"{prefix}{app_name}_{now():%Y%m%d%H%M%S}.zip"

    def validate_name(self, name: str) -> None:
        if not name:
            return
        error = None
        if len(name) > 150:
            error = FieldError("validation_length_out_of_range", "The length must be between 1 and 150.",
                               {"min": 1, "max": 150})
        elif not NAME_RE.match(name):
            error = FieldError("validation_match_invalid", "Must be in a valid format.")
        elif self._existing(name) is not None:
            error = FieldError("validation_backup_name_exists", "The backup file name is invalid or already exists.")
        if error is not None:
            raise ValidationError(VALIDATION_FAILED, {"name": error})

    def create_backup(self, name: str = "") -> str:
        """Write a new archive (``name`` validated as PocketBase does; generated when empty)."""
        self.validate_name(name)
        name = name or self.generate_name()
        with self.exclusive(name):
            self._create(name)
        return name

    def _create(self, name: str) -> None:
        tmp = self._temp_dir("backup_")
        try:
            archive = tmp / "archive.zip"
            with zipfile.ZipFile(archive, "w", allowZip64=True) as zf:
                if self.db.is_sqlite:
                    with self.db.exclusive() as conn:  # writes wait; the two snapshots match
                        backup_sqlite.snapshot_with(conn, tmp / SQLITE_DB)
                        snapshot_storage(self.files_root, tmp / "storage")
                    zf.write(tmp / SQLITE_DB, SQLITE_DB, compress_type=zipfile.ZIP_DEFLATED)
                    (tmp / SQLITE_DB).unlink()
                    add_storage(zf, tmp / "storage")
                    zf.writestr(MANIFEST, manifest("sqlite"), compress_type=zipfile.ZIP_DEFLATED)
                else:
                    tables = backup_pg.dump(self.db, self.collections.table, zf,
                                            lambda: self._stage_storage(tmp / "storage"))
                    add_storage(zf, tmp / "storage")
                    zf.writestr(MANIFEST, manifest("postgresql", tables), compress_type=zipfile.ZIP_DEFLATED)
            self._store(name, archive)
        except Exception as exc:  # a full or read-only disk: 507/503, not a bug's 500
            refused = storage_error(exc)
            if refused is None:
                raise
            raise refused from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("backup %s created", name)

    def _stage_storage(self, dest: Path) -> None:
        snapshot_storage(self.files_root, dest)

    def _store(self, key: str, archive: Path) -> None:
        check_backup_key(key)
        store = self.files()
        if isinstance(store, LocalStorage):  # a rename, not a second copy of a large file
            store.root.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(archive, store.root / key)
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        with archive.open("rb") as fh:
            store.put(key, fh)

    # --- restore ---
    def restore_backup(self, key: str) -> None:
        """Replace the data with the archive's; nothing changes unless the archive is sound."""
        if self.busy:
            raise BadRequestError(BUSY)
        if self._existing(key) is None:
            raise BadRequestError(INVALID_FILE)
        with self.exclusive(key):
            tmp = self._temp_dir("restore_")
            try:
                archive = self._local_copy(key, tmp)
                try:
                    if self.db.is_sqlite:
                        self._restore_sqlite(archive, tmp)
                    else:
                        self._restore_pg(archive, tmp)
                except InvalidArchiveError as exc:
                    log.warning("restore of backup %s refused, nothing changed: %s", key, exc)
                    raise BadRequestError(INVALID_FILE) from exc
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        self._reload()
        log.info("backup %s restored", key)

    def _local_copy(self, key: str, tmp: Path) -> Path:
        store = self.files()
        if isinstance(store, LocalStorage):
            return store.root / check_backup_key(key)
        path = tmp / "archive.zip"
        with path.open("wb") as out:
            for chunk in store.iter_range(key):
                out.write(chunk)
        return path

    def _restore_sqlite(self, archive: Path, tmp: Path) -> None:
        zf, _info = open_archive(archive, "sqlite")
        with zf:
            extract_member(zf, SQLITE_DB, tmp / SQLITE_DB)
            extract_storage(zf, tmp / "storage")
        with self.db.read() as conn:
            live_page_size = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
        backup_sqlite.check(tmp / SQLITE_DB, live_page_size)
        with self.db.exclusive() as conn:
            swap_dirs(self.files_root, tmp / "storage", tmp / "old_storage")
            try:
                backup_sqlite.restore_with(conn, tmp / SQLITE_DB)
            except BaseException as exc:
                swap_dirs(self.files_root, tmp / "old_storage", tmp / "storage")
                import sqlite3

                if isinstance(exc, sqlite3.Error):
                    raise InvalidArchiveError(f"SQLite refused the database: {exc}") from exc
                raise

    def _restore_pg(self, archive: Path, tmp: Path) -> None:
        zf, info = open_archive(archive, "postgresql")
        with zf:
            backup_pg.check_manifest(info)
            extract_storage(zf, tmp / "storage")
            with self.db.write() as conn:
                backup_pg.load(conn, zf, info, self.collections.table)
        swap_dirs(self.files_root, tmp / "storage", tmp / "old_storage")

    def _reload(self) -> None:
        """Caches that hold database state, after a restore."""
        steps: list[Callable[[], Any]] = [self.collections.refresh, self.settings.invalidate,
                                          *self.collections.on_change, self.sync_schedule, *self.on_restored]
        for step in steps:
            try:
                step()
            except Exception:
                log.exception("reloading after a restore failed in %r", step)

    # --- scheduled backups ---
    def sync_schedule(self) -> None:
        """Register (or remove) the auto-backup job after the ``backups.cron`` setting."""
        expression = str(self.settings.get()["backups"].get("cron") or "")
        if not expression:
            self.scheduler.remove(JOB_ID)
            return
        try:
            self.scheduler.add(JOB_ID, expression, self.auto_backup)
        except ValueError:
            log.error("backups.cron %r is not a valid cron expression; no auto backups", expression)
            self.scheduler.remove(JOB_ID)

    def auto_backup(self) -> None:
        """The auto-backup job: a new ``auto_pb_backup_*`` archive, then only the newest
        ``backups.cronMaxKeep`` of them are kept (0 keeps all)."""
        name = self.generate_name(AUTO_PREFIX)
        try:
            with self.exclusive(name):
                self._create(name)
        except BadRequestError:
            log.error("auto backup skipped: another backup/restore is running")
        max_keep = int(self.settings.get()["backups"].get("cronMaxKeep") or 0)
        if max_keep <= 0:
            return
        autos = sorted((b for b in self.list_backups() if b.key.startswith(AUTO_PREFIX)),
                       key=lambda b: (b.modified, b.key), reverse=True)
        for old in autos[max_keep:]:
            try:
                self.files().delete(old.key)
            except Exception:
                log.exception("cannot remove old auto backup %s", old.key)

    # --- temp space (inside the data dir: renames stay on one filesystem) ---
    def _temp_dir(self, prefix: str) -> Path:
        self.temp_root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.temp_root))

    def _clean_temp(self) -> None:
        """Leftovers of a crashed backup/restore (old enough not to belong to a running one)."""
        if not self.temp_root.is_dir():
            return
        cutoff = time.time() - _TEMP_MAX_AGE
        for entry in self.temp_root.iterdir():
            try:
                if entry.stat().st_mtime >= cutoff:
                    continue
                if (entry / "old_storage").is_dir():  # a restore was interrupted between its two steps
                    log.warning("kept %s: the uploads folder from before an interrupted restore", entry)
                    continue
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink()
            except OSError:
                continue

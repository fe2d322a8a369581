"""The keepbase backup archive: a zip with a manifest, the database and the ``storage/`` tree.

Layout (``docs/backups.md`` has the full description)::

    keepbase_backup.json      manifest: {"format": 1, "engine": "sqlite"|"postgresql", "created", "tables"}
    data.db                   SQLite: a consistent snapshot (online backup API), rollback-journal mode
    db/<table>.jsonl          PostgreSQL: one JSON object per row, read in one REPEATABLE READ snapshot
    storage/<key>             the local uploaded-files tree, keys as the Storage layer writes them

Reading an archive never trusts a member name: only the names above are used, every storage key
goes through ``files.check_key`` (no ``..``, no absolute path, no backslash), and nothing is
extracted anywhere but into a fresh staging folder.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import orjson

from ..core.clock import now_str
from ..files import InvalidKeyError, check_key

MANIFEST = "keepbase_backup.json"
FORMAT = 1
STORAGE_PREFIX = "storage/"
SQLITE_DB = "data.db"
TABLE_PREFIX = "db/"
CHUNK = 1024 * 1024


class InvalidArchiveError(ValueError):
    """The archive is not a keepbase backup this server can restore (the reason is for logs)."""


def manifest(engine: str, tables: list[dict[str, Any]] | None = None) -> bytes:
    body: dict[str, Any] = {"format": FORMAT, "engine": engine, "created": now_str()}
    if tables is not None:
        body["tables"] = tables
    return orjson.dumps(body, option=orjson.OPT_INDENT_2)


def snapshot_storage(root: Path, dest: Path) -> int:
    """Mirror the files under ``root`` into ``dest``: hard links where possible (instant, and a
    later delete or overwrite of a live file leaves the linked copy intact, since the Storage
    layer always writes a new file and renames it), else copies. Returns the number of files."""
    count = 0
    if not root.is_dir():
        return 0
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink() or path.name.startswith(".tmp_"):
            continue
        rel = path.relative_to(root).as_posix()
        try:
            check_key(rel)
        except InvalidKeyError:
            continue  # never produced by the Storage layer; not ours to archive
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except FileNotFoundError:
            continue  # deleted a moment ago
        except OSError:
            try:
                shutil.copy2(path, target)
            except FileNotFoundError:
                continue
        count += 1
    return count


def add_storage(zf: zipfile.ZipFile, staged: Path) -> None:
    """Write a staged storage tree into the archive under ``storage/``."""
    if not staged.is_dir():
        return
    for path in sorted(staged.rglob("*")):
        if path.is_file():
            zf.write(path, STORAGE_PREFIX + path.relative_to(staged).as_posix(),
                     compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)


def open_archive(path: Path, engine: str) -> tuple[zipfile.ZipFile, dict[str, Any]]:
    """The opened zip and its manifest; ``InvalidArchiveError`` unless it is a keepbase backup
    of ``engine`` in a format this version reads."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidArchiveError(f"not a zip archive: {exc}") from exc
    try:
        try:
            info = orjson.loads(zf.read(MANIFEST))
        except KeyError:
            raise InvalidArchiveError(f"no {MANIFEST} (not a keepbase backup)") from None
        except (orjson.JSONDecodeError, zipfile.BadZipFile, OSError) as exc:
            raise InvalidArchiveError(f"unreadable {MANIFEST}: {exc}") from exc
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise InvalidArchiveError(f"unsupported backup format {info.get('format') if isinstance(info, dict) else info!r}")
        if info.get("engine") != engine:
            raise InvalidArchiveError(f"a {info.get('engine')} backup cannot be restored into {engine}")
    except BaseException:
        zf.close()
        raise
    return zf, info


def extract_member(zf: zipfile.ZipFile, name: str, dest: Path) -> None:
    """Stream one member to ``dest`` (CRC checked by zipfile at the end of the read)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zf.open(name) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
    except KeyError:
        raise InvalidArchiveError(f"missing {name}") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise InvalidArchiveError(f"cannot extract {name}: {exc}") from exc


def extract_storage(zf: zipfile.ZipFile, dest: Path) -> int:
    """Extract every ``storage/<key>`` member into ``dest`` (which must not exist yet); members
    whose key is not a safe storage key make the whole archive invalid."""
    dest.mkdir(parents=True)
    count = 0
    for info in zf.infolist():
        name = info.filename
        if not name.startswith(STORAGE_PREFIX) or info.is_dir():
            continue
        key = name[len(STORAGE_PREFIX):]
        try:
            check_key(key)
        except InvalidKeyError:
            raise InvalidArchiveError(f"unsafe storage member name {name!r}") from None
        extract_member(zf, name, dest / key)
        count += 1
    return count


def swap_dirs(live: Path, staged: Path, old: Path) -> None:
    """Put ``staged`` in place of ``live`` (moved to ``old``): two renames on one filesystem.
    Calling it again with ``old`` as ``staged`` undoes it."""
    live.mkdir(parents=True, exist_ok=True)
    os.replace(live, old)
    try:
        os.replace(staged, live)
    except BaseException:
        os.replace(old, live)
        raise

"""Local filesystem storage: ``<data dir>/storage/<key>``.

A file is written to a temp file next to its final name, flushed to disk (``fsync``: a stored
upload is as durable as the row that names it) and renamed into place, so a reader never sees
half a file and a failed write leaves nothing. When the disk is full or refuses writes the
OSError becomes ``InsufficientStorageError`` (507) or ``StorageUnavailableError`` (503); the
record save that stored it then rolls back (``store.record_files``).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..core.errors import InsufficientStorageError, StorageUnavailableError
from .storage import CHUNK, FileStat, InvalidKeyError, check_key

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_REFUSED = frozenset({errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM})


@contextmanager
def _writing() -> Iterator[None]:
    """Disk full / read-only as the API errors the client gets; other OSErrors stay as they are."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _FULL:
            raise InsufficientStorageError() from exc
        if exc.errno in _REFUSED:
            raise StorageUnavailableError() from exc
        raise


class LocalStorage:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str, *, prefix: bool = False) -> Path:
        path = (self.root / check_key(key, prefix=prefix).rstrip("/")).resolve()
        # Belt and braces after check_key: a symlink planted inside the folder must not lead out.
        if self.root not in path.parents:
            raise InvalidKeyError(key)
        return path

    def put(self, key: str, src: BinaryIO) -> None:
        path = self._path(key)
        with _writing():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_")
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
                    out.flush()
                    os.fsync(out.fileno())  # some file systems report a full disk only here
                os.replace(tmp, path)
            except BaseException:
                try:
                    Path(tmp).unlink(missing_ok=True)
                except OSError:  # a read-only disk: the original error is the one to report
                    pass
                self._prune(path.parent)
                raise

    def put_bytes(self, key: str, data: bytes) -> None:
        import io

        self.put(key, io.BytesIO(data))

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def iter_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self._path(key)
        with path.open("rb") as fh:
            fh.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                chunk = fh.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def stat(self, key: str) -> FileStat | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        return FileStat(size=st.st_size, modified=st.st_mtime)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix, prefix=True)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        self._prune(path.parent)

    def _prune(self, folder: Path) -> None:
        """Remove now-empty folders up to the root (a record without files leaves nothing behind)."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix, prefix=True) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*")
                      if p.is_file() and not p.name.startswith(".tmp_"))

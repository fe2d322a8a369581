"""One server per SQLite data folder: an OS file lock held for the process's lifetime.

``FolderLock.acquire(dir)`` takes an exclusive ``flock`` on ``<dir>/.keepbase.lock`` without
waiting; the lock file then records who holds it (pid, address, control socket) as JSON, so a
second process can name the one that runs. The kernel releases the lock when the process dies,
however it dies, so a stale file never blocks a start. Data-changing commands take the same
lock while they work; when a server holds it they hand their change to it instead (``control``).
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

LOCK_NAME = ".keepbase.lock"


class FolderBusy(Exception):
    """Another process holds the folder; ``holder`` is what it wrote in the lock file."""

    def __init__(self, path: Path, holder: dict[str, Any]) -> None:
        self.path = path
        self.holder = holder
        super().__init__(describe_holder(path.parent.resolve(), holder))


def describe_holder(folder: Path, holder: dict[str, Any]) -> str:
    what = "a keepbase server" if holder.get("role") == "serve" else "a keepbase command"
    pid = holder.get("pid")
    where = f" at http://{holder['http']}" if holder.get("http") else ""
    return f"{what} (pid {pid if pid else 'unknown'}{where}) is already using the data folder {folder}"


@dataclass
class FolderLock:
    path: Path
    fd: int

    @classmethod
    def acquire(cls, folder: Path, role: str) -> FolderLock:
        """Lock ``folder`` (created if missing) or raise FolderBusy; OSError if it cannot be written."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderBusy(path, read_holder(folder)) from None
        except BaseException:
            os.close(fd)
            raise
        lock = cls(path, fd)
        lock.describe(role=role)
        return lock

    def describe(self, **info: Any) -> None:
        """Record who holds the lock (merged into what is there)."""
        current = _read_fd(self.fd)
        current.update(info, pid=os.getpid())
        data = orjson.dumps(current)
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            os.ftruncate(self.fd, 0)
        except OSError:
            pass  # a read-only folder: the lock still ends with the descriptor
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = -1


def read_holder(folder: Path) -> dict[str, Any]:
    """What the holder of ``folder``'s lock wrote ({} if nothing readable)."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        return _read_fd(fd)
    finally:
        os.close(fd)


def _read_fd(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 65536, 0)
        data = orjson.loads(raw) if raw.strip() else {}
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}

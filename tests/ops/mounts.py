"""Real mounts for the storage-failure tests: a small tmpfs to fill up, and an ext4 image that the
kernel turns read-only while files are open (``errors=remount-ro``).

Why not ``mount -o remount,bind,ro`` on a running server: the kernel refuses it (EBUSY) while
any file on the mount is open for writing, which the server's SQLite files always are. What does
turn a busy file system read-only at run time is the kernel's own reaction to an error
(``errors=remount-ro``); ext4's ``trigger_fs_error`` sysfs switch raises exactly that, so the
server sees what it would see on a failing disk: writes refused (EROFS/EIO), reads working.

Everything mounted here is unmounted in the fixture teardown (lazily if still busy). The tests
skip, with the reason, when not run as root or when the kernel lacks loop devices / ext4.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FILLER = "filler.bin"


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts a tmpfs / ext4 image as the data folder")
    if shutil.which("mount") is None:
        pytest.skip("no mount(8) on this machine")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60)


def _umount(path: Path) -> None:
    if _run("umount", str(path)).returncode != 0:
        _run("umount", "-l", str(path))


@contextmanager
def tmpfs(path: Path, size: str = "4m") -> Iterator[Path]:
    """``path`` as a fresh tmpfs of ``size`` bytes."""
    need_root()
    path.mkdir(parents=True, exist_ok=True)
    done = _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield path
    finally:
        _umount(path)


@contextmanager
def ext4_image(path: Path, image: Path, size_mb: int = 32) -> Iterator[Path]:
    """``path`` as a fresh ext4 file system on a loop device, mounted with ``errors=remount-ro``."""
    need_root()
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("no mkfs.ext4 on this machine")
    path.mkdir(parents=True, exist_ok=True)
    with open(image, "wb") as fh:
        fh.truncate(size_mb * 1024 * 1024)
    made = _run("mkfs.ext4", "-q", "-F", str(image))
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {made.stderr.strip()}")
    done = _run("mount", "-o", "loop,errors=remount-ro", str(image), str(path))
    if done.returncode != 0:
        pytest.skip(f"cannot mount an ext4 image on a loop device: {done.stderr.strip()}")
    try:
        yield path
    finally:
        _umount(path)
        image.unlink(missing_ok=True)


def turn_read_only(path: Path) -> None:
    """Make the ext4 file system mounted at ``path`` read-only now, open files or not."""
    source = _run("findmnt", "-no", "SOURCE", str(path)).stdout.strip()
    switch = Path("/sys/fs/ext4") / os.path.basename(source) / "trigger_fs_error"
    if not switch.exists():
        pytest.skip(f"this kernel has no {switch}")
    switch.write_text("keepbase test: simulated disk failure\n")
    options = _run("findmnt", "-no", "OPTIONS", str(path)).stdout.strip().split(",")
    assert {"ro", "emergency_ro"} & set(options), f"{path} did not turn read-only: {options}"
    probe = path / ".probe"
    with pytest.raises(OSError) as refused:  # and it is: no new file can be written
        probe.write_bytes(b"x")
    assert refused.value.errno in (errno.EROFS, errno.EIO), refused.value


def fill(folder: Path, leave: int = 0) -> Path:
    """Write a filler file until the disk is full, then give back ``leave`` bytes."""
    filler = folder / FILLER
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as fh:
        try:
            while fh.write(chunk):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    if leave:
        size = filler.stat().st_size
        with open(filler, "r+b") as fh:
            fh.truncate(max(size - leave, 0))
    return filler


def free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize

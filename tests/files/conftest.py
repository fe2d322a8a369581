"""Fixtures for the files tests: image bytes, a real local S3-compatible server (moto), and a
``storage`` fixture parametrized over every Storage backend (habit 7: one contract suite)."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from keepbase.app import App
from keepbase.files import LocalStorage, Storage

MOTO = shutil.which("moto_server")


def png(w: int = 300, h: int = 200, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def jpeg(w: int = 300, h: int = 200) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")


def bomb_png(w: int = 30000, h: int = 30000) -> bytes:
    """A few hundred bytes declaring w x h pixels (a 1-bit greyscale PNG whose rows are all zero)."""
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    row = b"\x00" * (1 + (w + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(64)) + comp.flush()  # truncated on purpose
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def stored_files(app: App) -> list[str]:
    """Every file under the app's local storage folder (relative paths), temp files included."""
    root = Path(app.config.dir) / "storage"
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3-compatible HTTP server (moto) in a subprocess; skip only if it cannot start."""
    if MOTO is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115 - closed below
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    proc = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.skip(f"moto_server exited with code {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.skip("moto_server did not start within 30 s")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def s3_settings(endpoint: str, bucket: str) -> dict[str, Any]:
    return {"enabled": True, "bucket": bucket, "region": "us-east-1", "endpoint": endpoint,
            "accessKey": "test", "secret": "test", "forcePathStyle": True}


def new_bucket(endpoint: str) -> str:
    import boto3

    name = "kb-" + uuid.uuid4().hex[:16]
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "storage")
    from keepbase.files.s3 import S3Storage

    endpoint = request.getfixturevalue("s3_endpoint")
    return S3Storage(s3_settings(endpoint, new_bucket(endpoint)))

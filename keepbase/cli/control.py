"""The control socket: how a command hands its change to the server that runs on a data folder.

The server listens on a Unix socket (``<dir>/.keepbase.sock``, or a per-folder name in the temp
folder when that path is too long for a socket) created with mode 0600, and only answers peers of
its own user or root (``SO_PEERCRED``): reaching it is as privileged as reading the data folder.
One request per connection: a JSON line ``{"op": NAME, "args": {...}}``, answered by a JSON line
``{"code": EXIT_CODE, "message": TEXT}``. Operations run in a worker thread with the server's App.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import struct
import tempfile
from pathlib import Path
from typing import Any

import anyio.to_thread
import orjson

from .operations import OPERATIONS

log = logging.getLogger("keepbase.control")
SOCKET_NAME = ".keepbase.sock"
_MAX_REQUEST = 64 * 1024 * 1024  # an imported schema can be large
_SUN_PATH_MAX = 100  # sockaddr_un holds 108 bytes on Linux; keep a margin


class ControlError(Exception):
    """The running server could not be reached or did not answer."""


def socket_path(folder: Path) -> Path:
    path = folder.resolve() / SOCKET_NAME
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return path
    digest = hashlib.sha256(os.fsencode(folder.resolve())).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"keepbase-{digest}.sock"


def _peer_allowed(sock: socket.socket | None) -> bool:
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return False
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid in (0, os.getuid())


class ControlServer:
    def __init__(self, app: Any, path: Path) -> None:
        self.app = app
        self.path = path
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)  # a stale socket of a dead server (we hold the folder lock)
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._handle, path=str(self.path),
                                                           limit=_MAX_REQUEST)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass  # a folder turned read-only: the next start replaces the stale socket

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not _peer_allowed(writer.get_extra_info("socket")):
                answer: dict[str, Any] = {"code": 1, "message": "Error: not allowed"}
            else:
                answer = await self._run(await reader.readline())
            writer.write(orjson.dumps(answer) + b"\n")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass  # the command went away
        finally:
            writer.close()

    async def _run(self, line: bytes) -> dict[str, Any]:
        try:
            request = orjson.loads(line)
            op = OPERATIONS[request["op"]]
            args = request.get("args") or {}
            if not isinstance(args, dict):
                raise TypeError("args")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return {"code": 2, "message": "Error: unknown or malformed request"}
        try:
            code, message = await anyio.to_thread.run_sync(op, self.app, args)
        except Exception as exc:
            log.exception("control: %s failed", request["op"])
            return {"code": 1, "message": f"Error: {type(exc).__name__}: {exc}"}
        log.info("control: %s done (%d)", request["op"], code)
        return {"code": code, "message": message}


def call(path: Path, op: str, args: dict[str, Any], timeout: float = 120) -> tuple[int, str]:
    """Run ``op`` on the server listening on ``path``: (exit code, message)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(orjson.dumps({"op": op, "args": args}) + b"\n")
            chunks = []
            while not chunks or not chunks[-1].endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except OSError as exc:
            raise ControlError(f"cannot reach the server's control socket {path}: {exc.strerror or exc}") from exc
    try:
        answer = orjson.loads(b"".join(chunks))
        return int(answer["code"]), str(answer["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ControlError(f"the server on {path} gave no answer") from exc

"""Throwaway Redis servers for the test suite.

``RedisServer`` runs Debian's ``redis-server`` (from ``scripts/install``) on 127.0.0.1 on a free
port, without persistence, in a temporary directory; ``stop``/``start`` keep the port, so a test
can restart it under connected clients. ``ensure_redis()`` returns the URL of one server per
process (stopped when the session ends, or at interpreter exit), or ``KEEPBASE_TEST_REDIS_URL`` when set. The ``redis_url``
fixture hands that URL to tests (import it into a test module to use it).

Every keepbase app namespaces its Redis channel and keys with its own database's id, so tests
sharing one server do not see each other's events or counters.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

__all__ = ["REDIS_URL_ENV", "RedisServer", "ensure_redis", "redis_url"]

REDIS_URL_ENV = "KEEPBASE_TEST_REDIS_URL"
_INSTALL_HINT = "run `scripts/install` (it installs Debian's `redis-server` package) or set KEEPBASE_TEST_REDIS_URL"

_lock = threading.Lock()
_shared: RedisServer | None = None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(f"redis-server not found: {_INSTALL_HINT}")
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="kb-redis-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.owner_pid = os.getpid()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.root / "redis.log"

    def start(self, timeout: float = 30.0) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", str(self.log_path)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n{self._log()}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not answer on port {self.port}:\n{self._log()}")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (by its PID); its port stays reserved for ``start``."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        if os.getpid() != self.owner_pid:  # forked child: the server belongs to the parent
            return
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError as exc:
            return f"<no log: {exc}>"


def ensure_redis() -> str:
    """The URL of a running Redis server (see the module docstring)."""
    global _shared
    env = os.environ.get(REDIS_URL_ENV)
    if env:
        return env
    with _lock:
        if _shared is None:
            server = RedisServer()
            server.start()
            atexit.register(server.close)
            _shared = server
        return _shared.url


def _close_shared() -> None:
    global _shared
    with _lock:
        server, _shared = _shared, None
    if server is not None:
        server.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server for the session; the one started here is killed when the session ends."""
    yield ensure_redis()
    _close_shared()

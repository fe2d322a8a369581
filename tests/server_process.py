"""A real ``keepbase`` process for tests that need signals, sockets, exit codes and output.

``ServerProcess.start(tmp_path, "--dir", ...)`` runs ``python -m keepbase serve`` on a free
loopback port with its output captured to a file; ``wait_ready()`` polls ``/api/health``;
``stop()`` sends SIGTERM and returns the exit code. ``run_cli(...)`` runs any other command
and returns (exit code, combined output). Nothing here imports pytest.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPBASE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_cli(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60,
            cwd: Path | None = None) -> tuple[int, str]:
    """``python -m keepbase ARGS``: (exit code, stdout + stderr)."""
    proc = subprocess.run([sys.executable, "-m", "keepbase", *args], capture_output=True, text=True,
                          env=_env(env), timeout=timeout, cwd=cwd)
    return proc.returncode, proc.stdout + proc.stderr


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    port: int
    args: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, tmp_path: Path, *args: str, env: Mapping[str, str] | None = None,
              port: int | None = None, name: str = "serve") -> ServerProcess:
        """Start ``keepbase serve ARGS --http 127.0.0.1:PORT`` (``--dir`` defaults to tmp_path/data)."""
        port = port or free_port()
        argv = list(args)
        if "--dir" not in argv:
            argv += ["--dir", str(tmp_path / "data")]
        if "--http" not in argv:
            argv += ["--http", f"127.0.0.1:{port}"]
        log = tmp_path / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "keepbase", "serve", *argv], stdout=out,
                                    stderr=subprocess.STDOUT, env=_env(env), start_new_session=True)
        return cls(proc, f"http://127.0.0.1:{port}", log, port, argv)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"keepbase exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code in (200, 503):
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"keepbase did not answer within {timeout} s:\n{self.output()}")
            time.sleep(0.05)

    def wait_exit(self, timeout: float = 30) -> int:
        """The exit code, waiting at most ``timeout`` seconds (raises on a timeout, after a SIGKILL)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"keepbase still running after {timeout} s:\n{self.output()}") from None

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code."""
        self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(15)


def stop_all(servers: Sequence[ServerProcess]) -> None:
    """Make sure no server outlives a test (SIGKILL whatever is still running)."""
    for s in servers:
        s.kill()

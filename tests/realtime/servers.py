"""Real ``keepbase serve`` processes for the realtime tests (SSE needs a socket, not ASGITransport).

Each server gets a free port on 127.0.0.1, its own data folder and (for PostgreSQL) the database
it is given, so two servers may share one database as two nodes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[2]
EMAIL = "rt-admin@example.com"
PASSWORD = "Rt-admin-pass-123456"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    pp = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + pp if pp else "")
    env.update(extra or {})
    return env


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError as exc:
            return f"<no log: {exc}>"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
            except ProcessLookupError:
                pass
        self.log_file.close()


def upsert_superuser(data_dir: Path, db_url: str = "") -> None:
    argv = [sys.executable, "-m", "keepbase", "superuser", "upsert", EMAIL, PASSWORD, "--dir", str(data_dir)]
    if db_url:
        argv += ["--db", db_url]
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=python_env(), capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"superuser upsert failed: {proc.stdout}\n{proc.stderr}")


def start_server(name: str, data_dir: Path, db_url: str = "", env: dict[str, str] | None = None,
                 timeout: float = 60.0) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "keepbase", "serve", "--http", f"127.0.0.1:{port}", "--dir", str(data_dir)]
    if db_url:
        argv += ["--db", db_url]
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{name}-server.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed by Server.stop
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=python_env(env), stdout=log_file, stderr=subprocess.STDOUT)
    server = Server(name, f"http://127.0.0.1:{port}", proc, log_path, log_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            server.stop()
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.url + "/api/health", timeout=2) as resp:
                if resp.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not become healthy:\n{server.log()}")

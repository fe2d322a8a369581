"""``keepbase serve --hooks DIR`` in a real subprocess: files load, routes and hooks are live."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HOOK_FILE = '''
from keepbase import App, RecordEvent


def setup(app: App) -> None:
    @app.route("/ping")
    def ping(request):
        return {"pong": True, "collections": len(app.collections.all())}

    @app.on_record_create("_superusers")
    def tag(e: RecordEvent) -> None:
        e.next()
'''


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(tmp_path: Path, hooks: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = _port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "keepbase", "serve", "--http", f"127.0.0.1:{port}",
                                 "--dir", str(tmp_path / "data"), "--hooks", str(hooks)],
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc, f"http://127.0.0.1:{port}", log


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(15)


def test_serve_loads_hooks_dir(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "ping.py").write_text(HOOK_FILE)
    (hooks / "_private.py").write_text("raise RuntimeError('skipped: starts with _')\n")
    proc, url, log = _serve(tmp_path, hooks)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                r = httpx.get(f"{url}/api/ping", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["pong"] is True
        assert httpx.get(f"{url}/api/health").status_code == 200
    finally:
        _stop(proc)
    assert "hooks: ping.py from" in log.read_text()


def test_a_broken_hooks_file_stops_startup(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "broken.py").write_text("def setup(app):\n    raise ValueError('bad config')\n")
    proc, _url, log = _serve(tmp_path, hooks)
    try:
        assert proc.wait(30) != 0
    finally:
        _stop(proc)
    text = log.read_text()
    assert "cannot load hooks" in text and "broken.py: ValueError: bad config" in text

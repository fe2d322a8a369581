"""A real ``keepbase serve`` process for the dashboard's browser tests, on SQLite and PostgreSQL.

Servers are started with the helpers of ``tests/js_harness.py`` (free 127.0.0.1 port, fresh data
folder, fresh PostgreSQL database, superuser created through the CLI) and shared by every test of
this package for one engine; tests seed their own, uniquely named collections through ``SeedApi``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.js_harness import (
    EMAIL,
    PASSWORD,
    REPO_ROOT,
    Server,
    _free_port,
    _postgres_url,
    _python_env,
    _run_checked,
    _start,
    _stop,
    _wait_healthy,
)


class SeedApi:
    """Just enough of a superuser HTTP client to set up and check data behind the browser's back."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        status, body = self.call("POST", "/api/collections/_superusers/auth-with-password",
                                 {"identity": EMAIL, "password": PASSWORD}, auth=False)
        assert status == 200, body
        self.token = str(body["token"])

    def call(self, method: str, path: str, body: Any = None, *, auth: bool = True,
             token: str | None = None) -> tuple[int, Any]:
        """``token`` overrides the superuser's; ``auth=False`` sends none."""
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = token or self.token
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, result = self.call(method, path, body)
        assert 200 <= status < 300, (method, path, status, result)
        return result

    def create_collection(self, name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(self.ok("POST", "/api/collections", {"name": name, "type": "base", "fields": fields}))

    def create_record(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.ok("POST", f"/api/collections/{collection}/records", body))

    def list_records(self, collection: str, query: str = "perPage=500") -> list[dict[str, Any]]:
        return list(self.ok("GET", f"/api/collections/{collection}/records?{query}")["items"])


@pytest.fixture(scope="package", params=["sqlite", "postgres"])
def kb_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    engine = str(request.param)
    root = tmp_path_factory.mktemp(f"dashboard-{engine}")
    data_dir = root / "data"
    env = _python_env()
    db_args: list[str] = []
    if engine == "postgres":
        db_url, drop = _postgres_url()
        request.addfinalizer(drop)  # type: ignore[arg-type]
        db_args = ["--db", db_url]
    base = [sys.executable, "-m", "keepbase"]
    _run_checked([*base, "superuser", "upsert", EMAIL, PASSWORD, "--dir", str(data_dir), *db_args],
                 cwd=REPO_ROOT, env=env, what="keepbase superuser upsert")
    port = _free_port()
    serve = [*base, "serve", "--http", f"127.0.0.1:{port}", "--dir", str(data_dir), *db_args]
    server = _start(engine, serve, cwd=root, env=env, port=port)
    try:
        _wait_healthy(server)
        yield server
    finally:
        _stop(server.proc)
        for fn in reversed(server.cleanups):
            fn()


@pytest.fixture(scope="package")
def seed(kb_server: Server) -> SeedApi:
    return SeedApi(kb_server.url)


CHROMIUM = os.environ.get("KEEPBASE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium driven by Playwright (one per test module)."""
    if CHROMIUM is None:
        pytest.skip("no Chromium found: install Debian's `chromium` package (scripts/install does), "
                    "or point KEEPBASE_CHROMIUM at a Chromium binary")
    playwright = pytest.importorskip("playwright.sync_api")
    pw = playwright.sync_playwright().start()
    try:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, timeout=120_000)
        except playwright.Error as exc:
            pytest.skip(f"Chromium at {CHROMIUM} cannot be launched by Playwright: {exc}")
        yield browser
        browser.close()
    finally:
        pw.stop()

"""GET /api/health (SQLite + PostgreSQL): PocketBase's body, the superuser detail, and 503 when the
node cannot serve (database gone, data folder read-only)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from keepbase.api.health import DB_DOWN, DIR_READONLY, HealthMonitor, monitor_of, probe_folder
from keepbase.app import App
from keepbase.store.db import Database

HEALTHY = {"message": "API is healthy.", "code": 200, "data": {}}
PW = "userpass123"


async def _user_headers(client: httpx.AsyncClient) -> dict[str, str]:
    r = await client.post("/api/collections/users/records",
                          json={"email": "health-user@example.com", "password": PW, "passwordConfirm": PW})
    assert r.status_code == 200, r.text
    r = await client.post("/api/collections/users/auth-with-password",
                          json={"identity": "health-user@example.com", "password": PW})
    assert r.status_code == 200, r.text
    return {"Authorization": r.json()["token"]}


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` refuse writes for real: a read-only bind mount as root (root ignores
    permission bits), else permission bits."""
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(mode)
        return
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount the data folder: {bind.stderr.strip()}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True, text=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount the data folder read-only: {ro.stderr.strip()}")
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


async def _wait_status(client: httpx.AsyncClient, status: int, timeout: float = 10) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        r = await client.get("/api/health")
        if r.status_code == status or time.monotonic() > deadline:
            return r
        await asyncio.sleep(0.2)


async def test_guest_body(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/health")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.text == '{"message":"API is healthy.","code":200,"data":{}}'  # key order as PocketBase
    head = await client.head("/api/health")
    assert head.status_code == 200 and head.content == b""
    r = await client.get("/api/health?fields=message")
    assert r.json() == {"message": "API is healthy."}


async def test_non_superuser_gets_the_guest_body(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/health", headers=await _user_headers(client))
    assert r.status_code == 200 and r.json() == HEALTHY
    r = await client.get("/api/health", headers={"Authorization": "not-a-token"})
    assert r.status_code == 200 and r.json() == HEALTHY


async def test_superuser_body_and_detail(client: httpx.AsyncClient, su_headers: dict[str, str], app: App) -> None:
    r = await client.get("/api/health", headers=su_headers)
    assert r.status_code == 200
    # as PocketBase, key order included
    assert r.text == ('{"message":"API is healthy.","code":200,"data":{"canBackup":true,"realIP":"127.0.0.1",'
                      '"possibleProxyHeader":""}}')
    r = await client.get("/api/health?detail=1", headers=su_headers)
    body = r.json()
    assert list(body) == ["message", "code", "data"]
    data = body["data"]
    assert list(data) == ["canBackup", "realIP", "possibleProxyHeader", "detail"]
    detail = data["detail"]
    assert detail["healthy"] is True
    assert detail["database"]["reachable"] is True
    assert detail["database"]["engine"] == ("sqlite" if app.db.is_sqlite else "postgresql")
    assert 0 <= detail["database"]["latencyMs"] < 2000
    assert detail["database"]["error"] == ""
    assert detail["dataDir"]["writable"] is True and detail["dataDir"]["freeBytes"] > 0
    assert detail["broker"]["type"] == ("memory" if app.db.is_sqlite else "postgres")
    assert detail["storage"] == {"type": "local", "writable": True}
    assert detail["mail"] == {"smtpEnabled": False, "queued": 0}
    assert detail["logs"]["queued"] >= 0
    assert detail["realtime"] == {"clients": 0}
    assert abs(detail["checkedAt"] - time.time()) < 60
    # the check really wrote the data folder
    assert (Path(app.config.dir) / ".kb_health").read_bytes() == b"ok"
    # only superusers get it
    r = await client.get("/api/health?detail=1")
    assert r.status_code == 200 and r.json() == HEALTHY


async def test_superuser_proxy_hints(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    r = await client.get("/api/health", headers={**su_headers, "X-Forwarded-For": "203.0.113.9"})
    assert r.json()["data"]["possibleProxyHeader"] == "X-Forwarded-For"
    assert r.json()["data"]["realIP"] == "127.0.0.1"  # not trusted: the TCP peer
    r = await client.patch("/api/settings", headers=su_headers,
                           json={"trustedProxy": {"headers": ["X-Real-IP"], "useLeftmostIP": False}})
    assert r.status_code == 200, r.text
    r = await client.get("/api/health", headers={**su_headers, "X-Real-IP": "198.51.100.4",
                                                 "CF-Connecting-IP": "192.0.2.1"})
    data = r.json()["data"]
    assert data["possibleProxyHeader"] == "X-Real-IP"  # configured headers come first
    assert data["realIP"] == "198.51.100.4"


async def test_checks_are_cached(client: httpx.AsyncClient, app: App) -> None:
    assert (await client.get("/api/health")).status_code == 200
    first = monitor_of(app).last
    assert first is not None
    for _ in range(20):
        assert (await client.get("/api/health")).status_code == 200
    if time.monotonic() - first.monotonic < 1.0:  # still fresh: no new check was made
        assert monitor_of(app).last is first


async def test_503_when_the_data_folder_is_read_only(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                     app: App) -> None:
    folder = Path(app.config.dir)
    with read_only(folder):
        assert probe_folder(folder).writable is False
        r = await _wait_status(client, 503)
        assert r.status_code == 503
        assert r.json() == {"data": {}, "message": DIR_READONLY, "status": 503}
        # a superuser's token does not change it: the node is out either way
        r = await client.get("/api/health", headers=su_headers)
        assert r.status_code == 503 and r.json()["message"] == DIR_READONLY
    r = await _wait_status(client, 200)
    assert r.status_code == 200 and r.json() == HEALTHY


async def test_503_when_the_database_is_gone(client: httpx.AsyncClient, app: App) -> None:
    if app.db.is_sqlite:
        pytest.skip("SQLite lives in the process: it cannot become unreachable (the read-only data "
                    "folder test covers the SQLite node)")
    from tests.pg_server import drop_database

    assert (await client.get("/api/health")).status_code == 200
    drop_database(app.config.db)  # terminates every connection; reconnecting fails
    r = await _wait_status(client, 503)
    assert r.status_code == 503
    assert r.json() == {"data": {}, "message": DB_DOWN, "status": 503}
    assert monitor_of(app).last is not None and "does not exist" in monitor_of(app).last.database.error


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_database_on_a_closed_port_is_unreachable(tmp_path: Path) -> None:
    db = Database(pg_url=f"postgresql://kb@127.0.0.1:{_closed_port()}/kb", pool_size=1)
    try:
        snap = HealthMonitor(db, tmp_path, timeout=10).snapshot()
    finally:
        db.dispose()
    assert snap.problem == DB_DOWN
    assert snap.database.reachable is False and "OperationalError" in snap.database.error
    assert snap.data_dir.writable is True


def test_a_database_that_never_answers_times_out(tmp_path: Path) -> None:
    with socket.socket() as listener:  # accepts connections (kernel backlog) but never speaks
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        db = Database(pg_url=f"postgresql://kb@127.0.0.1:{port}/kb", pool_size=1)
        monitor = HealthMonitor(db, tmp_path, timeout=0.3)
        started = time.monotonic()
        snap = monitor.snapshot()
        waited = time.monotonic() - started
    db.dispose()
    assert waited < 2
    assert snap.problem == DB_DOWN and "no answer within 0.3 s" in snap.database.error


@pytest.fixture
def db_args(engine: str, request: pytest.FixtureRequest) -> Iterator[list[str]]:
    if engine == "sqlite":
        yield []
        return
    from tests.pg_server import create_database, drop_database

    url = create_database(request.getfixturevalue("pg_base_url"))
    try:
        yield ["--db", url]
    finally:
        drop_database(url)


def test_served_node_reports_its_broker_connected(tmp_path: Path, db_args: list[str]) -> None:
    """In a real server realtime starts with it: the broker (in-memory, or PostgreSQL LISTEN) is
    connected, and the detail says so."""
    from tests.conftest import SU_EMAIL, SU_PASSWORD
    from tests.server_process import ServerProcess, run_cli

    dir_args = ["--dir", str(tmp_path / "data")]
    code, out = run_cli("superuser", "upsert", SU_EMAIL, SU_PASSWORD, *dir_args, *db_args)
    assert code == 0, out
    server = ServerProcess.start(tmp_path, *dir_args, *db_args).wait_ready()
    try:
        r = httpx.post(f"{server.url}/api/collections/_superusers/auth-with-password",
                       json={"identity": SU_EMAIL, "password": SU_PASSWORD})
        assert r.status_code == 200, r.text
        headers = {"Authorization": r.json()["token"]}
        deadline = time.monotonic() + 10
        while True:
            broker = httpx.get(f"{server.url}/api/health?detail=1", headers=headers).json()["data"]["detail"]["broker"]
            if broker["connected"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        assert server.stop() == 0
    assert broker == {"type": "memory" if not db_args else "postgres", "started": True, "connected": True}

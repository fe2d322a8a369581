"""The access log (SQLite + PostgreSQL): one line per request on stdout, text or JSON, with secrets
redacted; in-process (pytest's captured stdout) and from a real ``keepbase serve``."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keepbase.api.access_log import flush_all, is_secret_key, safe_target
from keepbase.app import App, create_app
from tests.server_process import ServerProcess

TEXT_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) ([A-Z]+) (\S+) (\d{3}) (\d+(?:\.\d+)?)ms$")
SECRET_QUERY = "?token=supersecret1&password=hunter2&otp=123456&thumb=100x100&Token=supersecret2"


def _lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if TEXT_LINE.match(line) or line.startswith('{"time"')]


def test_safe_target() -> None:
    assert safe_target("/api/health", b"") == "/api/health"
    assert safe_target("/api/f/a.png", b"token=abc&thumb=10x10") == "/api/f/a.png?token=[redacted]&thumb=10x10"
    assert safe_target("/x", b"pass%77ord=1&newPassword=2&x-api-key=3&otpId=4&sort=-created&flag") == (
        "/x?pass%77ord=[redacted]&newPassword=[redacted]&x-api-key=[redacted]&otpId=[redacted]&sort=-created&flag")
    assert is_secret_key("client_secret") and is_secret_key("refreshToken") and not is_secret_key("filter")


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"access_log": True}  # the suite's apps keep it off


async def test_text_lines_in_process(client: httpx.AsyncClient, app: App, capsys: pytest.CaptureFixture[str]) -> None:
    flush_all()  # earlier requests' lines out of the way
    capsys.readouterr()
    assert (await client.get("/api/health" + SECRET_QUERY)).status_code == 200
    assert (await client.get("/api/collections/nope/records")).status_code == 404
    assert (await client.options("/api/health", headers={"Origin": "http://x",
                                                         "Access-Control-Request-Method": "GET"})).status_code == 204
    flush_all()
    out = capsys.readouterr().out
    for secret in ("supersecret1", "supersecret2", "hunter2", "123456"):
        assert secret not in out
    lines = _lines(out)
    assert len(lines) == 3, out
    parsed = [TEXT_LINE.match(line) for line in lines]
    assert [(m[2], m[3], m[4], m[5]) for m in parsed if m] == [
        ("127.0.0.1", "GET", "/api/health?token=[redacted]&password=[redacted]&otp=[redacted]&thumb=100x100"
                             "&Token=[redacted]", "200"),
        ("127.0.0.1", "GET", "/api/collections/nope/records", "404"),
        ("127.0.0.1", "OPTIONS", "/api/health", "204"),
    ]
    assert all(m and float(m[6]) < 60_000 for m in parsed)


async def test_real_ip_behind_a_trusted_proxy(client: httpx.AsyncClient, su_headers: dict[str, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    r = await client.patch("/api/settings", headers=su_headers,
                           json={"trustedProxy": {"headers": ["X-Forwarded-For"], "useLeftmostIP": False}})
    assert r.status_code == 200, r.text
    flush_all()  # earlier requests' lines out of the way
    capsys.readouterr()
    await client.get("/api/health", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.9"})
    flush_all()
    lines = _lines(capsys.readouterr().out)
    assert len(lines) == 1 and " 203.0.113.9 GET /api/health 200 " in lines[0]


@pytest.fixture
def second_app(app: App, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[App]:
    """Another App on the same database, built with the settings under test (``request.param``)."""
    kb = create_app(app.config.with_values(dir=str(tmp_path / "second"), **request.param))
    try:
        yield kb
    finally:
        kb.close()


@pytest.mark.parametrize("second_app", [{"log_format": "json"}], indirect=True)
async def test_json_lines_in_process(second_app: App, capsys: pytest.CaptureFixture[str]) -> None:
    flush_all()  # earlier requests' lines out of the way
    capsys.readouterr()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=second_app.asgi), base_url="http://t") as c:
        await c.get("/api/files/users/abc/a.png" + SECRET_QUERY)
    flush_all()
    out = capsys.readouterr().out
    lines = _lines(out)
    assert len(lines) == 1, out
    entry = json.loads(lines[0])
    assert list(entry) == ["time", "log", "ip", "method", "path", "status", "durationMs"]
    assert entry["log"] == "access" and entry["ip"] == "127.0.0.1" and entry["method"] == "GET"
    assert entry["status"] == 404 and isinstance(entry["durationMs"], float)
    assert entry["path"].startswith("/api/files/users/abc/a.png?token=[redacted]&password=[redacted]")
    assert "supersecret" not in out and "hunter2" not in out


@pytest.mark.parametrize("second_app", [{"access_log": False}], indirect=True)
async def test_disabled(second_app: App, capsys: pytest.CaptureFixture[str]) -> None:
    flush_all()  # earlier requests' lines out of the way
    capsys.readouterr()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=second_app.asgi), base_url="http://t") as c:
        assert (await c.get("/api/health")).status_code == 200
    flush_all()
    assert _lines(capsys.readouterr().out) == []


# --- a real server: stdout of the process ---

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


def _wait_for(server: ServerProcess, needle: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while needle not in server.output():
        assert time.monotonic() < deadline, f"{needle!r} not logged:\n{server.output()}"
        time.sleep(0.05)
    return server.output()


def test_server_text_lines(tmp_path: Path, db_args: list[str]) -> None:
    server = ServerProcess.start(tmp_path, *db_args).wait_ready()
    try:
        r = httpx.get(f"{server.url}/api/files/users/abc/a.png{SECRET_QUERY}")
        assert r.status_code == 404
        # a realtime stream is logged when it ends, with its whole duration
        with httpx.stream("GET", f"{server.url}/api/realtime", timeout=10) as stream:
            assert stream.status_code == 200
            chunks = stream.iter_bytes()  # kept: a dropped iterator would close the stream
            assert b"PB_CONNECT" in next(chunks)
            time.sleep(0.3)
            assert " GET /api/realtime " not in server.output()
        out = _wait_for(server, " GET /api/realtime ")
    finally:
        assert server.stop() == 0
    assert "supersecret" not in out and "hunter2" not in out and "123456" not in out
    lines = {m[4].split("?")[0]: m for m in map(TEXT_LINE.match, _lines(out)) if m}
    files = lines["/api/files/users/abc/a.png"]
    assert files[2] == "127.0.0.1" and files[5] == "404"
    assert files[4] == ("/api/files/users/abc/a.png?token=[redacted]&password=[redacted]&otp=[redacted]"
                        "&thumb=100x100&Token=[redacted]")
    realtime = lines["/api/realtime"]
    assert realtime[5] == "200" and float(realtime[6]) >= 300  # the stream stayed open 0.3 s at least


def test_server_json_lines(tmp_path: Path, db_args: list[str]) -> None:
    server = ServerProcess.start(tmp_path, *db_args, env={"KEEPBASE_LOG_FORMAT": "json"}).wait_ready()
    try:
        assert httpx.get(f"{server.url}/api/health?token=supersecret1&n=1").status_code == 200
        out = _wait_for(server, "n=1")
    finally:
        assert server.stop() == 0
    assert "supersecret1" not in out
    entries = [json.loads(line) for line in out.splitlines() if line.startswith('{"time"')]
    probe = [e for e in entries if e["path"] == "/api/health?token=[redacted]&n=1"]
    assert len(probe) == 1
    assert probe[0]["status"] == 200 and probe[0]["ip"] == "127.0.0.1" and probe[0]["method"] == "GET"
    # every line of the access log is one JSON object, the readiness polls included
    assert all(e["log"] == "access" for e in entries) and len(entries) >= 2

"""/api/logs and request logging (SQLite + PostgreSQL). Logs are written in the background; tests
flush the writer explicitly (``app.logs.writer.flush()``) instead of waiting for it."""

from __future__ import annotations

import calendar
import logging
import time
from typing import Any

import httpx
import pytest

from keepbase.api.request_log import redact_query, redact_url
from keepbase.app import App
from keepbase.ops import logs as log_retention
from keepbase.store import logs as logs_store
from keepbase.store.logs import LogEntry, LogWriter
from keepbase.store.records import ListParams

PW = "userpass123"


async def _user_headers(client: httpx.AsyncClient) -> dict[str, str]:
    r = await client.post("/api/collections/users/records",
                          json={"email": "logs-user@example.com", "password": PW, "passwordConfirm": PW})
    assert r.status_code == 200, r.text
    r = await client.post("/api/collections/users/auth-with-password",
                          json={"identity": "logs-user@example.com", "password": PW})
    assert r.status_code == 200, r.text
    return {"Authorization": r.json()["token"]}


async def _logs(client: httpx.AsyncClient, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    r = await client.get("/api/logs" + query, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _flush(app: App) -> None:
    app.logs.writer.flush()


async def test_superusers_only(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    user = await _user_headers(client)
    for method, path in [("GET", "/api/logs"), ("GET", "/api/logs/stats"), ("GET", "/api/logs/abc"),
                         ("DELETE", "/api/logs")]:
        r = await client.request(method, path)
        assert (r.status_code, r.json()["message"]) == (401, "The request requires valid record authorization token.")
        r = await client.request(method, path, headers=user)
        assert (r.status_code, r.json()["message"]) == (
            403, "The authorized record is not allowed to perform this action.")


async def test_request_log_shape(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    _flush(app)
    await client.delete("/api/logs", headers=su_headers)
    r = await client.get("/api/collections?perPage=2", headers={**su_headers, "User-Agent": "ua/1",
                                                                 "Referer": "http://example.com/p"})
    assert r.status_code == 200
    _flush(app)
    body = await _logs(client, su_headers)
    assert list(body) == ["items", "page", "perPage", "totalItems", "totalPages"]
    assert body["totalItems"] == 1
    item = body["items"][0]
    assert list(item) == ["id", "created", "data", "message", "level"]
    assert len(item["id"]) == 15 and item["created"].endswith("Z") and item["level"] == 0
    assert item["message"] == "GET /api/collections?perPage=2"
    data = dict(item["data"])
    assert list(data) == sorted(data)
    assert isinstance(data.pop("execTime"), float)
    assert data == {"auth": "_superusers", "method": "GET", "referer": "http://example.com/p",
                    "remoteIP": "127.0.0.1", "status": 200, "type": "request", "url": "/api/collections?perPage=2",
                    "userAgent": "ua/1", "userIP": "127.0.0.1"}
    r = await client.get(f"/api/logs/{item['id']}", headers=su_headers)
    assert r.status_code == 200 and r.json() == item
    r = await client.get("/api/logs/nope", headers=su_headers)
    assert (r.status_code, r.json()["message"]) == (404, "The requested resource wasn't found.")


async def test_failed_requests_are_errors(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await client.delete("/api/logs", headers=su_headers)
    await client.get("/api/collections/nope/records")
    await client.post("/api/collections", json={"name": ""}, headers=su_headers)
    await client.get("/api/nope")
    _flush(app)
    items = (await _logs(client, su_headers, "?sort=message"))["items"]
    by_url = {i["data"]["url"]: i for i in items}
    missing = by_url["/api/collections/nope/records"]
    assert missing["level"] == 8 and missing["data"]["status"] == 404 and missing["data"]["auth"] == ""
    assert missing["data"]["error"] == "Missing collection context." and missing["data"]["details"] is None
    invalid = by_url["/api/collections"]
    assert invalid["data"]["error"] == "Failed to create collection."
    assert invalid["data"]["details"] == {"name": "cannot be blank"}
    assert by_url["/api/nope"]["data"]["error"] == "File not found."


async def test_what_is_not_logged(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await client.delete("/api/logs", headers=su_headers)
    await client.get("/api/logs", headers=su_headers)
    await client.get("/api/logs/stats", headers=su_headers)
    await client.options("/api/health", headers={"Origin": "http://x", "Access-Control-Request-Method": "GET"})
    await client.get("/api/logs")  # a failed logs request is logged
    _flush(app)
    items = (await _logs(client, su_headers))["items"]
    assert [(i["message"], i["data"]["status"]) for i in items] == [("GET /api/logs", 401)]


async def test_no_secrets_in_logs(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await client.delete("/api/logs", headers=su_headers)
    token = su_headers["Authorization"]
    await client.post("/api/collections/_superusers/auth-with-password",
                      json={"identity": "admin@example.com", "password": "adminpass123"})
    await client.post("/api/collections/_superusers/auth-with-password",
                      json={"identity": "admin@example.com", "password": "wrong-secret-pw"})
    await client.get(f"/api/files/x/y/z.png?token={token}&thumb=1",
                     headers={"Referer": f"http://app.example.com/?a=1&token={token}"})
    await client.get("/api/health?password=hunter2&Token=xyzSECRET%20def", headers=su_headers)
    _flush(app)
    r = await client.get("/api/logs?perPage=100", headers=su_headers)
    text = r.text
    assert r.json()["totalItems"] == 4
    for secret in (token, "adminpass123", "wrong-secret-pw", "hunter2", "xyzSECRET"):
        assert secret not in text
    assert "token=[redacted]&thumb=1" in text and "password=[redacted]&Token=[redacted]" in text


def test_redaction_helpers() -> None:
    assert redact_query("a=1&token=x&b") == "a=1&token=[redacted]&b"
    assert redact_query("TOKEN=x&pass-word=y&refresh%5Ftoken=z") == "TOKEN=[redacted]&pass-word=[redacted]&refresh%5Ftoken=[redacted]"
    assert redact_query("filter=token%3D1") == "filter=token%3D1"
    assert redact_url("https://h/p?code=1&x=2#frag") == "https://h/p?code=[redacted]&x=2#frag"
    assert redact_url("https://h/p") == "https://h/p"


async def test_logs_settings(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    async def patch(**logs: Any) -> None:
        r = await client.patch("/api/settings", json={"logs": logs}, headers=su_headers)
        assert r.status_code == 200, r.text

    await client.delete("/api/logs", headers=su_headers)
    await patch(logIP=False, logAuthId=True)
    await client.get("/api/health?probe=ip", headers=su_headers)
    _flush(app)
    item = (await _logs(client, su_headers, "?filter=message~'probe=ip'"))["items"][0]
    assert "remoteIP" not in item["data"] and "userIP" not in item["data"]
    assert item["data"]["auth"] == "_superusers" and len(item["data"]["authId"]) == 15

    # minLevel: info requests are no longer stored, and the stored ones under it are deleted
    await patch(logIP=True, logAuthId=False, minLevel=8)
    await client.get("/api/health?probe=info")
    await client.get("/api/nope?probe=error")
    _flush(app)
    items = (await _logs(client, su_headers))["items"]
    assert [i["message"] for i in items] == ["GET /api/nope?probe=error"]

    # maxDataSize: bigger data is replaced by a marker
    await patch(minLevel=0, maxDataSize=10)
    await client.get("/api/health?probe=size")
    _flush(app)
    item = (await _logs(client, su_headers, "?filter=message~'probe=size'"))["items"][0]
    assert item["data"] == {"__pb_truncated__": True}

    # maxDays 0: logging off, every stored log deleted
    await patch(maxDataSize=0, maxDays=0)
    await client.get("/api/health?probe=off")
    _flush(app)
    assert (await _logs(client, su_headers))["totalItems"] == 0


async def test_filter_sort_paging(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await client.delete("/api/logs", headers=su_headers)
    for path in ["/api/health?n=1", "/api/nope?n=2", "/api/collections/nope/records?n=3", "/api/health?n=4"]:
        await client.get(path)
    _flush(app)

    async def messages(query: str) -> list[str]:
        return [i["message"] for i in (await _logs(client, su_headers, query))["items"]]

    assert await messages("?filter=data.status>=400&sort=message") == [
        "GET /api/collections/nope/records?n=3", "GET /api/nope?n=2"]
    assert await messages("?filter=level=0") == ["GET /api/health?n=1", "GET /api/health?n=4"]
    assert await messages("?sort=-data.url,message&filter=data.method='GET'") == [
        "GET /api/nope?n=2", "GET /api/health?n=4", "GET /api/health?n=1", "GET /api/collections/nope/records?n=3"]
    assert await messages("?filter=data.status=404 %26%26 message~'nope?'") == ["GET /api/nope?n=2"]
    assert len(await messages("?filter=data ~ 'Missing collection'")) == 1
    assert len(await messages("?filter=created>'2000-01-01' %26%26 id!=''")) == 4
    page = await _logs(client, su_headers, "?perPage=3&page=2&sort=message")
    assert (page["page"], page["perPage"], page["totalItems"], page["totalPages"]) == (2, 3, 4, 2)
    assert [i["message"] for i in page["items"]] == ["GET /api/nope?n=2"]
    page = await _logs(client, su_headers, "?perPage=1&skipTotal=1")
    assert (page["totalItems"], page["totalPages"], len(page["items"])) == (-1, -1, 1)
    r = await client.get("/api/logs?fields=message,data.status&perPage=1", headers=su_headers)
    assert r.json()["items"] == [{"message": "GET /api/health?n=1", "data": {"status": 200}}]
    generic = "Something went wrong while processing your request."
    for query in ["filter=bad filter", "filter=nope=1", "filter=@request.auth.id=''", "filter=rowid>0",
                  "sort=nope", "sort=@now", "page=x", "skipTotal=maybe"]:
        r = await client.get(f"/api/logs?{query}", headers=su_headers)
        assert (r.status_code, r.json()["message"]) == (400, generic), query


async def test_stats(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await client.delete("/api/logs", headers=su_headers)
    base = float(calendar.timegm((2024, 1, 2, 3, 4, 5, 0, 0, 0)))
    app.logs.insert_entries([
        LogEntry(base, 0, "GET /a", {"status": 200}),
        LogEntry(base + 60, 8, "GET /b", {"status": 404}),
        LogEntry(base + 3600, 0, "GET /c", {"status": 200}),
        LogEntry(base + 7200 + 0.5, 8, "GET /d", {"status": 500}),
    ])
    r = await client.get("/api/logs/stats", headers=su_headers)
    assert r.status_code == 200
    assert r.json() == [{"date": "2024-01-02 03:00:00.000Z", "total": 2}, {"date": "2024-01-02 04:00:00.000Z", "total": 1},
                        {"date": "2024-01-02 05:00:00.000Z", "total": 1}]
    r = await client.get("/api/logs/stats?filter=data.status>=400", headers=su_headers)
    assert r.json() == [{"date": "2024-01-02 03:00:00.000Z", "total": 1}, {"date": "2024-01-02 05:00:00.000Z", "total": 1}]
    r = await client.get("/api/logs/stats?filter=bad filter", headers=su_headers)
    assert (r.status_code, r.json()) == (400, {"data": {}, "message": "Invalid filter format.", "status": 400})
    item = (await _logs(client, su_headers, "?filter=message='GET /d'"))["items"][0]
    assert item["created"] == "2024-01-02 05:04:05.500Z"


async def test_delete_and_retention(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await client.delete("/api/logs", headers=su_headers)
    old = time.time() - 10 * 86400
    app.logs.insert_entries([LogEntry(old, 0, "old", {}), LogEntry(time.time(), 0, "new", {})])
    assert log_retention.delete_expired(app.logs, app.settings.get) == 1
    assert [i["message"] for i in (await _logs(client, su_headers))["items"]] == ["new"]
    await client.get("/api/health")  # queued, not yet written: DELETE drops it too
    r = await client.delete("/api/logs", headers=su_headers)
    assert r.status_code == 204 and r.content == b""
    _flush(app)
    assert (await _logs(client, su_headers))["totalItems"] == 0


def test_queue_is_bounded(app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    app.logs.writer.flush()
    app.logs.delete_all()
    writer = LogWriter(app.logs, background=False)  # no thread: nothing flushes behind our back
    monkeypatch.setattr(logs_store, "MAX_QUEUED", 5)
    for i in range(8):
        writer.add_entry(0, f"m{i}")
    assert writer.pending == 5
    with caplog.at_level(logging.WARNING, logger="keepbase.logs"):
        assert writer.flush() == 5
    assert "3 log entries dropped" in caplog.text
    result = app.logs.find_logs(ListParams(sort="message"))
    assert [i["message"] for i in result["items"]] == [f"m{i}" for i in range(5)]


async def test_background_flush(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    """Without an explicit flush, the writer thread stores the entry on its own."""
    await client.get("/api/health?probe=background")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.logs.find_logs(ListParams(filter="message~'probe=background'"))["totalItems"] == 1:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the log writer did not flush within 60 s")


async def test_nul_bytes(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    """A %00 in a URL is stored (as U+FFFD) and the data stay filterable on both engines."""
    await client.delete("/api/logs", headers=su_headers)
    await client.get("/api/nope%00x?q=%00")
    _flush(app)
    items = (await _logs(client, su_headers, "?filter=data.status=404"))["items"]
    assert [i["message"] for i in items] == ["GET /api/nope\ufffdx?q=\ufffd"]
    assert items[0]["data"]["url"] == "/api/nope%00x?q=%00"

"""/api/crons (SQLite + PostgreSQL)."""

from __future__ import annotations

import threading
import time

import httpx

from keepbase.app import App
from keepbase.store.logs import LogEntry

PW = "userpass123"


async def test_superusers_only(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/collections/users/records",
                          json={"email": "cron-user@example.com", "password": PW, "passwordConfirm": PW})
    assert r.status_code == 200, r.text
    r = await client.post("/api/collections/users/auth-with-password",
                          json={"identity": "cron-user@example.com", "password": PW})
    user = {"Authorization": r.json()["token"]}
    for method, path in [("GET", "/api/crons"), ("POST", "/api/crons/__kbLogsCleanup__"), ("POST", "/api/crons/nope")]:
        r = await client.request(method, path)
        assert (r.status_code, r.json()["message"]) == (401, "The request requires valid record authorization token.")
        r = await client.request(method, path, headers=user)
        assert (r.status_code, r.json()["message"]) == (
            403, "The authorized record is not allowed to perform this action.")


async def test_list_order(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    r = await client.get("/api/crons", headers=su_headers)
    assert r.status_code == 200
    assert r.json() == [{"id": "__kbAuthCleanup__", "expression": "0 * * * *"},
                        {"id": "__kbLogsCleanup__", "expression": "0 */6 * * *"}]
    app.scheduler.add("zeta", "@hourly", lambda: None)
    app.scheduler.add("alpha", "*/5 * * * *", lambda: None)
    r = await client.get("/api/crons", headers=su_headers)
    assert [(j["id"], j["expression"]) for j in r.json()] == [
        ("alpha", "*/5 * * * *"), ("zeta", "@hourly"), ("__kbAuthCleanup__", "0 * * * *"),
        ("__kbLogsCleanup__", "0 */6 * * *")]
    assert list(r.json()[0]) == ["id", "expression"]
    r = await client.get("/api/crons?fields=id", headers=su_headers)
    assert r.json()[0] == {"id": "alpha"}


async def test_run(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    ran = threading.Event()
    app.scheduler.add("mine", "0 0 1 1 *", ran.set)
    r = await client.post("/api/crons/mine", headers=su_headers)
    assert r.status_code == 204 and r.content == b""
    assert ran.wait(60), "the job did not run"
    r = await client.post("/api/crons/nope", headers=su_headers)
    assert (r.status_code, r.json()) == (404, {"data": {}, "message": "Missing or invalid cron job.", "status": 404})
    r = await client.get("/api/crons/mine", headers=su_headers)
    assert (r.status_code, r.json()["message"]) == (404, "File not found.")


async def test_run_logs_cleanup(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    app.logs.writer.flush()
    app.logs.delete_all()
    app.logs.insert_entries([LogEntry(time.time() - 30 * 86400, 0, "old", {}), LogEntry(time.time(), 0, "new", {})])
    job = next(j for j in app.scheduler.jobs() if j.id == "__kbLogsCleanup__")
    runs = job.runs
    r = await client.post("/api/crons/__kbLogsCleanup__", headers=su_headers)
    assert r.status_code == 204
    deadline = time.monotonic() + 60
    while job.runs == runs and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.runs == runs + 1 and job.failures == 0
    r = await client.get("/api/logs", params={"filter": "message='old' || message='new'"}, headers=su_headers)
    assert [i["message"] for i in r.json()["items"]] == ["new"]

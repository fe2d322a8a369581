"""Differential tests: ``/api/logs*`` and ``/api/crons*``, keepbase vs the real PocketBase 0.40 binary.

A few requests carrying a marker in their query string are made on each server; once their logs
are stored (PocketBase writes logs in the background, so it is polled until they are all there, with
a generous deadline; keepbase's writer is flushed explicitly), the logs endpoints are queried with
filters on that marker and the responses compared. Besides the harness normalisation (ids, "now"
timestamps), timings are replaced by ``<ms>`` and the hourly stats are summed (a run may straddle
an hour). Cron job ids differ on purpose (keepbase's built-in jobs are ``__kb…__``), so the crons
list is checked per server.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import httpx
import pytest

from keepbase.app import App
from tests.oracle.harness import (
    GUEST,
    ORACLE_MARKS,
    Expect,
    PocketBase,
    Result,
    Scenario,
    Step,
    compare,
    run_async,
    run_sync,
)

pytestmark = ORACLE_MARKS

MARK = "kblogsoracle"
MARKED = f"message~'{MARK}'"

# requests whose logs are compared afterwards (each is also compared itself)
GENERATE = [
    Step("GET", f"/api/health?{MARK}=1", auth=GUEST, label="guest health"),
    Step("GET", f"/api/collections?{MARK}=2", auth=GUEST, label="guest collections (401)"),
    Step("POST", f"/api/collections?{MARK}=3", json={"name": ""}, label="invalid collection (400)"),
    Step("GET", f"/api/nope?{MARK}=4", auth=GUEST, label="unknown route (404)"),
]
EXPECTED_LOGS = len(GENERATE)

QUERY = [
    Step("GET", f"/api/logs?filter={MARKED}&sort=message", save={"log1": "items.0.id"}, label="list marked"),
    Step("GET", "/api/logs/{log1}", label="view one"),
    Step("GET", f"/api/logs?filter={MARKED} %26%26 data.status>=400 %26%26 data.status!=404&sort=-data.status,message",
         label="filter data.status"),
    Step("GET", f"/api/logs?filter={MARKED} %26%26 level=8 %26%26 data.auth=''&sort=-data.url", label="filter level, data.auth"),
    Step("GET", f"/api/logs?filter={MARKED}&sort=message&perPage=2&page=2", label="paging"),
    Step("GET", f"/api/logs?filter={MARKED}&sort=message&perPage=1&skipTotal=1", label="skipTotal"),
    Step("GET", f"/api/logs?filter={MARKED}&sort=message&fields=message,level,data.status", label="fields"),
    Step("GET", f"/api/logs/stats?filter={MARKED}", label="stats"),
    Step("GET", "/api/logs/stats?filter=bad filter", label="stats bad filter"),
    Step("GET", "/api/logs?filter=bad filter", label="list bad filter"),
    Step("GET", "/api/logs?filter=rowid>0", label="rowid is not a log field"),
    Step("GET", "/api/logs?filter=@request.auth.id=''", label="@request is not a log field"),
    Step("GET", "/api/logs?sort=nope", label="bad sort"),
    Step("GET", "/api/logs?page=x", label="bad page"),
    Step("GET", "/api/logs/nope", label="unknown log"),
    Step("GET", "/api/crons", label="crons list",
         pb=Expect(200, {"3.id": "__pbLogsCleanup__", "3.expression": "0 */6 * * *"}),
         kb=Expect(200, {"1.id": "__kbLogsCleanup__", "1.expression": "0 */6 * * *"})),
    Step("POST", "/api/crons/nope", label="run unknown cron"),
    Step("GET", "/api/crons/nope", label="GET on a cron id"),
    Step("DELETE", "/api/logs", label="delete logs"),
    Step("GET", f"/api/logs?filter={MARKED}", label="list after delete"),
]
SCENARIO = Scenario("logs_and_crons", GENERATE + QUERY, key_order=True)


def _stabilise(results: list[Result]) -> list[Result]:
    """Copies with timings and hour buckets made comparable."""
    out = []
    for r in results:
        r = copy.deepcopy(r)
        body = r.body
        if isinstance(body, dict):
            for item in [*body.get("items", []), body]:
                data = item.get("data") if isinstance(item, dict) else None
                if isinstance(data, dict) and isinstance(data.get("execTime"), int | float):
                    data["execTime"] = "<ms>"
        if r.step.label == "stats" and isinstance(body, list):
            r.body = [{"date": "<hour>", "total": sum(int(b["total"]) for b in body)}] if body else []
        out.append(r)
    return out


def _pocketbase_marked(pb: PocketBase) -> int:
    r = pb.http.get("/api/logs", params={"filter": MARKED, "perPage": 1}, headers={"Authorization": pb.su_token})
    r.raise_for_status()
    return int(r.json()["totalItems"])


def _run_pocketbase(pb: PocketBase, cache: dict[str, Any]) -> Any:
    if SCENARIO.name not in cache:
        gen, _ = run_sync(pb.http, pb.su_token, GENERATE)
        deadline = time.monotonic() + 90  # PocketBase flushes its log batch every few seconds
        while _pocketbase_marked(pb) < EXPECTED_LOGS:
            if time.monotonic() > deadline:
                pytest.fail(f"PocketBase did not store the {EXPECTED_LOGS} marked logs within 90 s")
            time.sleep(0.2)
        query, env = run_sync(pb.http, pb.su_token, QUERY)
        job = next(j["id"] for j in query[QUERY.index(_step("crons list"))].body if j["id"].endswith("LogsCleanup__"))
        ran = pb.http.post(f"/api/crons/{job}", headers={"Authorization": pb.su_token}).status_code
        cache[SCENARIO.name] = (gen + query, env, ran)
    return cache[SCENARIO.name]


def _step(label: str) -> Step:
    return next(s for s in QUERY if s.label == label)


async def test_logs_and_crons_same_as_pocketbase(app: App, client: httpx.AsyncClient, su_headers: dict[str, str],
                                                 pocketbase: PocketBase, pocketbase_runs: dict[str, Any]) -> None:
    pb_results, pb_env, pb_ran = _run_pocketbase(pocketbase, pocketbase_runs)
    token = su_headers["Authorization"]
    gen, _ = await run_async(client, token, GENERATE)
    app.logs.writer.flush()
    query, kb_env = await run_async(client, token, QUERY)
    kb_ran = (await client.post("/api/crons/__kbLogsCleanup__", headers=su_headers)).status_code
    assert (pb_ran, kb_ran) == (204, 204)
    problems = compare(SCENARIO, (_stabilise(pb_results), pb_env), (_stabilise(gen + query), kb_env))
    assert not problems, "keepbase differs from PocketBase:\n" + "\n".join(problems)

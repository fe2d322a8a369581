"""Differential tests: ``POST /api/batch``, keepbase vs the real PocketBase 0.40 binary.

Every scenario first sets the ``batch`` settings it needs (both servers start with batching
disabled, PocketBase's default), then compares status codes and normalised bodies step by step
(see ``harness.py``). Collection names are unique per scenario; the harness deletes them after.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.oracle.harness import (
    GUEST,
    ORACLE_MARKS,
    PocketBase,
    Scenario,
    Step,
    assert_same_as_pocketbase,
    pocketbase_run,
)

pytestmark = ORACLE_MARKS

_RANDOM10 = re.compile(r"_[a-z0-9]{10}(?=[._])")
OPEN = {"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""}
SCENARIOS: list[Scenario] = []


def scenario(name: str, steps: list[Step], **kw: Any) -> None:
    SCENARIOS.append(Scenario(name=name, steps=steps, **kw))


def settings(**batch: Any) -> Step:
    return Step("PATCH", "/api/settings", json={"batch": {"enabled": True, "maxRequests": 50, "timeout": 3,
                                                          "maxBodySize": 0, **batch}},
                status_only=True, label=f"batch settings {batch}")


def collection(name: str, **payload: Any) -> Step:
    body = {"name": name, **OPEN, "fields": [
        {"name": "name", "type": "text", "required": True}, {"name": "n", "type": "number"},
        {"name": "tags", "type": "select", "maxSelect": 2, "values": ["a", "b"]}], **payload}
    return Step("POST", "/api/collections", json=body, status_only=True, label=f"create collection {name}")


def rec(coll: str, rid: str = "") -> str:
    return f"/api/collections/{coll}/records" + (f"/{rid}" if rid else "")


def batch(*requests: dict[str, Any], label: str = "", auth: str = "su", **kw: Any) -> Step:
    return Step("POST", "/api/batch", json={"requests": list(requests)}, label=label or "batch", auth=auth, **kw)


scenario("batch_disabled", [
    settings(enabled=False),
    batch({"method": "POST", "url": rec("dbd_items"), "body": {"name": "x"}}, label="disabled"),
])

scenario("batch_success_shapes", [
    settings(),
    collection("dbs_items"),
    batch(
        {"method": "POST", "url": rec("dbs_items") + "?fields=id,name", "body": {"id": "batch0000000001", "name": "b1"}},
        {"method": "PATCH", "url": rec("dbs_items", "batch0000000001"), "body": {"n": 5, "tags+": "a"}},
        {"method": "PUT", "url": rec("dbs_items") + "?fields=id,n", "body": {"id": "batch0000000001", "n": 6}},
        {"method": "PUT", "url": rec("dbs_items") + "?fields=id,n", "body": {"id": "batch0000000002", "name": "b2",
                                                                             "n": 7}},
        {"method": "PUT", "url": rec("dbs_items") + "?fields=name", "body": {"name": "no id"}},
        {"method": "DELETE", "url": rec("dbs_items", "batch0000000002")},
        label="create, update, upsert x3, delete"),
    Step("GET", rec("dbs_items") + "?sort=name&fields=id,name,n,tags", label="state after"),
])

scenario("batch_rollback", [
    settings(),
    collection("dbr_items"),
    batch({"method": "POST", "url": rec("dbr_items"), "body": {"name": "one"}},
          {"method": "POST", "url": rec("dbr_items"), "body": {"name": "two"}},
          {"method": "POST", "url": rec("dbr_items"), "body": {"n": 3, "tags": ["zzz"]}},
          label="third request fails validation"),
    Step("GET", rec("dbr_items"), label="nothing was written"),
    batch({"method": "POST", "url": rec("dbr_items"), "body": {"name": "one"}},
          {"method": "PATCH", "url": rec("dbr_items", "missing00000001"), "body": {"n": 1}},
          label="404 inside a batch"),
    batch({"method": "POST", "url": rec("dbr_items"), "body": {"name": "one"}},
          {"method": "GET", "url": rec("dbr_items")}, label="GET is not a batch action"),
    batch({"method": "POST", "url": rec("dbr_nope"), "body": {"name": "one"}}, label="missing collection"),
    batch({"method": "DELETE", "url": "/api/collections/dbr_items/records"}, label="DELETE without id"),
    Step("GET", rec("dbr_items"), label="still nothing"),
])

scenario("batch_rules", [
    settings(),
    collection("dbu_authonly", createRule="@request.auth.id != ''"),
    collection("dbu_locked", createRule=None),
    collection("dbu_ctx", createRule="@request.context = 'batch'"),
    batch({"method": "POST", "url": rec("dbu_authonly"), "body": {"name": "guest"}}, auth=GUEST,
          label="create rule denies a guest"),
    batch({"method": "POST", "url": rec("dbu_locked"), "body": {"name": "guest"}}, auth=GUEST,
          label="null rule inside a batch"),
    batch({"method": "POST", "url": rec("dbu_authonly") + "?fields=name", "body": {"name": "su"},
           "headers": {"Authorization": "bogus"}}, label="outer auth, item Authorization ignored"),
    Step("POST", rec("dbu_ctx"), json={"name": "direct"}, auth=GUEST, label="context rule outside a batch"),
    batch({"method": "POST", "url": rec("dbu_ctx") + "?fields=name", "body": {"name": "batched"}}, auth=GUEST,
          label="context rule inside a batch"),
])

scenario("batch_request_validation", [
    settings(maxRequests=2),
    Step("POST", "/api/batch", json={"requests": []}, label="empty"),
    Step("POST", "/api/batch", json={}, label="missing requests"),
    batch(*[{"method": "POST", "url": rec("dbv_items")}] * 3, label="too many"),
    batch({"method": "HEAD"}, {"url": "x" * 2001, "method": "post"}, label="bad method and url"),
    Step("POST", "/api/batch", content=b"{nope", headers={"Content-Type": "application/json"}, label="bad JSON"),
    Step("POST", "/api/batch", json={"requests": "nope"}, label="requests not an array"),
    Step("POST", "/api/batch", json={"requests": [{"method": "POST", "url": rec("dbv_items"), "body": "x"}]},
         label="body not an object"),
])

scenario("batch_body_limit", [
    settings(maxBodySize=300),
    batch({"method": "POST", "url": rec("dbl_items"), "body": {"name": "x" * 400}}, label="over maxBodySize"),
    settings(maxBodySize=0),
])

scenario("batch_multipart_json_payload", [
    settings(),
    collection("dbm_items"),
    Step("POST", "/api/batch", multipart=True, data={"@jsonPayload": json.dumps({"requests": [
        {"method": "POST", "url": rec("dbm_items") + "?fields=name,n", "body": {"name": "mp", "n": 2}}]})},
         label="@jsonPayload"),
])

scenario("batch_multipart_files", [
    settings(),
    Step("POST", "/api/collections", json={"name": "dbf_docs", **OPEN, "fields": [
        {"name": "title", "type": "text", "required": True},
        {"name": "doc", "type": "file", "maxSelect": 1, "maxSize": 1000},
        {"name": "docs", "type": "file", "maxSelect": 2, "maxSize": 1000}]}, status_only=True),
    Step("POST", "/api/batch", data={"@jsonPayload": json.dumps({"requests": [
        {"method": "POST", "url": rec("dbf_docs") + "?fields=title,doc", "body": {"title": "one"}},
        {"method": "POST", "url": rec("dbf_docs") + "?fields=title,docs", "body": {"title": "two"}}]})},
         files=[("requests.0.doc", ("alpha.txt", b"hello", "text/plain")),
                ("requests[1].docs", ("bravo.txt", b"bee", "text/plain")),
                ("requests[1].docs", ("charlie.txt", b"sea", "text/plain"))], label="files per item"),
    Step("POST", "/api/batch", data={"@jsonPayload": json.dumps({"requests": [
        {"method": "POST", "url": rec("dbf_docs"), "body": {"title": "three"}}]})},
         files=[("requests.0.doc", ("big.txt", b"x" * 2000, "text/plain"))], label="file too large"),
    Step("GET", rec("dbf_docs") + "?sort=title&fields=title,doc,docs", label="state after"),
], normalise=lambda text: _RANDOM10.sub("_<rand>", text))  # batch uploads get two random suffixes

SCENARIO_IDS = [s.name for s in SCENARIOS]


_pocketbase_run = pocketbase_run


@pytest.mark.parametrize("sc", SCENARIOS, ids=SCENARIO_IDS)
async def test_batch_same_as_pocketbase(sc: Scenario, engine: str, client: httpx.AsyncClient,
                                        su_headers: dict[str, str], pocketbase: PocketBase,
                                        pocketbase_runs: dict[str, Any], request: pytest.FixtureRequest) -> None:
    await assert_same_as_pocketbase(sc, pocketbase, pocketbase_runs, client, su_headers, engine, request)

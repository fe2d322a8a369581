"""Differential realtime test: the SSE protocol of a running ``keepbase serve`` vs a real PocketBase.

The same script runs against both servers: connect (PB_CONNECT frame, ``id:`` line, headers),
subscription POSTs and their errors, then create/update/delete events for plain, ``fields`` and
``expand`` subscriptions. Observations are normalised (client ids, record ids, timestamps, tokens)
and compared key by key (06-realtime.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.oracle.harness import ORACLE_MARKS, Normaliser, PocketBase, diff_paths
from tests.realtime.servers import EMAIL, PASSWORD, Server, start_server, upsert_superuser
from tests.realtime.sse import SSEClient, SSEEvent

pytestmark = ORACLE_MARKS

CLIENT_ID = re.compile(r"^[A-Za-z0-9]{40}$")
USER_PASSWORD = "Pass-word-12345"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def keepbase_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp(f"oracle-rt-{request.param}")
    db_url = ""
    drop = None
    if request.param == "postgres":
        from tests.pg_server import create_database, drop_database, ensure_postgres

        db_url, drop = create_database(ensure_postgres()), drop_database
    upsert_superuser(root / "data", db_url)
    srv = start_server(f"kb-{request.param}", root / "data", db_url)
    try:
        yield srv
    finally:
        srv.stop()
        if drop is not None:
            drop(db_url)


async def _su_token(http: httpx.AsyncClient, email: str, password: str) -> str:
    r = await http.post("/api/collections/_superusers/auth-with-password", json={"identity": email, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _opts(query: dict[str, str]) -> str:
    return "?options=" + quote(json.dumps({"query": query, "headers": {}}), safe="")


def _response(r: httpx.Response) -> dict[str, Any]:
    return {"status": r.status_code, "body": r.json() if r.content else None}


def _frame(ev: SSEEvent, client_id: str) -> dict[str, Any]:
    """An event with its wire shape: line keys in order, id == client id, data key order."""
    lines = ev.raw.split("\n")
    return {
        "lines": [line.partition(":")[0] for line in lines],
        "no_space_after_colon": all(not line.partition(":")[2].startswith(" ") for line in lines),
        "id_is_client": ev.id == client_id,
        "event": ev.event,
        "data_keys": list(json.loads(lines[-1].partition(":")[2])) if lines[-1].startswith("data:") else None,
        "data": ev.data,
    }


async def _script(base_url: str, su_email: str, su_password: str, tag: str) -> dict[str, Any]:
    """Everything the test compares, as observed on one server."""
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        su = {"Authorization": await _su_token(http, su_email, su_password)}
        coll = f"rtdiff_{tag}"
        r = await http.post("/api/collections", headers=su, json={
            "name": coll, "type": "base", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
            "deleteRule": "", "fields": [{"name": "title", "type": "text"}, {"name": "n", "type": "number"},
                                         {"name": "owner", "type": "relation", "maxSelect": 1,
                                          "collectionId": "_pb_users_auth_"}]})
        assert r.status_code == 200, r.text
        email = f"rtdiff-{tag}@example.com"
        r = await http.post("/api/collections/users/records", json={
            "email": email, "password": USER_PASSWORD, "passwordConfirm": USER_PASSWORD, "name": "Rt"})
        assert r.status_code == 200, r.text
        user_id = r.json()["id"]
        r = await http.post("/api/collections/users/auth-with-password",
                            json={"identity": email, "password": USER_PASSWORD})
        user_token = r.json()["token"]

        # --- connect
        c = SSEClient(base_url)
        other = SSEClient(base_url)
        try:
            first = await c.connect()
            await other.connect()
            out["connect"] = {**_frame(first, c.client_id), "client_id_format": bool(CLIENT_ID.match(first.id)),
                              "data_client_id_is_id_line": first.data.get("clientId") == first.id}
            assert c.headers is not None
            out["connect_headers"] = {k: c.headers.get(k) for k in ("content-type", "cache-control",
                                                                     "x-accel-buffering")}

            # --- subscription POSTs and their errors
            post = "/api/realtime"
            out["missing_client_id"] = _response(await http.post(post, json={"subscriptions": [f"{coll}/*"]}))
            out["empty_body"] = _response(await http.post(post, json={}))
            out["unknown_client"] = _response(await http.post(post, json={"clientId": "x" * 40, "subscriptions": []}))
            out["too_many_topics"] = _response(await http.post(post, json={
                "clientId": c.client_id, "subscriptions": [f"t{i}" for i in range(1001)]}))
            out["topic_too_long"] = _response(await http.post(post, json={
                "clientId": c.client_id, "subscriptions": ["x" * 2501]}))
            out["clear"] = _response(await http.post(post, json={"clientId": c.client_id, "subscriptions": []}))
            out["user_subscribe"] = _response(await other.subscribe(f"{coll}/*", token=user_token))
            out["auth_mismatch"] = _response(await other.subscribe(f"{coll}/*", token=su["Authorization"]))
            out["auth_dropped"] = _response(await other.subscribe(f"{coll}/*"))

            # --- events
            fields_topic = f"{coll}/*" + _opts({"fields": "id,title"})
            expand_topic = f"{coll}/*" + _opts({"expand": "owner"})
            r = await c.subscribe(f"{coll}/*", fields_topic, expand_topic, token=user_token)
            out["subscribe"] = _response(r)
            r = await http.post(f"/api/collections/{coll}/records", headers=su,
                                json={"title": "a", "n": 1, "owner": user_id})
            assert r.status_code == 200, r.text
            rid = r.json()["id"]
            out["rest_create"] = r.json()
            out["create"] = await _events(c, 3)
            single = f"{coll}/{rid}"
            out["subscribe_single"] = _response(await c.subscribe(single, token=user_token))
            r = await http.patch(f"/api/collections/{coll}/records/{rid}", headers=su, json={"n+": 2})
            out["rest_update"] = r.json()
            out["update"] = await _events(c, 1)
            out["subscribe_both"] = _response(await c.subscribe(f"{coll}/*", single, token=user_token))
            r = await http.delete(f"/api/collections/{coll}/records/{rid}", headers=su)
            assert r.status_code == 204, r.text
            out["delete"] = await _events(c, 2)
        finally:
            await c.aclose()
            await other.aclose()
        await http.delete(f"/api/collections/{coll}", headers=su)
        await http.delete(f"/api/collections/users/records/{user_id}", headers=su)
    return out


async def _events(c: SSEClient, n: int) -> list[dict[str, Any]]:
    """``n`` events, sorted by event name (one message per matching subscription, order unspecified)."""
    got = [_frame(await c.next(10), c.client_id) for _ in range(n)]
    return sorted(got, key=lambda e: str(e["event"]))


def _normalise(observed: dict[str, Any]) -> Any:
    norm = Normaliser({})
    text = json.dumps(observed, sort_keys=True)
    text = re.sub(r'"[A-Za-z0-9]{40}"', '"<clientId>"', text)
    return norm.value(json.loads(text))


# observation -> reason: known keepbase differences (strict xfail: a fix makes them XPASS)
KNOWN: dict[str, str] = {}  # observation -> reason; empty: no known difference left
_runs: dict[tuple[str, str], Any] = {}


async def _observed(who: str, tag: str, keepbase_server: Server, pocketbase: PocketBase) -> Any:
    if (who, tag) not in _runs:
        if who == "pb":
            raw = await _script(pocketbase.url, pocketbase.email, pocketbase.password, tag)
        else:
            raw = await _script(keepbase_server.url, EMAIL, PASSWORD, tag)
        _runs[who, tag] = _normalise(raw)
    return _runs[who, tag]


def _engine(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["keepbase_server"])


async def test_realtime_same_as_pocketbase(keepbase_server: Server, pocketbase: PocketBase,
                                           request: pytest.FixtureRequest) -> None:
    tag = _engine(request)
    pb = await _observed("pb", tag, keepbase_server, pocketbase)
    kb = await _observed("kb", tag, keepbase_server, pocketbase)
    assert set(pb) == set(kb)
    # the observations are not vacuous
    assert pb["connect"]["event"] == "PB_CONNECT" and pb["connect"]["lines"] == ["id", "event", "data"]
    assert [len(pb[k]) for k in ("create", "update", "delete")] == [3, 1, 2]
    assert all(e["data_keys"] == ["record", "action"] for k in ("create", "update", "delete") for e in pb[k])
    assert pb["unknown_client"]["status"] == 404 and pb["auth_mismatch"]["status"] == 403
    problems = []
    for key in pb:
        lines = diff_paths(pb[key], kb[key])
        if lines and key not in KNOWN:
            problems.append(f"{key}:\n    " + "\n    ".join(lines))
    assert not problems, "realtime differs from PocketBase:\n" + "\n".join(problems)


@pytest.mark.parametrize("key", [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=r)) for k, r in KNOWN.items()]
                         or [pytest.param("", marks=pytest.mark.skip(reason="no known realtime difference"))])
async def test_known_realtime_differences(key: str, keepbase_server: Server, pocketbase: PocketBase,
                                          request: pytest.FixtureRequest) -> None:
    tag = _engine(request)
    pb = await _observed("pb", tag, keepbase_server, pocketbase)
    kb = await _observed("kb", tag, keepbase_server, pocketbase)
    assert diff_paths(pb[key], kb[key]) == []

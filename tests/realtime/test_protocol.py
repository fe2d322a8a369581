"""The realtime protocol through a real server (SQLite and PostgreSQL): 06-realtime.md."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from .conftest import admin_token, make_collection, unique
from .servers import Server
from .sse import SSEClient, SSEEvent


@pytest.fixture
async def ctx(server: Server) -> AsyncIterator[dict[str, Any]]:
    token = await admin_token(server.url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield {"url": server.url, "token": token, "http": http, "su": {"Authorization": token}}


@pytest.fixture
async def sse(server: Server) -> AsyncIterator[Any]:
    clients: list[SSEClient] = []

    async def make() -> SSEClient:
        c = SSEClient(server.url)
        await c.connect()
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()


def opts(query: dict[str, Any] | None = None, headers: dict[str, Any] | None = None) -> str:
    """As the JS SDK serializes options into a topic."""
    return "?options=" + quote(json.dumps({"query": query or {}, "headers": headers or {}}), safe="")


async def public_collection(ctx: dict[str, Any], **extra: Any) -> str:
    name = unique("rt")
    await make_collection(ctx["http"], ctx["token"], name=name, type="base", listRule="", viewRule="",
                          createRule="", updateRule="", deleteRule="",
                          fields=[{"name": "title", "type": "text"}, {"name": "views", "type": "number"},
                                  *extra.pop("fields", [])], **extra)
    return name


async def users_collection(ctx: dict[str, Any], n: int = 2) -> tuple[str, list[dict[str, Any]]]:
    name = unique("users")
    info = await make_collection(ctx["http"], ctx["token"], name=name, type="auth",
                                 listRule="id = @request.auth.id", viewRule="", fields=[{"name": "nick", "type": "text"}])
    users = []
    for i in range(n):
        email = f"u{i}.{name}@example.com"
        r = await ctx["http"].post(f"/api/collections/{name}/records", headers=ctx["su"], json={
            "email": email, "password": "Pass-word-123", "passwordConfirm": "Pass-word-123", "nick": f"n{i}"})
        assert r.status_code == 200, r.text
        r2 = await ctx["http"].post(f"/api/collections/{name}/auth-with-password",
                                    json={"identity": email, "password": "Pass-word-123"})
        assert r2.status_code == 200, r2.text
        users.append({**r.json(), "token": r2.json()["token"]})
    return str(info["id"]), users


async def create(ctx: dict[str, Any], coll: str, body: dict[str, Any], headers: dict[str, str] | None = None
                 ) -> dict[str, Any]:
    r = await ctx["http"].post(f"/api/collections/{coll}/records", json=body, headers=headers or ctx["su"])
    assert r.status_code == 200, r.text
    return dict(r.json())


async def assert_next_is(client: SSEClient, event: str, timeout: float = 10) -> SSEEvent:
    ev = await client.next(timeout)
    assert ev.event == event, (ev.event, ev.data)
    return ev


# --------------------------------------------------------------------------- connect


async def test_connect_sends_pb_connect_with_client_id_on_id_line(server: Server) -> None:
    c = SSEClient(server.url)
    try:
        first = await c.connect()
        assert re.fullmatch(r"[A-Za-z0-9]{40}", first.id)
        assert first.event == "PB_CONNECT"
        assert first.data == {"clientId": first.id}
        assert first.raw == f'id:{first.id}\nevent:PB_CONNECT\ndata:{{"clientId":"{first.id}"}}'
        assert c.headers is not None
        assert c.headers["content-type"] == "text/event-stream"
        assert c.headers["cache-control"] == "no-store"
        assert c.headers["x-accel-buffering"] == "no"
        other = SSEClient(server.url)
        try:
            assert (await other.connect()).id != first.id
        finally:
            await other.aclose()
    finally:
        await c.aclose()


async def test_subscribe_errors(ctx: dict[str, Any], sse: Any) -> None:
    http: httpx.AsyncClient = ctx["http"]
    r = await http.post("/api/realtime", json={"subscriptions": ["x/*"]})
    assert r.status_code == 400
    assert r.json()["data"]["clientId"]["code"] == "validation_required"
    assert r.json()["message"] == "Something went wrong while processing your request."
    r = await http.post("/api/realtime", json={"clientId": "x" * 40, "subscriptions": []})
    assert r.status_code == 404 and r.json()["message"] == "Missing or invalid client id."
    c = await sse()
    assert (await c.subscribe(*[f"t{i}" for i in range(1001)])).status_code == 400
    assert (await c.subscribe("x" * 2501)).status_code == 400
    assert (await c.subscribe("x" * 2500)).status_code == 204


async def test_keepalive_comments_on_idle_stream(sse: Any) -> None:
    c = await sse()
    await asyncio.sleep(2.5)  # the test servers ping every second
    assert c.comments >= 1


# --------------------------------------------------------------------------- events


async def test_create_update_delete_events_and_unsubscribe(ctx: dict[str, Any], sse: Any) -> None:
    coll = await public_collection(ctx)
    sentinel = await public_collection(ctx)
    c = await sse()
    assert (await c.subscribe(f"{coll}/*")).status_code == 204
    rec = await create(ctx, coll, {"title": "a", "views": 1})
    ev = await assert_next_is(c, f"{coll}/*")
    assert ev.id == c.client_id
    assert ev.data == {"record": rec, "action": "create"}
    assert ev.raw.splitlines()[2].startswith('data:{"record":{')  # record first, then action

    topic_id = f"{coll}/{rec['id']}"
    assert (await c.subscribe(f"{coll}/*", topic_id)).status_code == 204
    r = await ctx["http"].patch(f"/api/collections/{coll}/records/{rec['id']}", json={"views+": 2},
                                headers=ctx["su"])
    assert r.status_code == 200
    got = [await c.next(), await c.next()]
    assert {e.event for e in got} == {f"{coll}/*", topic_id}
    assert all(e.data == {"record": r.json(), "action": "update"} for e in got)

    r = await ctx["http"].delete(f"/api/collections/{coll}/records/{rec['id']}", headers=ctx["su"])
    assert r.status_code == 204
    got = [await c.next(), await c.next()]
    assert {e.event for e in got} == {f"{coll}/*", topic_id}
    assert all(e.data["action"] == "delete" and e.data["record"]["id"] == rec["id"] for e in got)

    # bare collection name works like /*, an id-topic only gets its record
    other = await create(ctx, coll, {"title": "b"})
    await assert_next_is(c, f"{coll}/*")
    assert (await c.subscribe(coll, f"{coll}/nonexistent000")).status_code == 204
    await create(ctx, coll, {"title": "c"})
    ev = await assert_next_is(c, coll)
    assert ev.data["record"]["title"] == "c"

    # replacing the set with only the sentinel: events of coll stop
    assert (await c.subscribe(f"{sentinel}/*")).status_code == 204
    await ctx["http"].patch(f"/api/collections/{coll}/records/{other['id']}", json={"title": "b2"},
                            headers=ctx["su"])
    await create(ctx, sentinel, {"title": "s"})
    await assert_next_is(c, f"{sentinel}/*")
    assert (await c.subscribe()).status_code == 204  # [] clears


async def test_options_fields_expand_and_headers(ctx: dict[str, Any], sse: Any) -> None:
    users, people = await users_collection(ctx, 1)
    coll = await public_collection(ctx, fields=[{"name": "owner", "type": "relation", "maxSelect": 1,
                                                  "collectionId": users}])
    secret = await public_collection(ctx)
    r = await ctx["http"].patch(f"/api/collections/{secret}", headers=ctx["su"],
                                json={"listRule": '@request.headers.x_token = "s3cret" && @request.context = "realtime"'})
    assert r.status_code == 200, r.text
    c = await sse()
    fields_topic = f"{coll}/*" + opts({"fields": "id,title"})
    expand_topic = f"{coll}/*" + opts({"expand": "owner"}, {"X-A": 1})
    good = f"{secret}/*" + opts(headers={"X-Token": "s3cret"})
    bad = f"{secret}/*" + opts(headers={"X-Token": "nope"})
    assert (await c.subscribe(fields_topic, expand_topic, good, bad)).status_code == 204
    rec = await create(ctx, coll, {"title": "t", "owner": people[0]["id"]})
    got = {e.event: e.data for e in [await c.next(), await c.next()]}
    assert got[fields_topic] == {"record": {"id": rec["id"], "title": "t"}, "action": "create"}
    expanded = got[expand_topic]["record"]
    try:
        import keepbase.store.expand  # noqa: F401
    except ImportError:
        pass
    else:
        assert expanded["expand"]["owner"]["id"] == people[0]["id"]
        assert "email" not in expanded["expand"]["owner"]  # emailVisibility is false
    await create(ctx, secret, {"title": "x"})
    await assert_next_is(c, good)
    await create(ctx, coll, {"title": "again"})
    assert (await c.next()).event in (fields_topic, expand_topic)  # the `bad` topic got nothing


async def test_rules_per_subscriber_and_revoked_token(ctx: dict[str, Any], sse: Any) -> None:
    users, (u0, u1) = await users_collection(ctx, 2)
    coll = unique("owned")
    await make_collection(ctx["http"], ctx["token"], name=coll, type="base",
                          listRule="owner = @request.auth.id", viewRule="owner = @request.auth.id",
                          fields=[{"name": "title", "type": "text"},
                                  {"name": "owner", "type": "relation", "maxSelect": 1, "collectionId": users}])
    sentinel = await public_collection(ctx)
    owner, other, guest, admin = await sse(), await sse(), await sse(), await sse()
    assert (await owner.subscribe(f"{coll}/*", f"{sentinel}/*", token=u0["token"])).status_code == 204
    assert (await other.subscribe(f"{coll}/*", f"{sentinel}/*", token=u1["token"])).status_code == 204
    assert (await guest.subscribe(f"{coll}/*", f"{sentinel}/*")).status_code == 204
    assert (await admin.subscribe(f"{coll}/*", token=ctx["token"])).status_code == 204

    rec = await create(ctx, coll, {"title": "mine", "owner": u0["id"]})
    ev = await assert_next_is(owner, f"{coll}/*")
    assert ev.data["record"]["id"] == rec["id"]
    assert (await assert_next_is(admin, f"{coll}/*")).data["record"]["id"] == rec["id"]
    await create(ctx, sentinel, {"title": "s1"})
    await assert_next_is(other, f"{sentinel}/*")  # u1 never saw u0's record
    await assert_next_is(guest, f"{sentinel}/*")
    await assert_next_is(owner, f"{sentinel}/*")

    # the auth record must stay the same for later subscription changes
    r = await owner.subscribe(f"{coll}/*", token=u1["token"])
    assert r.status_code == 403
    assert r.json()["message"] == "The current and the previous request authorization don't match."
    assert (await owner.subscribe(f"{coll}/*")).status_code == 403

    # revoke u0's tokens (a password change regenerates tokenKey): u0's client continues as a guest
    r = await ctx["http"].patch(f"/api/collections/{users}/records/{u0['id']}", headers=ctx["su"],
                                json={"password": "Other-pass-456", "passwordConfirm": "Other-pass-456"})
    assert r.status_code == 200, r.text
    await create(ctx, coll, {"title": "mine again", "owner": u0["id"]})
    await create(ctx, sentinel, {"title": "s2"})
    await assert_next_is(owner, f"{sentinel}/*")
    await assert_next_is(admin, f"{coll}/*")


async def test_slow_client_is_dropped(ctx: dict[str, Any], sse: Any, server: Server) -> None:
    coll = await public_collection(ctx, fields=[{"name": "body", "type": "editor"}])
    healthy = await sse()
    assert (await healthy.subscribe(f"{coll}/*")).status_code == 204

    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    try:
        sock.sendall(f"GET /api/realtime HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        buf = b""
        sock.settimeout(10)
        while not re.search(rb"id:[A-Za-z0-9]{40}\nevent:PB_CONNECT", buf):
            buf += sock.recv(4096)
        client_id = re.search(rb"id:([A-Za-z0-9]{40})", buf).group(1).decode()  # type: ignore[union-attr]
        r = await ctx["http"].post("/api/realtime", json={"clientId": client_id, "subscriptions": [f"{coll}/*"]})
        assert r.status_code == 204
        big = "x" * 60_000
        dropped = False
        started = time.monotonic()
        for i in range(400):  # never read from sock: its queue must overflow, never grow without bound
            await create(ctx, coll, {"title": str(i), "body": big})
            if i % 20 == 19:
                r = await ctx["http"].post("/api/realtime",
                                           json={"clientId": client_id, "subscriptions": [f"{coll}/*"]})
                if r.status_code == 404:
                    dropped = True
                    break
        assert dropped, "the slow client was never dropped"
        assert time.monotonic() - started < 90
        # the healthy client kept receiving everything meanwhile
        seen = 0
        while seen < 20:
            ev = await healthy.next()
            assert ev.data["action"] == "create"
            seen += 1
    finally:
        sock.close()

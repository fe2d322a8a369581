"""No side channel: a non-superuser cannot filter, sort or expand on what they may not read
(hidden fields, password/tokenKey, private emails, relations into collections they cannot list),
so no hidden value can be learned from a differing result count (04 §Non-superuser restrictions).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from keepbase.app import App
from tests.conftest import make_collection
from tests.realtime.sse import SSEClient

from .world import DOCS, World, build_world, keys_of, live_server

GENERIC_400 = {"data": {}, "message": "Something went wrong while processing your request.", "status": 400}
DOCS_URL = "/api/collections/docs_everyone/records"


@pytest.fixture
async def world(client: httpx.AsyncClient, su_headers: dict[str, str]) -> World:
    """docs_everyone: list/view rule "" (every doc listable), a hidden ``secret``, a relation into
    ``vaults`` (listRule/viewRule null); users keep their default ``id = @request.auth.id``."""
    w = await build_world(client, su_headers, ["everyone"])
    r = await client.post("/api/collections/vaults/records", headers=su_headers, json={"id": "vault0000000001",
                                                                                      "code": "abc"})
    assert r.status_code == 200, r.text
    r = await client.patch(f"{DOCS_URL}/{DOCS[0].id}", headers=su_headers, json={"vault": "vault0000000001"})
    assert r.status_code == 200, r.text
    return w


async def _get(w: World, caller: str, url: str = DOCS_URL, **params: str) -> httpx.Response:
    return await w.client.get(url, params={"perPage": "500", **params}, headers=w.headers(caller))


def _ids(r: httpx.Response) -> frozenset[str]:
    assert r.status_code == 200, r.text
    return keys_of([i["id"] for i in r.json()["items"]])


HIDDEN_PROBES = [
    # (url, query) pairs that would each reveal something if they were evaluated
    (DOCS_URL, {"filter": "secret ~ 'd1'"}),
    (DOCS_URL, {"filter": "secret ~ 'no such value'"}),
    (DOCS_URL, {"filter": "secret = 'secret-d1'"}),
    (DOCS_URL, {"filter": "id != '' && secret != ''"}),
    (DOCS_URL, {"filter": "id = 'x' || secret:lower ~ 's'"}),
    (DOCS_URL, {"sort": "secret"}),
    (DOCS_URL, {"sort": "-secret,id"}),
    (DOCS_URL, {"filter": "hub.docs_everyone_via_hub.secret ?~ 'd1'"}),
    ("/api/collections/hubs/records", {"filter": "docs_everyone_via_hub.secret ?~ 'd1'"}),
    ("/api/collections/hubs/records", {"sort": "docs_everyone_via_hub.secret"}),
    ("/api/collections/notes_everyone/records", {"filter": "doc.secret ~ 'd1'"}),
    ("/api/collections/notes_everyone/records", {"sort": "-doc.secret"}),
    # auth-record secrets, directly and through relations
    ("/api/collections/users/records", {"filter": "password ~ '$'"}),
    ("/api/collections/users/records", {"filter": "tokenKey != ''"}),
    ("/api/collections/users/records", {"sort": "tokenKey"}),
    (DOCS_URL, {"filter": "owner.password ~ 'a'"}),
    (DOCS_URL, {"filter": "owner.tokenKey != ''"}),
    (DOCS_URL, {"filter": "editors.tokenKey ?~ 'a'"}),
    (DOCS_URL, {"sort": "owner.tokenKey"}),
    # relations into a collection whose listRule is null
    (DOCS_URL, {"filter": "vault.code = 'abc'"}),
    (DOCS_URL, {"filter": "vault.code ~ 'zzz'"}),
    (DOCS_URL, {"sort": "vault.code"}),
]


async def test_unreadable_fields_are_refused(world: World) -> None:
    """Every probe is the same generic 400 for guests and users, whatever the hidden value is."""
    problems = []
    for url, query in HIDDEN_PROBES:
        for caller in ("guest", "u1"):
            r = await _get(world, caller, url, **query)
            if (r.status_code, r.json()) != (400, GENERIC_400):
                problems.append(f"{caller} {url} {query}: {r.status_code} {r.text[:200]}")
    assert not problems, "\n".join(problems)


async def test_superuser_may_use_hidden_fields(world: World) -> None:
    """The probes above are meaningful: a superuser's filter on them works."""
    assert _ids(await _get(world, "su", filter="secret ~ 'd1'")) == {"d1"}
    assert _ids(await _get(world, "su", filter="vault.code = 'abc'")) == {"d1"}
    assert _ids(await _get(world, "su", filter="hub.docs_everyone_via_hub.secret ?~ 'd1'")) == {"d1", "d4", "d6"}


async def test_joined_collection_list_rule_limits_filters(world: World) -> None:
    """users' listRule (id = @request.auth.id) applies to the users a docs filter joins: u2 and
    guests cannot find u1's docs by u1's name, u1 can (04: `id = '' OR (<listRule>)`)."""
    probe = {"filter": "owner.name = 'One'"}
    assert _ids(await _get(world, "su", **probe)) == {"d1", "d2"}
    assert _ids(await _get(world, "u1", **probe)) == {"d1", "d2"}
    assert _ids(await _get(world, "u2", **probe)) == frozenset()
    assert _ids(await _get(world, "guest", **probe)) == frozenset()
    # rows the caller may not list look like empty joins: no probe tells a real name from a made-up one
    for caller in ("guest", "u2"):
        for op in ("!=", "~", "!~"):
            real = _ids(await _get(world, caller, filter=f"owner.name {op} 'One'"))
            fake = _ids(await _get(world, caller, filter=f"owner.name {op} 'Nobody'"))
            assert real == fake, (caller, op, sorted(real), sorted(fake))
    # sorting by a hidden-by-rule joined field cannot order records by it either
    r = await _get(world, "u2", sort="owner.name,id")
    assert r.status_code == 200, r.text


async def test_superuser_only_identifiers_are_forbidden(world: World) -> None:
    for param, expr, word in (("filter", "@collection.users.name ?= 'One'", "@collection."),
                              ("filter", "@request.auth.id != ''", "@request."),
                              ("sort", "@collection.users.name", "@collection.")):
        for caller in ("guest", "u1"):
            r = await _get(world, caller, **{param: expr})
            assert r.status_code == 403, (caller, param, r.text)
            assert r.json()["message"] == f"Only superusers can filter by {word}"


async def test_expand_does_not_reach_unreadable_records(world: World) -> None:
    """expand into vaults (viewRule null) is skipped; expanding owner respects users' viewRule;
    ``fields`` cannot project a hidden field back in."""
    for caller in ("guest", "u1", "u2"):
        r = await _get(world, caller, expand="vault,owner", fields="id,secret,expand.vault.code,expand.owner.tokenKey")
        assert r.status_code == 200, r.text
        for item in r.json()["items"]:
            assert "secret" not in item, (caller, item)
            exp = item.get("expand", {})
            assert "vault" not in exp, (caller, item)
            assert "tokenKey" not in exp.get("owner", {}), (caller, item)
        r = await _get(world, caller, expand="owner")
        owners = {i["id"]: i.get("expand", {}).get("owner") for i in r.json()["items"]}
        for d in DOCS:
            owner = owners[d.id]
            assert (owner is not None) == (caller != "guest" and d.owner == caller), (caller, d.key, owner)
            if owner is not None:
                assert not {"password", "tokenKey"} & set(owner), owner


async def test_private_emails_are_not_filterable(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    """An auth collection everyone may list: a filter on ``email`` only matches public emails."""
    await make_collection(client, su_headers, name="members", type="auth", listRule="", viewRule="",
                          fields=[{"name": "nick", "type": "text"}])
    for nick, visible in (("hidden", False), ("shown", True)):
        r = await client.post("/api/collections/members/records", headers=su_headers, json={
            "email": f"{nick}@example.com", "emailVisibility": visible, "password": "Pass-word-12345",
            "passwordConfirm": "Pass-word-12345", "nick": nick})
        assert r.status_code == 200, r.text
    url = "/api/collections/members/records"
    r = await client.get(url, params={"filter": "email ~ 'hidden'"})
    assert r.status_code == 200 and r.json()["items"] == [], r.text
    r = await client.get(url, params={"filter": "email ~ 'shown'"})
    assert [i["nick"] for i in r.json()["items"]] == ["shown"], r.text
    r = await client.get(url, params={"filter": "email ~ 'hidden'"}, headers=su_headers)
    assert [i["nick"] for i in r.json()["items"]] == ["hidden"], r.text
    r = await client.get(url)
    emails = {i["nick"]: i.get("email") for i in r.json()["items"]}
    assert emails == {"hidden": None, "shown": "shown@example.com"}


def _opts(query: dict[str, str]) -> str:
    return "?options=" + quote(json.dumps({"query": query, "headers": {}}), safe="")


async def test_realtime_options_cannot_reveal_hidden_values(world: World, app: App) -> None:
    """Topic options feed ``fields``/``expand`` of the payload: they cannot bring back a hidden field,
    an unviewable relation or another user's auth record."""
    topic = "docs_everyone/*" + _opts({"fields": "id,secret,expand.vault.code,expand.owner.tokenKey",
                                       "expand": "vault,owner"})
    async with live_server(app) as url:
        clients: dict[str, SSEClient] = {}
        try:
            for caller in ("guest", "u2", "su"):
                c = SSEClient(url)
                await c.connect()
                clients[caller] = c
                r = await c.subscribe(topic, "users/*", "pings/*", token=world.tokens[caller])
                assert r.status_code == 204, r.text
            r = await world.client.patch(f"{DOCS_URL}/{DOCS[0].id}", headers=world.su, json={"title": "t"})
            assert r.status_code == 200, r.text
            # an update of u1: only u1 (not subscribed here) and superusers may see it on users/*
            r = await world.client.patch(f"/api/collections/users/records/{world.user_ids['u1']}",
                                         headers=world.su, json={"name": "One!"})
            assert r.status_code == 200, r.text
            r = await world.client.post("/api/collections/pings/records", headers=world.su, json={"n": 1})
            assert r.status_code == 200, r.text
            got: dict[str, list[Any]] = {}
            for caller, c in clients.items():
                got[caller] = []
                while (ev := await c.next(10)).event != "pings/*":
                    got[caller].append(ev)
        finally:
            for c in clients.values():
                await c.aclose()
    for caller in ("guest", "u2"):
        (ev,) = got[caller]
        assert ev.event == topic, (caller, ev.event, ev.data)
        record = ev.data["record"]
        assert "secret" not in record and "vault" not in record.get("expand", {}), (caller, record)
        assert record.get("expand", {}).get("owner", {}) == {}, (caller, record)
    su_events = {ev.event: ev.data["record"] for ev in got["su"]}
    assert su_events[topic]["secret"] == "secret-d1" and su_events[topic]["expand"]["vault"] == {"code": "abc"}
    assert "tokenKey" not in su_events[topic]["expand"]["owner"]
    assert su_events["users/*"]["id"] == world.user_ids["u1"]

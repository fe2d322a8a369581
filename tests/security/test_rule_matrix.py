"""One rule, every channel: for each (rule, caller) the same docs are visible through REST list,
REST view, expand (forward and back-relation), batch (update, delete, read-after-write), realtime
(create/update/delete events on ``docs/*`` and ``docs/<id>``, expand inside realtime payloads) and
protected file downloads — exactly the set :func:`tests.security.world.expected` computes.

The matrix is rules x callers (guest, u1 = owner of d1/d2, u2 = owner of d3/d4, superuser) x
channels x engines. A test covers one channel for every rule (one ``docs_<rule>`` collection each,
so an app and its users are built once per channel); a (rule, channel) pair with a known keepbase
bug gets its own strict xfail case.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from keepbase.app import App
from tests.realtime.sse import SSEClient, SSEEvent

from .world import (
    BY_ID,
    CALLERS,
    DOCS,
    RULES,
    World,
    build_world,
    docs_of,
    expected,
    keys_of,
    live_server,
    note_id,
    notes_of,
    rule_text,
)

Seen = dict[str, frozenset[str]]  # caller -> doc keys that channel showed
PerRule = Callable[[World, App, str], Awaitable[Seen]]
AllRules = Callable[[World, App], Awaitable[dict[str, Seen]]]


def _no_secret(caller: str, record: dict[str, Any], where: str) -> None:
    """Hidden fields: superusers see custom hidden fields, nobody else does (03 §Output visibility)."""
    if caller == "su":
        assert record.get("secret", "").startswith("secret-"), (where, record)
    else:
        assert "secret" not in record, (caller, where, record)


# --------------------------------------------------------------------------- REST


async def rest_list(w: World, app: App, rule: str) -> Seen:
    seen: Seen = {}
    for caller in CALLERS:
        url = f"/api/collections/{docs_of(rule)}/records"
        r = await w.client.get(url, params={"perPage": 500}, headers=w.headers(caller))
        if RULES[rule][0] is None and caller != "su":
            assert r.status_code == 403, r.text
            assert r.json()["message"] == "Only superusers can perform this action."
            seen[caller] = frozenset()
            continue
        assert r.status_code == 200, (caller, r.text)
        body = r.json()
        assert body["totalItems"] == len(body["items"]), (caller, body)
        for item in body["items"]:
            _no_secret(caller, item, "list")
        seen[caller] = keys_of([i["id"] for i in body["items"]])
        # a harmless client filter/sort never widens the rule
        r = await w.client.get(url, headers=w.headers(caller),
                               params={"perPage": 500, "filter": "id != '' || title ~ 'x'", "sort": "-title"})
        assert r.status_code == 200 and keys_of([i["id"] for i in r.json()["items"]]) == seen[caller], (caller, r.text)
    return seen


def _denied_status(rule: str) -> int:
    return 403 if RULES[rule][0] is None else 404


async def rest_view(w: World, app: App, rule: str) -> Seen:
    seen: Seen = {}
    for caller in CALLERS:
        ok = set()
        for d in DOCS:
            r = await w.client.get(f"/api/collections/{docs_of(rule)}/records/{d.id}", headers=w.headers(caller))
            if r.status_code == 200:
                _no_secret(caller, r.json(), "view")
                ok.add(d.key)
            else:
                assert r.status_code == _denied_status(rule), (caller, d.key, r.status_code, r.text)
        seen[caller] = frozenset(ok)
    return seen


# --------------------------------------------------------------------------- expand


async def expand_forward(w: World, app: App, rule: str) -> Seen:
    """notes (open rules) -> doc: the docs viewRule filters what each note's expand shows."""
    seen: Seen = {}
    notes = f"/api/collections/{notes_of(rule)}/records"
    for caller in CALLERS:
        r = await w.client.get(notes, params={"perPage": 500, "expand": "doc"}, headers=w.headers(caller))
        assert r.status_code == 200, r.text
        got = set()
        for note in r.json()["items"]:
            doc = note.get("expand", {}).get("doc")
            if doc is not None:
                assert doc["id"] == note["doc"]
                _no_secret(caller, doc, "expand")
                got.add(doc["id"])
        # the single-record route agrees with the list
        for d in DOCS:
            r = await w.client.get(f"{notes}/{note_id(d.key)}", params={"expand": "doc"}, headers=w.headers(caller))
            assert r.status_code == 200, r.text
            assert ("doc" in r.json().get("expand", {})) == (d.id in got), (caller, d.key, r.json())
        seen[caller] = keys_of(got)
    return seen


async def expand_back(w: World, app: App, rule: str) -> Seen:
    """hubs (open rules) -> docs_<rule>_via_hub, checked against a two-level path notes -> doc -> hub."""
    seen: Seen = {}
    via = f"{docs_of(rule)}_via_hub"
    for caller in CALLERS:
        r = await w.client.get("/api/collections/hubs/records", params={"expand": via}, headers=w.headers(caller))
        assert r.status_code == 200, r.text
        got: list[str] = []
        for hub in r.json()["items"]:
            for doc in hub.get("expand", {}).get(via, []):
                _no_secret(caller, doc, "back-relation expand")
                got.append(doc["id"])
        assert len(got) == len(set(got)), got
        seen[caller] = keys_of(got)
        r = await w.client.get(f"/api/collections/{notes_of(rule)}/records",
                               params={"perPage": 500, "expand": "doc.hub"}, headers=w.headers(caller))
        assert r.status_code == 200, r.text
        nested = {n["doc"] for n in r.json()["items"] if "hub" in n.get("expand", {}).get("doc", {}).get("expand", {})}
        assert keys_of(nested) == seen[caller], (caller, "expand=doc.hub", sorted(nested))
    return seen


# --------------------------------------------------------------------------- batch


async def _batch(w: World, caller: str, requests: list[dict[str, Any]]) -> httpx.Response:
    return await w.client.post("/api/batch", json={"requests": requests}, headers=w.headers(caller))


def _failed_item(r: httpx.Response) -> tuple[str, int]:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["message"] == "Batch transaction failed.", body
    ((index, err),) = body["data"]["requests"].items()
    return index, int(err["response"]["status"])


async def batch_update(w: World, app: App, rule: str) -> Seen:
    seen: Seen = {}
    for caller in CALLERS:
        ok = set()
        for d in DOCS:
            title = f"{d.key} by {caller}"
            r = await _batch(w, caller, [{"method": "PATCH", "url": f"/api/collections/{docs_of(rule)}/records/{d.id}",
                                          "body": {"title": title}}])
            if r.status_code == 200:
                assert r.json()[0]["status"] == 200 and r.json()[0]["body"]["title"] == title, r.text
                _no_secret(caller, r.json()[0]["body"], "batch update")
                ok.add(d.key)
            else:
                assert _failed_item(r) == ("0", _denied_status(rule)), (caller, d.key, r.text)
        seen[caller] = frozenset(ok)
    return seen


FAILING_ITEM = {"method": "POST", "url": "/api/collections/no_such_collection/records", "body": {}}


async def batch_delete(w: World, app: App, rule: str) -> Seen:
    """[DELETE doc, <an item that always fails>]: which item failed tells whether the delete was
    allowed; the rollback keeps the world intact for the next caller."""
    seen: Seen = {}
    for caller in CALLERS:
        ok = set()
        for d in DOCS:
            r = await _batch(w, caller, [
                {"method": "DELETE", "url": f"/api/collections/{docs_of(rule)}/records/{d.id}"}, FAILING_ITEM])
            index, status = _failed_item(r)
            if index == "1":
                ok.add(d.key)
            else:
                assert (index, status) == ("0", _denied_status(rule)), (caller, d.key, r.text)
        seen[caller] = frozenset(ok)
    r = await w.client.get(f"/api/collections/{docs_of(rule)}/records", headers=w.su)
    assert r.json()["totalItems"] == len(DOCS), "a failed batch must roll back its deletes"
    return seen


async def batch_read_after_write(w: World, app: App, rule: str) -> Seen:
    """Writes into the open notes collection whose responses expand the relation into docs
    (create, update and upsert must agree)."""
    seen: Seen = {}
    notes = f"/api/collections/{notes_of(rule)}/records"
    for caller in CALLERS:
        ok = set()
        for d in DOCS:
            r = await _batch(w, caller, [
                {"method": "POST", "url": f"{notes}?expand=doc", "body": {"label": f"new {caller}", "doc": d.id}},
                {"method": "PATCH", "url": f"{notes}/{note_id('d1')}?expand=doc", "body": {"doc": d.id}},
                {"method": "PUT", "url": f"{notes}?expand=doc", "body": {"id": note_id("d2"), "doc": d.id}},
            ])
            assert r.status_code == 200, (caller, d.key, r.text)
            shown = [("doc" in item["body"].get("expand", {})) for item in r.json()]
            assert len(set(shown)) == 1, (caller, d.key, "create/update/upsert disagree", r.json())
            if shown[0]:
                for item in r.json():
                    _no_secret(caller, item["body"]["expand"]["doc"], "batch expand")
                ok.add(d.key)
        seen[caller] = frozenset(ok)
    return seen


# --------------------------------------------------------------------------- realtime


async def _collect(clients: dict[str, SSEClient], w: World, ping: int) -> dict[str, list[SSEEvent]]:
    """Everything each client got up to the ping record ``ping`` (one dispatcher delivers in order)."""
    r = await w.client.post("/api/collections/pings/records", json={"n": ping}, headers=w.su)
    assert r.status_code == 200, r.text
    out: dict[str, list[SSEEvent]] = {}
    for caller, c in clients.items():
        got = []
        while True:
            ev = await c.next(15)
            if ev.event == "pings/*":
                assert ev.data["record"]["n"] == ping, (caller, ev.data)
                break
            got.append(ev)
        out[caller] = got
    return out


def _by_action(events: dict[str, list[SSEEvent]], action: str, rule: str) -> Seen:
    seen: Seen = {}
    coll = docs_of(rule)
    for caller, all_evs in events.items():
        star, single = [], []
        for ev in all_evs:
            if not ev.event.startswith(coll + "/"):
                continue
            assert ev.data["action"] == action, (caller, ev.event, ev.data)
            rec = ev.data["record"]
            assert rec["collectionName"] == coll, (caller, ev.event, rec)
            _no_secret(caller, rec, f"realtime {action}")
            if ev.event == f"{coll}/*":
                star.append(rec["id"])
            else:
                assert ev.event == f"{coll}/{rec['id']}", (caller, ev.event)
                single.append(rec["id"])
        assert len(star) == len(set(star)) and len(single) == len(set(single)), (caller, action, star, single)
        # listRule (docs/*) and viewRule (docs/<id>) are the same rule here
        assert keys_of(star) == keys_of(single), (caller, action, sorted(star), sorted(single))
        seen[caller] = keys_of(star)
    return seen


async def _subscribers(url: str, w: World, topics: list[str]) -> dict[str, SSEClient]:
    clients = {}
    for caller in CALLERS:
        c = SSEClient(url)
        await c.connect()
        clients[caller] = c
        r = await c.subscribe(*topics, "pings/*", token=w.tokens[caller])
        assert r.status_code == 204, r.text
    return clients


async def realtime_events(w: World, app: App) -> dict[str, Seen]:
    """create (REST), update (batch), a rolled-back batch (no events), delete (REST): every action
    reaches exactly the expected subscribers on both ``docs/*`` and ``docs/<id>``."""
    topics = [t for rule in w.rules for t in (f"{docs_of(rule)}/*", *(f"{docs_of(rule)}/{d.id}" for d in DOCS))]
    phases: dict[str, dict[str, list[SSEEvent]]] = {}
    async with live_server(app) as url:
        clients = await _subscribers(url, w, topics)
        try:
            await w.create_docs()
            phases["create"] = await _collect(clients, w, 1)
            r = await w.client.post("/api/batch", headers=w.su, json={"requests": [
                {"method": "PATCH", "url": f"/api/collections/{docs_of(rule)}/records/{d.id}", "body": {"title": "u"}}
                for rule in w.rules for d in DOCS]})
            assert r.status_code == 200, r.text
            phases["update"] = await _collect(clients, w, 2)
            r = await w.client.post("/api/batch", headers=w.su, json={"requests": [
                *({"method": "PATCH", "url": f"/api/collections/{docs_of(rule)}/records/{d.id}", "body": {"title": "x"}}
                  for rule in w.rules for d in DOCS), FAILING_ITEM]})
            assert r.status_code == 400, r.text
            rolled_back = await _collect(clients, w, 3)
            assert all(evs == [] for evs in rolled_back.values()), "a rolled-back batch broadcast events"
            for rule in w.rules:
                for d in DOCS:
                    r = await w.client.delete(f"/api/collections/{docs_of(rule)}/records/{d.id}", headers=w.su)
                    assert r.status_code == 204, r.text
            phases["delete"] = await _collect(clients, w, 4)
        finally:
            for c in clients.values():
                await c.aclose()
    out = {}
    for rule in w.rules:
        per_action = {action: _by_action(evs, action, rule) for action, evs in phases.items()}
        if rule in STATE_DEPENDENT:
            # The rule reads other rows of the same collection, so it is evaluated against the
            # state at the moment of each event: while docs are still being created or already
            # being deleted, fewer rows exist than for REST. Only the update phase, when every
            # doc exists, is comparable with the other channels.
            out[rule] = per_action["update"]
            continue
        first = per_action["create"]
        for action, seen in per_action.items():
            assert seen == first, (rule, action, seen, "create:", first)
        out[rule] = first
    return out


STATE_DEPENDENT = frozenset({"self_collection"})


def _opts(query: dict[str, str]) -> str:
    return "?options=" + quote(json.dumps({"query": query, "headers": {}}), safe="")


async def realtime_expand(w: World, app: App) -> dict[str, Seen]:
    """Subscriptions on notes (open) with ``expand=doc`` in the options: the expanded doc follows the
    docs viewRule for the subscriber, as REST expand does."""
    topics = {rule: f"{notes_of(rule)}/*" + _opts({"expand": "doc"}) for rule in w.rules}
    async with live_server(app) as url:
        clients = await _subscribers(url, w, list(topics.values()))
        try:
            for rule in w.rules:
                for d in DOCS:
                    r = await w.client.patch(f"/api/collections/{notes_of(rule)}/records/{note_id(d.key)}",
                                             headers=w.su, json={"label": f"{d.key}!"})
                    assert r.status_code == 200, r.text
            events = await _collect(clients, w, 1)
        finally:
            for c in clients.values():
                await c.aclose()
    out = {}
    for rule in w.rules:
        seen: Seen = {}
        for caller, all_evs in events.items():
            evs = [ev for ev in all_evs if ev.event == topics[rule]]
            assert len(evs) == len(DOCS), (rule, caller, [ev.event for ev in all_evs])
            got = set()
            for ev in evs:
                doc = ev.data["record"].get("expand", {}).get("doc")
                if doc is not None:
                    _no_secret(caller, doc, "realtime expand")
                    got.add(doc["id"])
            seen[caller] = keys_of(got)
        out[rule] = seen
    return out


# --------------------------------------------------------------------------- protected files


async def protected_files(w: World, app: App, rule: str) -> Seen:
    """``POST /api/files/token`` then ``GET /api/files/docs/<id>/<name>?token=``; guests have no token."""
    seen: Seen = {}
    for caller in CALLERS:
        query = ""
        if caller != "guest":
            r = await w.client.post("/api/files/token", headers=w.headers(caller))
            assert r.status_code == 200, r.text
            query = "?token=" + r.json()["token"]
        else:
            r = await w.client.post("/api/files/token")
            assert r.status_code == 401, r.text
        ok = set()
        for d in DOCS:
            r = await w.client.get(f"/api/files/{docs_of(rule)}/{d.id}/{w.files[rule, d.key]}{query}")
            if r.status_code == 200:
                assert r.content.startswith(b"\x89PNG"), r.content[:20]
                ok.add(d.key)
            else:
                assert r.status_code == 404, (caller, d.key, r.status_code, r.text)
                assert r.json()["message"] == "The requested resource wasn't found."
        if caller != "guest":
            # an auth token is not a file token: the download runs as a guest
            as_guest = set()
            for d in DOCS:
                r = await w.client.get(f"/api/files/{docs_of(rule)}/{d.id}/{w.files[rule, d.key]}"
                                       f"?token={w.tokens[caller]}")
                if r.status_code == 200:
                    as_guest.add(d.key)
            assert frozenset(as_guest) == expected(rule, "guest"), (caller, "auth token as file token", as_guest)
        seen[caller] = frozenset(ok)
    return seen


# --------------------------------------------------------------------------- the matrix

PER_RULE: dict[str, PerRule] = {
    "rest_list": rest_list,
    "rest_view": rest_view,
    "expand_forward": expand_forward,
    "expand_back": expand_back,
    "batch_update": batch_update,
    "batch_delete": batch_delete,
    "batch_read_after_write": batch_read_after_write,
    "protected_files": protected_files,
}
ALL_RULES: dict[str, AllRules] = {  # one server and one set of SSE clients for every rule
    "realtime_events": realtime_events,
    "realtime_expand": realtime_expand,
}
CHANNELS = [*PER_RULE, *ALL_RULES]
NEEDS_LATE_DOCS = {"realtime_events"}  # docs are created after the subscriptions

# (rule, channel) -> reason; "*" as rule: every rule. Keepbase bugs, each reported with a repro;
# strict, so a fix turns the case into an XPASS failure and the entry must go.
KNOWN_BUGS: dict[tuple[str, str], str] = {}  # (rule, channel) -> reason; empty: every channel agrees


def _reason(rule: str, channel: str) -> str | None:
    return KNOWN_BUGS.get((rule, channel)) or KNOWN_BUGS.get(("*", channel))


def _cases() -> list[Any]:
    """One test per channel for the rules that work, and one per (rule, channel) with a known bug."""
    out = []
    for channel in CHANNELS:
        if ("*", channel) in KNOWN_BUGS:
            reason = KNOWN_BUGS["*", channel]
            out.append(pytest.param(channel, tuple(RULES), id=f"{channel}-all",
                                    marks=pytest.mark.xfail(strict=True, reason=reason)))
            continue
        good = tuple(r for r in RULES if _reason(r, channel) is None)
        out.append(pytest.param(channel, good, id=f"{channel}-{len(good)}rules"))
        for rule in RULES:
            bug = _reason(rule, channel)
            if bug is not None:
                out.append(pytest.param(channel, (rule,), id=f"{channel}-{rule}",
                                        marks=pytest.mark.xfail(strict=True, reason=bug)))
    return out


@pytest.mark.parametrize(("channel", "rules"), _cases())
async def test_one_rule_every_channel(channel: str, rules: tuple[str, ...], app: App, client: httpx.AsyncClient,
                                      su_headers: dict[str, str]) -> None:
    w = await build_world(client, su_headers, list(rules), docs=channel not in NEEDS_LATE_DOCS)
    if channel in ALL_RULES:
        seen = await ALL_RULES[channel](w, app)
    else:
        seen = {rule: await PER_RULE[channel](w, app, rule) for rule in rules}
    problems = []
    for rule in rules:
        for caller in CALLERS:
            want, got = expected(rule, caller), seen[rule].get(caller)
            if got != want:
                problems.append(f"{rule} ({rule_text(rule)!r}) as {caller}: expected {sorted(want)}, "
                                f"got {sorted(got or ())}")
    assert not problems, f"{channel}:\n  " + "\n  ".join(problems)


def test_expected_sets_separate_the_callers() -> None:
    assert len(BY_ID) == len(DOCS)
    for rule in RULES:
        sets = {caller: expected(rule, caller) for caller in CALLERS}
        assert sets["su"] == frozenset(BY_ID.values())
        if rule not in ("null", "everyone", "related_owner_name"):
            assert len({sets["guest"], sets["u1"], sets["u2"]}) >= 2, rule

"""A small fixed world for the security tests: users, docs under one rule, and the collections that
reach docs from elsewhere (expand, back-relations, realtime, protected files).

Every doc is described once (:data:`DOCS`); :func:`expected` turns a (rule, caller) pair into the
set of doc keys that caller may see, computed in Python from the rule's documented meaning
(04-filters-and-rules.md). The channel tests then compare what each HTTP channel shows against it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from keepbase.app import App
from tests.conftest import make_collection

PASSWORD = "Pass-word-12345"
CALLERS = ("guest", "u1", "u2", "su")
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)
OPEN = {"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""}


@dataclass(frozen=True)
class Doc:
    key: str
    owner: str  # "u1", "u2" or "" (no owner)
    published: bool
    hub_open: bool
    editors: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"doc00000000000{self.key[1]}"


DOCS = (
    Doc("d1", "u1", True, True, ("u2",)),
    Doc("d2", "u1", False, False),
    Doc("d3", "u2", True, False),
    Doc("d4", "u2", False, True, ("u1", "u2")),
    Doc("d5", "", False, False),
    Doc("d6", "", True, True),
)
DOC_KEYS = frozenset(d.key for d in DOCS)
BY_ID = {d.id: d.key for d in DOCS}
GRANTS = {("d2", "u2"), ("d5", "u1")}  # (doc, user) rows of the `grants` collection
NAMES = {"u1": "One", "u2": "Two"}
HUB_OPEN, HUB_CLOSED = "hubopen00000001", "hubclosed000001"


def note_id(key: str) -> str:
    return f"note0000000000{key[1]}"


# name -> (rule, visible(doc, caller key) for a non-superuser; guest's key is ""). ``{self}`` in a
# rule is the name of the collection that carries it.
RULES: dict[str, tuple[str | None, Callable[[Doc, str], bool]]] = {
    # a guest's @request.auth.id is empty, and `owner = ''` holds for an empty owner (04 §Equality)
    "owner": ("owner = @request.auth.id", lambda d, u: d.owner == u),
    "authed_owner": ('@request.auth.id != "" && owner = @request.auth.id', lambda d, u: u != "" and d.owner == u),
    "published_or_owner": ("published = true || owner = @request.auth.id",
                           lambda d, u: d.published or d.owner == u),
    "null": (None, lambda d, u: False),
    "everyone": ("", lambda d, u: True),
    "related_hub": ("hub.open = true || owner = @request.auth.id", lambda d, u: d.hub_open or d.owner == u),
    # rules run with full access: users' own listRule does not hide the joined owner (04)
    "related_owner_name": ('owner.name = "One"', lambda d, u: d.owner == "u1"),
    "collection_grants": ("@collection.grants.doc ?= id && @collection.grants.user ?= @request.auth.id",
                          lambda d, u: (d.key, u) in GRANTS),
    # a rule joining its own collection: anyone who owns some doc sees every doc
    "self_collection": ('@request.auth.id != "" && @collection.{self}.owner ?= @request.auth.id',
                        lambda d, u: u in {x.owner for x in DOCS} - {""}),
    "auth_field": ('@request.auth.name = "One"', lambda d, u: u == "u1"),
    "multi_editors": ('@request.auth.id != "" && editors.id ?= @request.auth.id', lambda d, u: u in d.editors),
    "not_mine": ('@request.auth.collectionName = "users" && owner != @request.auth.id',
                 lambda d, u: u != "" and d.owner != u),
}


def rule_text(rule: str) -> str | None:
    text = RULES[rule][0]
    return None if text is None else text.replace("{self}", docs_of(rule))


def expected(rule: str, caller: str) -> frozenset[str]:
    if caller == "su":
        return DOC_KEYS
    visible = RULES[rule][1]
    me = "" if caller == "guest" else caller
    return frozenset(d.key for d in DOCS if visible(d, me))


def docs_of(rule: str) -> str:
    return f"docs_{rule}"


def notes_of(rule: str) -> str:
    return f"notes_{rule}"


@dataclass
class World:
    """One ``docs_<rule>`` (+ ``notes_<rule>``) collection per rule, same records in each."""

    client: httpx.AsyncClient
    su: dict[str, str]
    rules: list[str]
    user_ids: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # caller -> auth token ("" for guest)
    files: dict[tuple[str, str], str] = field(default_factory=dict)  # (rule, doc key) -> protected file name

    def headers(self, caller: str) -> dict[str, str]:
        token = self.tokens[caller]
        return {"Authorization": token} if token else {}

    async def create_docs(self) -> None:
        for rule in self.rules:
            for d in DOCS:
                data = {"id": d.id, "title": f"title {d.key}", "published": str(d.published).lower(),
                        "owner": self.user_ids.get(d.owner, ""), "hub": HUB_OPEN if d.hub_open else HUB_CLOSED,
                        "secret": f"secret-{d.key}", "editors": [self.user_ids[e] for e in d.editors]}
                r = await self.client.post(f"/api/collections/{docs_of(rule)}/records", data=data, headers=self.su,
                                           files=[("att", (f"{d.key}.png", PNG, "image/png"))])
                assert r.status_code == 200, r.text
                self.files[rule, d.key] = r.json()["att"]

    async def create_notes(self) -> None:
        for rule in self.rules:
            for d in DOCS:
                r = await self.client.post(f"/api/collections/{notes_of(rule)}/records", headers=self.su,
                                           json={"id": note_id(d.key), "label": d.key, "doc": d.id})
                assert r.status_code == 200, r.text


async def user(client: httpx.AsyncClient, email: str, name: str) -> tuple[str, str]:
    r = await client.post("/api/collections/users/records", json={
        "email": email, "password": PASSWORD, "passwordConfirm": PASSWORD, "name": name})
    assert r.status_code == 200, r.text
    uid = str(r.json()["id"])
    r = await client.post("/api/collections/users/auth-with-password", json={"identity": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return uid, str(r.json()["token"])


async def build_world(client: httpx.AsyncClient, su: dict[str, str], rules: list[str], *, docs: bool = True) -> World:
    """Users u1/u2, hubs, grants, vaults and per rule ``docs_<rule>`` (the rule for every operation
    but create) with ``notes_<rule>`` (open rules, a relation to it)."""
    w = World(client, su, list(rules))
    w.tokens = {"guest": "", "su": su["Authorization"]}
    for key in ("u1", "u2"):
        w.user_ids[key], w.tokens[key] = await user(client, f"{key}@example.com", NAMES[key])
    r = await client.patch("/api/settings", headers=su, json={"batch": {"enabled": True, "maxRequests": 500, "timeout": 60}})
    assert r.status_code == 200, r.text

    hubs = await make_collection(client, su, name="hubs", **OPEN, fields=[
        {"name": "name", "type": "text"}, {"name": "open", "type": "bool"}])
    await make_collection(client, su, name="grants", fields=[
        {"name": "doc", "type": "text"}, {"name": "user", "type": "text"}])
    vaults = await make_collection(client, su, name="vaults", fields=[{"name": "code", "type": "text"}])
    await make_collection(client, su, name="pings", **OPEN, fields=[{"name": "n", "type": "number"}])
    for rule in rules:
        text = rule_text(rule)
        docs_c = await make_collection(
            client, su, name=docs_of(rule), listRule=text, viewRule=text, updateRule=text, deleteRule=text,
            fields=[
                {"name": "title", "type": "text"},
                {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
                {"name": "editors", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 5},
                {"name": "published", "type": "bool"},
                {"name": "secret", "type": "text", "hidden": True},
                {"name": "hub", "type": "relation", "collectionId": hubs["id"], "maxSelect": 1},
                {"name": "vault", "type": "relation", "collectionId": vaults["id"], "maxSelect": 1},
                {"name": "att", "type": "file", "maxSelect": 1, "protected": True},
            ])
        await make_collection(client, su, name=notes_of(rule), **OPEN, fields=[
            {"name": "label", "type": "text"},
            {"name": "doc", "type": "relation", "collectionId": docs_c["id"], "maxSelect": 1}])

    for hid, is_open in ((HUB_OPEN, True), (HUB_CLOSED, False)):
        r = await client.post("/api/collections/hubs/records", headers=su,
                              json={"id": hid, "name": hid, "open": is_open})
        assert r.status_code == 200, r.text
    for doc_key, user_key in sorted(GRANTS):
        doc_id = next(d.id for d in DOCS if d.key == doc_key)
        r = await client.post("/api/collections/grants/records", headers=su,
                              json={"doc": doc_id, "user": w.user_ids[user_key]})
        assert r.status_code == 200, r.text
    if docs:
        await w.create_docs()
        await w.create_notes()
    return w


def keys_of(ids: list[str] | set[str]) -> frozenset[str]:
    return frozenset(BY_ID.get(i, f"?{i}") for i in ids)


# --------------------------------------------------------------------------- a socket for SSE


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def live_server(app: App) -> AsyncIterator[str]:
    """Serve the fixture's App over a real socket in this event loop (SSE needs streaming, which
    httpx's ASGITransport does not do). Its lifespan starts the realtime service."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app.asgi, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on", http="h11", ws="none"))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        server.should_exit = True
        await task
        raise RuntimeError("the in-process server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def ids_in(body: Any, key: str = "id") -> list[str]:
    return [str(item[key]) for item in body]

"""Record hooks through the public App decorators, over HTTP, on both engines."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from keepbase import App, BadRequestError, FieldError, RecordEvent
from tests.conftest import make_collection

OPEN = {"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""}
POSTS = "/api/collections/posts/records"


async def posts(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    await make_collection(client, su, name="posts", **OPEN, fields=[
        {"name": "title", "type": "text", "required": True}, {"name": "views", "type": "number"}])
    await make_collection(client, su, name="other", **OPEN, fields=[{"name": "title", "type": "text"}])


async def total(client: httpx.AsyncClient, path: str = POSTS) -> int:
    return int((await client.get(path)).json()["totalItems"])


async def test_before_create_mutates_the_record(app: App, client: httpx.AsyncClient,
                                                su_headers: dict[str, str]) -> None:
    await posts(client, su_headers)
    seen: list[str] = []

    @app.on_record_create("posts")
    def shout(e: RecordEvent) -> None:
        e.record["title"] = e.record["title"].upper()
        e.record["views"] = 42
        e.next()

    @app.on_record_create()
    def every_collection(e: RecordEvent) -> None:
        seen.append(e.collection.name)
        e.next()

    r = await client.post(POSTS, json={"title": "hello"})
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "HELLO" and r.json()["views"] == 42
    r = await client.post("/api/collections/other/records", json={"title": "quiet"})
    assert r.json()["title"] == "quiet"  # the "posts" hook did not see it
    assert seen == ["posts", "other"]


async def test_before_update_sees_old_values(app: App, client: httpx.AsyncClient,
                                             su_headers: dict[str, str]) -> None:
    await posts(client, su_headers)
    rid = (await client.post(POSTS, json={"title": "a", "views": 1})).json()["id"]

    @app.on_record_update("posts")
    def count_edits(e: RecordEvent) -> None:
        assert e.old is not None
        e.record["views"] = e.old["views"] + 1
        e.next()

    r = await client.patch(f"{POSTS}/{rid}", json={"title": "b"})
    assert r.status_code == 200, r.text
    assert r.json()["views"] == 2 and r.json()["title"] == "b"


async def test_before_hook_rejects_cleanly(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await posts(client, su_headers)

    @app.on_record_create("posts")
    def no_spam(e: RecordEvent) -> None:
        if "spam" in e.record["title"]:
            raise BadRequestError("No spam, please.", {"title": FieldError("spam", "Spam.")})
        e.next()

    @app.on_record_delete("posts")
    def keep_forever(e: RecordEvent) -> None:
        raise BadRequestError("Posts are forever.")

    r = await client.post(POSTS, json={"title": "buy spam"})
    assert r.status_code == 400
    assert r.json() == {"data": {"title": {"code": "spam", "message": "Spam."}},
                        "message": "No spam, please.", "status": 400}
    assert await total(client) == 0
    rid = (await client.post(POSTS, json={"title": "fine"})).json()["id"]
    r = await client.delete(f"{POSTS}/{rid}")
    assert r.json() == {"data": {}, "message": "Posts are forever.", "status": 400}
    assert (await client.get(f"{POSTS}/{rid}")).status_code == 200


async def test_random_exception_is_a_clean_envelope_and_writes_nothing(
        app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await posts(client, su_headers)

    @app.on_record_create("posts")
    def broken(e: RecordEvent) -> None:
        e.next()  # the insert already ran inside the transaction ...
        raise KeyError("secret detail")  # ... and must still be rolled back

    # like a real server: the envelope is sent, then the error is re-raised for the server's log
    transport = httpx.ASGITransport(app=app.asgi, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as raw:
        r = await raw.post(POSTS, json={"title": "x"})
    assert r.status_code == 400  # PocketBase answers non-API errors with a generic 400
    assert r.json() == {"data": {}, "message": "Something went wrong while processing your request.",
                        "status": 400}
    assert "secret" not in r.text
    assert await total(client) == 0


async def test_after_hooks_run_only_after_commit(app: App, client: httpx.AsyncClient,
                                                 su_headers: dict[str, str]) -> None:
    await posts(client, su_headers)
    visible: list[Any] = []
    updates: list[str] = []
    table = app.collections.records_table(app.collections.get("posts"))

    @app.on_record_after_create("posts")
    def check_committed(e: RecordEvent) -> None:
        # a fresh connection already sees the row: the transaction has committed
        with app.db.reader.connect() as conn:
            visible.append(conn.execute(select(table.c.title).where(table.c.id == e.record["id"])).scalar())

    @app.on_record_after_update("posts")
    def after_update(e: RecordEvent) -> None:
        updates.append(e.record["title"])

    @app.on_record_update("posts")
    def veto(e: RecordEvent) -> None:
        if e.record["title"] == "veto":
            raise BadRequestError("Vetoed.")
        e.next()

    @app.on_record_after_create("other")
    def failing_after(e: RecordEvent) -> None:
        raise RuntimeError("after hooks never fail a committed write")

    r = await client.post(POSTS, json={"title": "one"})
    assert r.status_code == 200
    assert visible == ["one"]
    rid = r.json()["id"]
    assert (await client.patch(f"{POSTS}/{rid}", json={"title": "veto"})).status_code == 400
    assert updates == []
    assert (await client.patch(f"{POSTS}/{rid}", json={"title": "two"})).status_code == 200
    assert updates == ["two"]
    r = await client.post("/api/collections/other/records", json={"title": "x"})
    assert r.status_code == 200


async def test_after_delete_and_handler_ids(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await posts(client, su_headers)
    deleted: list[str] = []
    app.on_record_after_delete("posts", id="audit")(lambda e: deleted.append("first"))
    app.on_record_after_delete("posts", id="audit")(lambda e: deleted.append(e.record["title"]))  # replaces
    rid = (await client.post(POSTS, json={"title": "gone"})).json()["id"]
    assert (await client.delete(f"{POSTS}/{rid}")).status_code == 204
    assert deleted == ["gone"]

"""POST /api/batch: shapes, all-or-nothing transactions, rules inside a batch, limits (both engines)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from keepbase.app import App
from keepbase.core.errors import BadRequestError
from keepbase.core.events import RecordEvent
from tests.conftest import make_collection

OPEN = {"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""}


async def enable(client: httpx.AsyncClient, su: dict[str, str], **batch: Any) -> None:
    r = await client.patch("/api/settings", headers=su, json={"batch": {"enabled": True, **batch}})
    assert r.status_code == 200, r.text


async def items_collection(client: httpx.AsyncClient, su: dict[str, str], name: str = "items",
                           **rules: Any) -> dict[str, Any]:
    return await make_collection(client, su, name=name, **{**OPEN, **rules}, fields=[
        {"name": "name", "type": "text", "required": True},
        {"name": "n", "type": "number"}])


async def count(client: httpx.AsyncClient, su: dict[str, str], name: str = "items") -> int:
    r = await client.get(f"/api/collections/{name}/records", headers=su)
    assert r.status_code == 200, r.text
    return int(r.json()["totalItems"])


async def test_disabled_by_default(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    r = await client.post("/api/batch", headers=su_headers, json={"requests": []})
    assert r.status_code == 403
    assert r.json() == {"data": {}, "message": "Batch requests are not allowed.", "status": 403}
    await enable(client, su_headers, maxRequests=0)
    r = await client.post("/api/batch", headers=su_headers, json={"requests": []})
    assert r.status_code == 403


async def test_success_shapes(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await enable(client, su_headers)
    await items_collection(client, su_headers)
    rec = "/api/collections/items/records"
    r = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": f"{rec}?fields=id,name", "body": {"id": "batch0000000001", "name": "b1"}},
        {"method": "PATCH", "url": f"{rec}/batch0000000001", "body": {"n": 5}},
        {"method": "PUT", "url": f"{rec}?fields=id,n", "body": {"id": "batch0000000001", "n": 6}},
        {"method": "PUT", "url": f"{rec}?fields=id,n", "body": {"id": "batch0000000002", "name": "b2", "n": 7}},
        {"method": "DELETE", "url": f"{rec}/batch0000000002"},
    ]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [x["status"] for x in out] == [200, 200, 200, 200, 204]
    assert out[0] == {"body": {"id": "batch0000000001", "name": "b1"}, "status": 200}
    assert out[1]["body"]["n"] == 5 and out[1]["body"]["collectionName"] == "items"
    assert out[2]["body"] == {"id": "batch0000000001", "n": 6}
    assert out[3]["body"] == {"id": "batch0000000002", "n": 7}
    assert out[4] == {"body": None, "status": 204}
    r = await client.get(f"{rec}/batch0000000001")
    assert r.json()["n"] == 6
    assert (await client.get(f"{rec}/batch0000000002")).status_code == 404


async def test_failing_third_request_rolls_back_everything(app: App, client: httpx.AsyncClient,
                                                           su_headers: dict[str, str]) -> None:
    await enable(client, su_headers)
    await items_collection(client, su_headers)
    after: list[str] = []
    app.on_record_after_create("items")(lambda e: after.append(e.record["name"]))
    rec = "/api/collections/items/records"
    r = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": rec, "body": {"name": "one"}},
        {"method": "POST", "url": rec, "body": {"name": "two"}},
        {"method": "POST", "url": rec, "body": {"n": 3}},
    ]})
    assert r.status_code == 400
    assert r.json() == {"data": {"requests": {"2": {
        "code": "batch_request_failed", "message": "Batch request failed.",
        "response": {"data": {"name": {"code": "validation_required", "message": "Cannot be blank."}},
                     "message": "Failed to create record.", "status": 400}}}},
        "message": "Batch transaction failed.", "status": 400}
    assert await count(client, su_headers) == 0
    assert after == []  # after-commit hooks of the rolled back writes never ran
    r = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": rec, "body": {"name": "one"}},
        {"method": "POST", "url": rec, "body": {"name": "two"}}]})
    assert r.status_code == 200, r.text
    assert after == ["one", "two"]


async def test_failing_first_request_and_unknown_action(client: httpx.AsyncClient,
                                                       su_headers: dict[str, str]) -> None:
    await enable(client, su_headers)
    await items_collection(client, su_headers)
    rec = "/api/collections/items/records"
    r = await client.post("/api/batch", json={"requests": [{"method": "PATCH", "url": f"{rec}/missing", "body": {}}]})
    assert r.status_code == 400
    item = r.json()["data"]["requests"]["0"]
    assert item["response"] == {"data": {}, "message": "The requested resource wasn't found.", "status": 404}
    r = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": rec, "body": {"name": "x"}},
        {"method": "GET", "url": rec}]})
    assert r.status_code == 400
    assert r.json()["data"]["requests"]["1"]["response"] == {  # PocketBase 0.40: 500 after the first item
        "data": {}, "message": "Something went wrong while processing your request.", "status": 500}
    r = await client.post("/api/batch", json={"requests": [{"method": "DELETE", "url": rec}]})
    assert r.json()["data"]["requests"]["0"]["response"] == {  # ... and 400 for the first one
        "data": {}, "message": "Something went wrong while processing your request.", "status": 400}
    r = await client.post("/api/batch", json={"requests": [{"method": "POST", "url": "/api/collections/nope/records"}]})
    assert r.json()["data"]["requests"]["0"]["response"]["message"] == "Missing collection context."
    assert await count(client, su_headers) == 0


async def test_rules_apply_inside_a_batch(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await enable(client, su_headers)
    await items_collection(client, su_headers, createRule="@request.auth.id != ''")
    await items_collection(client, su_headers, name="locked", createRule=None)
    await items_collection(client, su_headers, name="ctx", createRule="@request.context = 'batch'")
    r = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": "/api/collections/items/records", "body": {"name": "guest"}}]})
    assert r.status_code == 400
    assert r.json()["data"]["requests"]["0"]["response"] == {
        "data": {}, "message": "Failed to create record.", "status": 400}
    r = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": "/api/collections/locked/records", "body": {"name": "guest"}}]})
    assert r.json()["data"]["requests"]["0"]["response"] == {
        "data": {}, "message": "Only superusers can perform this action.", "status": 403}
    # the outer request's auth is inherited; an Authorization header on an item is ignored
    r = await client.post("/api/batch", headers=su_headers, json={"requests": [
        {"method": "POST", "url": "/api/collections/items/records", "body": {"name": "su"},
         "headers": {"Authorization": "bogus"}}]})
    assert r.status_code == 200, r.text
    # rules see @request.context = "batch"
    assert (await client.post("/api/collections/ctx/records", json={"name": "direct"})).status_code == 400
    r = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": "/api/collections/ctx/records", "body": {"name": "batched"}}]})
    assert r.status_code == 200, r.text


async def test_request_validation_and_limits(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await enable(client, su_headers, maxRequests=2, maxBodySize=300)
    rec = "/api/collections/items/records"
    r = await client.post("/api/batch", json={"requests": []})
    assert r.json() == {"data": {"requests": {"code": "validation_required", "message": "Cannot be blank."}},
                        "message": "Invalid batch request data.", "status": 400}
    r = await client.post("/api/batch", json={"requests": [{"method": "POST", "url": rec}] * 3})
    assert r.json() == {"data": {"requests": {
        "code": "validation_length_too_long", "message": "The length must be no more than 2.",
        "params": {"max": 2, "min": 0}}}, "message": "Invalid batch request data.", "status": 400}
    r = await client.post("/api/batch", json={"requests": [{"method": "HEAD"}]})
    assert r.json()["data"] == {"requests": {"0": {
        "method": {"code": "validation_in_invalid", "message": "Must be a valid value."},
        "url": {"code": "validation_required", "message": "Cannot be blank."}}}}
    r = await client.post("/api/batch", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.json() == {"data": {}, "message": "Failed to read the submitted batch data.", "status": 400}
    r = await client.post("/api/batch", json={"requests": "nope"})
    assert r.json()["message"] == "Failed to read the submitted batch data."
    r = await client.post("/api/batch", json={"requests": [{"method": "POST", "url": rec,
                                                            "body": {"name": "x" * 400}}]})
    assert r.status_code == 413
    assert r.json() == {"data": {}, "message": "Request entity too large.", "status": 413}


async def test_multipart_json_payload(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await enable(client, su_headers)
    await items_collection(client, su_headers)
    payload = '{"requests":[{"method":"POST","url":"/api/collections/items/records?fields=name","body":{"name":"mp"}}]}'
    r = await client.post("/api/batch", files={"@jsonPayload": (None, payload)})
    assert r.status_code == 200, r.text
    assert r.json() == [{"body": {"name": "mp"}, "status": 200}]


@pytest.mark.parametrize("error", [BadRequestError("Nope."), RuntimeError("boom")])
async def test_hook_failure_inside_a_batch(app: App, client: httpx.AsyncClient, su_headers: dict[str, str],
                                           error: Exception) -> None:
    await enable(client, su_headers)
    await items_collection(client, su_headers)

    @app.on_record_create("items")
    def reject_second(e: RecordEvent) -> None:
        if e.record["name"] == "bad":
            raise error
        e.next()

    rec = "/api/collections/items/records"
    r = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": rec, "body": {"name": "ok"}},
        {"method": "POST", "url": rec, "body": {"name": "bad"}}]})
    assert r.status_code == 400
    expected = ({"data": {}, "message": "Nope.", "status": 400} if isinstance(error, BadRequestError) else
                {"data": {}, "message": "Something went wrong while processing your request.", "status": 500})
    assert r.json()["data"]["requests"]["1"]["response"] == expected
    assert await count(client, su_headers) == 0


async def test_timeout_rolls_back(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await enable(client, su_headers, timeout=1)
    await items_collection(client, su_headers)

    @app.on_record_create("items")
    def slow(e: RecordEvent) -> None:
        import time

        time.sleep(0.6)
        e.next()

    rec = "/api/collections/items/records"
    r = await client.post("/api/batch", json={"requests": [
        {"method": "POST", "url": rec, "body": {"name": "a"}},
        {"method": "POST", "url": rec, "body": {"name": "b"}}]})
    assert r.status_code == 400
    assert r.json() == {"data": {}, "message": "Batch transaction failed.", "status": 400}
    assert await count(client, su_headers) == 0


async def test_multipart_files(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    import json
    from pathlib import Path

    await enable(client, su_headers)
    await make_collection(client, su_headers, name="docs", **OPEN, fields=[
        {"name": "title", "type": "text", "required": True},
        {"name": "doc", "type": "file", "maxSelect": 1, "maxSize": 1000},
        {"name": "docs", "type": "file", "maxSelect": 2, "maxSize": 1000}])
    storage = Path(app.config.dir) / "storage"

    def stored() -> list[Path]:
        return [p for p in storage.rglob("*") if p.is_file()] if storage.exists() else []

    rec = "/api/collections/docs/records"
    payload = {"requests": [
        {"method": "POST", "url": f"{rec}?fields=id,title,doc", "body": {"title": "one"}},
        {"method": "POST", "url": f"{rec}?fields=title,docs", "body": {"title": "two"}}]}
    r = await client.post("/api/batch", data={"@jsonPayload": json.dumps(payload)}, files=[
        ("requests.0.doc", ("alpha.txt", b"hello", "text/plain")),
        ("requests[1].docs", ("bravo.txt", b"bee", "text/plain")),
        ("requests[1].docs", ("charlie.txt", b"sea", "text/plain")),
        ("requests.7.doc", ("ignored.txt", b"no such item", "text/plain"))])
    assert r.status_code == 200, r.text
    first, second = r.json()
    assert first["body"]["doc"].startswith("alpha_") and first["body"]["doc"].endswith(".txt")
    assert [n.split("_")[0] for n in second["body"]["docs"]] == ["bravo", "charlie"]
    r = await client.get(f"/api/files/docs/{first['body']['id']}/{first['body']['doc']}")
    assert r.status_code == 200 and r.content == b"hello"
    assert len(stored()) == 3

    # a failing batch keeps no uploaded file behind
    payload = {"requests": [
        {"method": "POST", "url": rec, "body": {"title": "three"}},
        {"method": "POST", "url": rec, "body": {}}]}
    r = await client.post("/api/batch", data={"@jsonPayload": json.dumps(payload)},
                          files=[("requests.0.doc", ("d.txt", b"dee", "text/plain"))])
    assert r.status_code == 400
    assert r.json()["data"]["requests"]["1"]["response"]["data"]["title"]["code"] == "validation_required"
    assert len(stored()) == 3

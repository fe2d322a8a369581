"""Batch sub-requests meet the same rate limits as the standalone requests (both engines).

Verified against PocketBase 0.40.6: every item of ``/api/batch`` goes through the rules of its
own route (``posts:create``, ``*:create``, ``POST /api/collections/posts/records``, ``/api/``…);
an item over a limit fails the whole batch as ``400 Batch transaction failed.`` with the 429
under ``data.requests.<i>.response``, and nothing of the batch is written. The items' counters
are kept apart from the standalone routes' counters (two creates, then a batch create, all
pass), and an upsert counts as the create or update it turns into.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from keepbase.app import App
from tests.api.test_batch import count, enable, items_collection
from tests.api.test_rate_limits import enable_limits, user_headers

Headers = dict[str, str]
LIMITED = {"data": {}, "message": "Too Many Requests.", "status": 429}


def creates(n: int, coll: str = "items", query: str = "") -> list[dict[str, Any]]:
    return [{"method": "POST", "url": f"/api/collections/{coll}/records{query}", "body": {"name": f"b{i}"}}
            for i in range(n)]


def failed_at(r: httpx.Response, index: int) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["message"] == "Batch transaction failed."
    assert list(body["data"]["requests"]) == [str(index)]
    item = body["data"]["requests"][str(index)]
    assert item["code"] == "batch_request_failed"
    assert item["response"] == LIMITED


async def setup(client: httpx.AsyncClient, su: Headers, rules: list[dict[str, Any]]) -> None:
    await items_collection(client, su)
    await enable(client, su, maxRequests=50)
    await enable_limits(client, su, rules)


def rule(label: str, max_requests: int, audience: str = "") -> dict[str, Any]:
    return {"label": label, "audience": audience, "duration": 60, "maxRequests": max_requests}


async def test_create_limit_counts_every_item_and_nothing_is_written(
        client: httpx.AsyncClient, su_headers: Headers) -> None:
    await setup(client, su_headers, [rule("items:create", 2)])
    r = await client.post("/api/batch", json={"requests": creates(10)})
    failed_at(r, 2)
    assert await count(client, su_headers) == 0
    # the items' counter is used up: the next batch fails on its first item, still writing nothing
    failed_at(await client.post("/api/batch", json={"requests": creates(1)}), 0)
    assert await count(client, su_headers) == 0
    # ...while the standalone route has counters of its own (as PocketBase)
    r = await client.post("/api/collections/items/records", json={"name": "single"})
    assert r.status_code == 200, r.text
    assert await count(client, su_headers) == 1


async def test_standalone_requests_do_not_use_up_the_batch_counter(
        client: httpx.AsyncClient, su_headers: Headers) -> None:
    await setup(client, su_headers, [rule("items:create", 2)])
    for _ in range(2):
        assert (await client.post("/api/collections/items/records", json={"name": "s"})).status_code == 200
    assert (await client.post("/api/collections/items/records", json={"name": "s"})).status_code == 429
    r = await client.post("/api/batch", json={"requests": creates(2)})
    assert r.status_code == 200, r.text
    assert await count(client, su_headers) == 4


@pytest.mark.parametrize("label", ["*:create", "POST /api/collections/items/records", "/api/collections/"])
async def test_every_label_form_applies_to_items(
        client: httpx.AsyncClient, su_headers: Headers, label: str) -> None:
    await setup(client, su_headers, [rule(label, 3)])
    # the query string is not part of the path the labels see
    failed_at(await client.post("/api/batch", json={"requests": creates(5, query="?fields=id")}), 3)
    assert await count(client, su_headers) == 0


async def test_the_batch_request_and_its_items_count_separately(
        client: httpx.AsyncClient, su_headers: Headers) -> None:
    await setup(client, su_headers, [rule("/api/", 4)])
    # the outer POST /api/batch counts on its own key: two batches of two items fit a limit of 4
    for _ in range(2):
        r = await client.post("/api/batch", json={"requests": creates(2)})
        assert r.status_code == 200, r.text
    failed_at(await client.post("/api/batch", json={"requests": creates(1)}), 0)
    assert await count(client, su_headers) == 4


async def test_upsert_counts_as_the_action_it_becomes(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await setup(client, su_headers, [rule("items:update", 1)])
    r = await client.post("/api/collections/items/records", headers=su_headers,
                          json={"id": "up0000000000001", "name": "x"})
    assert r.status_code == 200, r.text
    upserts = [{"method": "PUT", "url": "/api/collections/items/records", "body": {"id": "up0000000000001",
                                                                                    "name": f"p{i}"}}
               for i in range(2)]
    failed_at(await client.post("/api/batch", json={"requests": upserts}), 1)
    r = await client.get("/api/collections/items/records/up0000000000001", headers=su_headers)
    assert r.json()["name"] == "x"  # rolled back
    # an upsert of a new id is a create, which this rule does not limit
    fresh = [{"method": "PUT", "url": "/api/collections/items/records", "body": {"name": f"n{i}"}}
             for i in range(3)]
    assert (await client.post("/api/batch", json={"requests": fresh})).status_code == 200


async def test_update_and_delete_items_use_their_tags(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await setup(client, su_headers, [rule("items:delete", 1)])
    ids = []
    for i in range(2):
        r = await client.post("/api/collections/items/records", headers=su_headers, json={"name": f"d{i}"})
        ids.append(r.json()["id"])
    reqs = [{"method": "PATCH", "url": f"/api/collections/items/records/{i}", "body": {"n": 1}} for i in ids]
    reqs += [{"method": "DELETE", "url": f"/api/collections/items/records/{i}"} for i in ids]
    failed_at(await client.post("/api/batch", json={"requests": reqs}), 3)
    assert await count(client, su_headers) == 2


async def test_audiences_superusers_and_excluded_ips(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await setup(client, su_headers, [rule("items:create", 1, "@auth")])
    user = await user_headers(client)
    # a guest is outside the @auth audience; a superuser is never limited
    assert (await client.post("/api/batch", json={"requests": creates(3)})).status_code == 200
    assert (await client.post("/api/batch", headers=su_headers, json={"requests": creates(3)})).status_code == 200
    failed_at(await client.post("/api/batch", headers=user, json={"requests": creates(2)}), 1)
    await enable_limits(client, su_headers, [rule("items:create", 1)], excludedIPs=["127.0.0.1"])
    assert (await client.post("/api/batch", json={"requests": creates(3)})).status_code == 200
    assert await count(client, su_headers) == 9


async def test_unknown_collection_answers_404_before_the_limits(
        client: httpx.AsyncClient, su_headers: Headers) -> None:
    await setup(client, su_headers, [rule("/api/", 1)])
    r = await client.post("/api/batch", json={"requests": creates(2, coll="nope")})
    assert r.status_code == 400
    assert r.json()["data"]["requests"]["0"]["response"]["status"] == 404


async def test_limits_off_by_default(app: App, client: httpx.AsyncClient, su_headers: Headers) -> None:
    await items_collection(client, su_headers)
    await enable(client, su_headers, maxRequests=50)
    r = await client.post("/api/batch", json={"requests": creates(30)})
    assert r.status_code == 200, r.text
    assert await count(client, su_headers) == 30

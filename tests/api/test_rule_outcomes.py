"""The rule outcome matrix of 03-records.md through HTTP, on both engines."""

from __future__ import annotations

import httpx

from tests.conftest import make_collection


async def _user(client: httpx.AsyncClient, email: str) -> tuple[str, dict[str, str]]:
    r = await client.post("/api/collections/users/records",
                          json={"email": email, "password": "password123", "passwordConfirm": "password123"})
    assert r.status_code == 200, r.text
    uid = r.json()["id"]
    r = await client.post("/api/collections/users/auth-with-password",
                          json={"identity": email, "password": "password123"})
    assert r.status_code == 200, r.text
    return uid, {"Authorization": r.json()["token"]}


async def test_owner_rules(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    u1, h1 = await _user(client, "u1@example.com")
    u2, h2 = await _user(client, "u2@example.com")
    owner = "owner = @request.auth.id"
    await make_collection(
        client, su_headers, name="notes", listRule=owner, viewRule=owner,
        createRule="@request.auth.id != '' && @request.body.owner = @request.auth.id",
        updateRule=owner + " && @request.body.views < 10", deleteRule=owner,
        fields=[{"name": "text", "type": "text"}, {"name": "views", "type": "number"},
                {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1}])
    base = "/api/collections/notes/records"
    # create: rule failure is a 400 with empty data, checked before field validation
    r = await client.post(base, json={"text": "x", "owner": u2}, headers=h1)
    assert r.status_code == 400 and r.json() == {"data": {}, "message": "Failed to create record.", "status": 400}
    r = await client.post(base, json={"text": "x", "owner": u1})
    assert r.status_code == 400
    r = await client.post(base, json={"text": "mine", "owner": u1, "views": 5}, headers=h1)
    assert r.status_code == 200, r.text
    nid = r.json()["id"]
    # list: filtered, view: 404 for others
    r = await client.get(base, headers=h2)
    assert r.status_code == 200 and r.json()["items"] == [] and r.json()["totalItems"] == 0
    r = await client.get(base, headers=h1)
    assert [i["id"] for i in r.json()["items"]] == [nid]
    assert (await client.get(f"{base}/{nid}", headers=h2)).status_code == 404
    assert (await client.get(f"{base}/{nid}", headers=h1)).status_code == 200
    # update: @request.body sees the modifier-resolved value (5 + 4 = 9 ok, 9 + 4 = 13 denied)
    r = await client.patch(f"{base}/{nid}", json={"views+": 4}, headers=h1)
    assert r.status_code == 200 and r.json()["views"] == 9, r.text
    r = await client.patch(f"{base}/{nid}", json={"views+": 4}, headers=h1)
    assert r.status_code == 404
    assert (await client.patch(f"{base}/{nid}", json={"text": "y"}, headers=h2)).status_code == 404
    # delete: 404 for others, 204 for the owner
    assert (await client.delete(f"{base}/{nid}", headers=h2)).status_code == 404
    assert (await client.delete(f"{base}/{nid}", headers=h1)).status_code == 204


async def test_null_rule_is_checked_before_lookup(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await make_collection(client, su_headers, name="locked", fields=[{"name": "t", "type": "text"}])
    for method, path in (("GET", ""), ("GET", "/nonexistent0000"), ("POST", ""),
                         ("PATCH", "/nonexistent0000"), ("DELETE", "/nonexistent0000")):
        r = await client.request(method, "/api/collections/locked/records" + path, json={} if method in ("POST", "PATCH") else None)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["message"] == "Only superusers can perform this action."


async def test_client_filter_cannot_read_hidden_fields(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    _uid, h3 = await _user(client, "u3@example.com")
    r = await client.get("/api/collections/users/records", params={"filter": "password ~ '$argon'"}, headers=h3)
    assert r.status_code == 400
    r = await client.get("/api/collections/users/records", params={"filter": "@collection.users.id != ''"})
    assert r.status_code == 403
    assert r.json()["message"] == "Only superusers can filter by @collection."

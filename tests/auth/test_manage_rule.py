"""manageRule: managers see the email of the records they manage (01-conventions), on both engines."""

from __future__ import annotations

from typing import Any

import httpx

from keepbase.app import App

Headers = dict[str, str]
PW = "password123"
USERS = "/api/collections/users"


async def sign_up(client: httpx.AsyncClient, email: str, name: str) -> tuple[str, Headers]:
    r = await client.post(f"{USERS}/records", json={"email": email, "password": PW, "passwordConfirm": PW,
                                                     "name": name})
    assert r.status_code == 200, r.text
    r = await client.post(f"{USERS}/auth-with-password", json={"identity": email, "password": PW})
    assert r.status_code == 200, r.text
    return r.json()["record"]["id"], {"Authorization": r.json()["token"]}


def emails(items: list[dict[str, Any]]) -> dict[str, str | None]:
    return {i["name"]: i.get("email") for i in items}


async def test_managers_see_managed_emails(app: App, client: httpx.AsyncClient, su_headers: Headers) -> None:
    boss_id, boss = await sign_up(client, "boss@example.com", "boss")
    _, worker = await sign_up(client, "worker@example.com", "worker")
    _, other = await sign_up(client, "other@example.com", "other")
    r = await client.patch(USERS, headers=su_headers, json={
        "listRule": '@request.auth.id != ""', "viewRule": '@request.auth.id != ""',
        "manageRule": f'@request.auth.id = "{boss_id}" && name != "other"'})
    assert r.status_code == 200, r.text

    r = await client.get(f"{USERS}/records", headers=boss, params={"sort": "name"})
    assert r.status_code == 200, r.text
    # own email always; managed ones too; "other" is outside the manageRule and keeps it hidden
    assert emails(r.json()["items"]) == {"boss": "boss@example.com", "worker": "worker@example.com", "other": None}

    r = await client.get(f"{USERS}/records", headers=worker)
    assert emails(r.json()["items"]) == {"boss": None, "worker": "worker@example.com", "other": None}
    r = await client.get(f"{USERS}/records", headers=other)
    assert emails(r.json()["items"]) == {"boss": None, "worker": None, "other": "other@example.com"}

    workers = (await client.get(f"{USERS}/records", headers=su_headers,
                                params={"filter": 'name = "worker"'})).json()["items"]
    worker_id = workers[0]["id"]
    r = await client.get(f"{USERS}/records/{worker_id}", headers=boss)
    assert r.json()["email"] == "worker@example.com"
    r = await client.get(f"{USERS}/records/{worker_id}", headers=other)
    assert "email" not in r.json()

    # a public email is shown to everyone signed in, whatever the manageRule says
    r = await client.patch(f"{USERS}/records/{worker_id}", headers=worker, json={"emailVisibility": True})
    assert r.status_code == 200, r.text
    r = await client.get(f"{USERS}/records/{worker_id}", headers=other)
    assert r.json()["email"] == "worker@example.com"

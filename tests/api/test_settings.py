from __future__ import annotations

import httpx


async def test_settings_defaults_merge_and_secrets(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    r = await client.get("/api/settings")
    assert r.status_code == 401
    r = await client.get("/api/settings", headers=su_headers)
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["superuserIPs", "smtp", "backups", "s3", "meta", "rateLimits", "trustedProxy",
                          "batch", "logs"]
    assert "password" not in body["smtp"] and "secret" not in body["s3"]
    r = await client.patch("/api/settings", headers=su_headers,
                           json={"smtp": {"enabled": True, "host": "127.0.0.1", "password": "hunter2"},
                                 "meta": {"appName": "Mine"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["smtp"]["host"] == "127.0.0.1" and body["smtp"]["port"] == 587
    assert body["meta"]["appName"] == "Mine" and body["meta"]["senderName"] == "Support"
    assert "password" not in body["smtp"] and "hunter2" not in r.text


async def test_settings_validation(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    r = await client.patch("/api/settings", headers=su_headers, json={
        "meta": {"appName": "", "appURL": "nope"}, "superuserIPs": ["x.y"],
        "rateLimits": {"rules": [{"label": "bad label!", "duration": 0, "maxRequests": 0}]}})
    assert r.status_code == 400
    data = r.json()["data"]
    assert r.json()["message"] == "An error occurred while saving the new settings."
    assert data["meta"]["appName"]["code"] == "validation_required"
    assert data["meta"]["appURL"]["code"] == "validation_is_url"
    assert data["superuserIPs"]["0"]["code"] == "validation_invlaid_ip_or_subnet"
    assert data["rateLimits"]["rules"]["0"]["label"]["code"] == "validation_match_invalid"
    r = await client.get("/api/settings", headers=su_headers)
    assert r.json()["meta"]["appName"] == "Acme"  # nothing was saved

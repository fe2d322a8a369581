"""``App.on_record_auth``: around a successful sign-in, before the token is sent."""

from __future__ import annotations

import httpx

from keepbase import App, ForbiddenError, RecordAuthEvent
from tests.conftest import SU_EMAIL, SU_PASSWORD

SIGN_IN = "/api/collections/_superusers/auth-with-password"


async def test_record_auth_hook(app: App, client: httpx.AsyncClient) -> None:
    seen: list[tuple[str, str, str]] = []

    @app.on_record_auth("_superusers")
    def audit(e: RecordAuthEvent) -> None:
        seen.append((e.collection.name, e.method, e.info.context))
        e.record["greeting"] = "welcome back"
        e.next()

    @app.on_record_auth("users")
    def never(e: RecordAuthEvent) -> None:
        raise AssertionError("filtered by collection")

    r = await client.post(SIGN_IN, json={"identity": SU_EMAIL, "password": SU_PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["record"]["greeting"] == "welcome back"
    assert seen == [("_superusers", "password", "password")]

    # a failed sign-in never reaches the hook
    r = await client.post(SIGN_IN, json={"identity": SU_EMAIL, "password": "wrong-password"})
    assert r.status_code == 400 and len(seen) == 1

    @app.on_record_auth(priority=-1)
    def closed(e: RecordAuthEvent) -> None:
        raise ForbiddenError("Sign-ins are closed for maintenance.")

    r = await client.post(SIGN_IN, json={"identity": SU_EMAIL, "password": SU_PASSWORD})
    assert r.json() == {"data": {}, "message": "Sign-ins are closed for maintenance.", "status": 403}
    assert "token" not in r.text

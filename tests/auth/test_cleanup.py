"""The hourly clean-up of expired OTPs and MFA sessions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select, update

from keepbase.app import App
from keepbase.auth import cleanup
from keepbase.core.clock import format_dt, now
from tests.auth.test_otp_mfa import configure, make_user, new_otp

Headers = dict[str, str]


def ids(app: App, name: str) -> set[str]:
    table = app.collections.records_table(app.collections.get(name))
    with app.db.read() as conn:
        return {r[0] for r in conn.execute(select(table.c.id)).all()}


def age(app: App, name: str, row_id: str, seconds: int) -> None:
    table = app.collections.records_table(app.collections.get(name))
    with app.db.write() as conn:
        conn.execute(update(table).where(table.c.id == row_id)
                     .values(created=format_dt(now() - timedelta(seconds=seconds))))


async def test_expired_otps_and_mfas_are_deleted_fresh_ones_kept(app: App, client: httpx.AsyncClient,
                                                                su_headers: Headers) -> None:
    await configure(client, su_headers, otp={"enabled": True, "duration": 300}, mfa={"duration": 900})
    user = await make_user(client)
    users = app.collections.get("users")
    fresh_otp, _ = new_otp(app, user)
    old_otp, _ = new_otp(app, user)
    edge_otp, _ = new_otp(app, user)
    age(app, "_otps", old_otp, 301)
    age(app, "_otps", edge_otp, 200)  # older than PocketBase's default 180 s but within this collection's 300 s
    fresh_mfa = app.mfa.begin(users, user["id"], "password")
    old_mfa = app.mfa.begin(users, user["id"], "password")
    age(app, "_mfas", old_mfa, 901)

    assert cleanup.delete_expired(app.db, app.collections) == 2
    assert ids(app, "_otps") == {fresh_otp, edge_otp}
    assert ids(app, "_mfas") == {fresh_mfa}
    assert cleanup.delete_expired(app.db, app.collections) == 0


async def test_rows_of_deleted_auth_collections_are_deleted(app: App, client: httpx.AsyncClient,
                                                            su_headers: Headers) -> None:
    r = await client.post("/api/collections", headers=su_headers, json={
        "name": "members", "type": "auth", "otp": {"enabled": True}, "createRule": ""})
    assert r.status_code == 200, r.text
    members = app.collections.get("members")
    pw = "password123"
    r = await client.post("/api/collections/members/records",
                          json={"email": "m@example.com", "password": pw, "passwordConfirm": pw})
    assert r.status_code == 200, r.text
    otp_id, _ = app.otp.create_otp(members, {"id": r.json()["id"]}, "m@example.com")
    assert cleanup.delete_expired(app.db, app.collections) == 0
    assert otp_id in ids(app, "_otps")
    r = await client.delete("/api/collections/members", headers=su_headers)
    assert r.status_code == 204
    cleanup.delete_expired(app.db, app.collections)
    assert otp_id not in ids(app, "_otps")


def test_cleanup_is_a_scheduled_job(app: App) -> None:
    job = next(j for j in app.scheduler.jobs() if j.id == cleanup.JOB_ID)
    assert job.expression == "0 * * * *"
    assert app.scheduler.run_job(job) is True and job.runs == 1 and job.failures == 0

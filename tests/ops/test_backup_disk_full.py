"""A backup on a full disk: the 507 envelope (not a bug's 500), no half-written archive left, and a
backup works again once there is space."""

from __future__ import annotations

from pathlib import Path

import httpx

from keepbase.app import create_app
from keepbase.core.config import Config

from .mounts import fill, tmpfs

EMAIL, PASSWORD = "backup-admin@example.com", "backup-admin-password"


async def test_backup_on_a_full_disk_is_507_and_leaves_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "data", "6m") as data:
        app = create_app(Config(dir=str(data)))
        try:
            app.upsert_superuser(EMAIL, PASSWORD)
            transport = httpx.ASGITransport(app=app.asgi)
            async with httpx.AsyncClient(transport=transport, base_url="http://kb") as client:
                token = (await client.post("/api/collections/_superusers/auth-with-password",
                                           json={"identity": EMAIL, "password": PASSWORD})).json()["token"]
                headers = {"Authorization": token}
                filler = fill(data)
                r = await client.post("/api/backups", json={"name": "full.zip"}, headers=headers)
                assert r.status_code == 507, r.text
                assert r.json() == {"data": {}, "message": "The server is out of storage space; nothing was saved. "
                                    "Try again later.", "status": 507}
                listed = await client.get("/api/backups", headers=headers)
                assert listed.status_code == 200 and listed.json() == []
                leftovers = [p for p in data.rglob("*") if p.is_file() and "backup_" in str(p.relative_to(data))]
                assert leftovers == []
                filler.unlink()
                r = await client.post("/api/backups", json={"name": "ok.zip"}, headers=headers)
                assert r.status_code == 204, r.text
                assert [b["key"] for b in (await client.get("/api/backups", headers=headers)).json()] == ["ok.zip"]
        finally:
            app.close()

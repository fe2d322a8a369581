"""A running server with a superuser and a ``notes`` collection (text + file), and assertions on
error envelopes, shared by the disk-full and read-only tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.server_process import ServerProcess, run_cli

SU_EMAIL = "admin@example.com"
SU_PASSWORD = "adminpass123"
NOTES = {
    "name": "notes", "type": "base", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
    "fields": [{"name": "title", "type": "text", "max": 20000},
               {"name": "doc", "type": "file", "maxSelect": 1, "maxSize": 10_000_000}],
}


def start(tmp_path: Path, data: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    code, out = run_cli("superuser", "upsert", SU_EMAIL, SU_PASSWORD, "--dir", str(data), *args, env=env)
    assert code == 0, out
    return ServerProcess.start(tmp_path, "--dir", str(data), *args, env=env).wait_ready()


def sign_in(client: httpx.Client) -> httpx.Response:
    return client.post("/api/collections/_superusers/auth-with-password",
                       json={"identity": SU_EMAIL, "password": SU_PASSWORD})


def superuser_headers(client: httpx.Client) -> dict[str, str]:
    r = sign_in(client)
    assert r.status_code == 200, r.text
    return {"Authorization": r.json()["token"]}


def make_notes(client: httpx.Client, headers: dict[str, str]) -> None:
    r = client.post("/api/collections", json=NOTES, headers=headers)
    assert r.status_code == 200, r.text


def assert_envelope(r: httpx.Response, status: int) -> dict[str, Any]:
    """PocketBase's error envelope with this status, and nothing else."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"data", "message", "status"}, body
    assert body["status"] == status and body["data"] == {}, body
    assert "nothing was saved" in body["message"], body
    return dict(body)


def integrity(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def stray_files(storage: Path) -> list[str]:
    """Files under the storage folder that are temp files or not named by any test record."""
    if not storage.exists():
        return []
    return sorted(str(p.relative_to(storage)) for p in storage.rglob("*") if p.is_file())

"""/api/backups on SQLite and PostgreSQL: ACL, create/list/download/delete, upload, names,
restore round trips (records, files and schema exactly as at backup time), refused archives
that change nothing, the one-at-a-time guard, keys that try to leave the backups folder, and
the auto-backup job."""

from __future__ import annotations

import asyncio
import io
import os
import re
import threading
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from keepbase.app import App
from keepbase.ops import backups as backups_module
from keepbase.ops.backup_archive import snapshot_storage
from keepbase.ops.backups import AUTO_PREFIX, BUSY, JOB_ID
from tests.conftest import make_collection
from tests.files.conftest import new_bucket, s3_endpoint, s3_settings  # noqa: F401 - s3_endpoint is a fixture

OPEN = {"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""}
VALIDATION = "An error occurred while validating the submitted data."
LOAD = "An error occurred while loading the submitted data."
INVALID = "Missing or invalid backup file."
WAIT = 120  # seconds; generous: the machine is shared


async def file_token(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    r = await client.post("/api/files/token", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def create_backup(client: httpx.AsyncClient, su: dict[str, str], name: str) -> None:
    r = await client.post("/api/backups", json={"name": name}, headers=su)
    assert r.status_code == 204, r.text


async def download(client: httpx.AsyncClient, su: dict[str, str], key: str) -> bytes:
    r = await client.get(f"/api/backups/{key}", params={"token": await file_token(client, su)})
    assert r.status_code == 200, r.text
    return r.content


async def upload(client: httpx.AsyncClient, su: dict[str, str], name: str, data: bytes) -> httpx.Response:
    return await client.post("/api/backups/upload", files={"file": (name, data, "application/zip")}, headers=su)


def keys(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [b["key"] for b in r.json()]


def rezip(data: bytes, replace: dict[str, bytes | None]) -> bytes:
    """A copy of the zip ``data`` with members replaced (or removed with ``None``) or added."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename in replace:
                continue
            dst.writestr(info, src.read(info.filename))
        for name, body in replace.items():
            if body is not None:
                dst.writestr(name, body)
    return out.getvalue()


async def user_headers(client: httpx.AsyncClient, su: dict[str, str]) -> dict[str, str]:
    r = await client.post("/api/collections/users/records", headers=su, json={
        "email": "u1@example.com", "password": "userpass123", "passwordConfirm": "userpass123"})
    assert r.status_code == 200, r.text
    r = await client.post("/api/collections/users/auth-with-password",
                          json={"identity": "u1@example.com", "password": "userpass123"})
    assert r.status_code == 200, r.text
    return {"Authorization": r.json()["token"]}


# --- access ---

async def test_superusers_only(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    user = await user_headers(client, su_headers)
    routes = [("GET", "/api/backups"), ("POST", "/api/backups"), ("POST", "/api/backups/upload"),
              ("DELETE", "/api/backups/x.zip"), ("POST", "/api/backups/x.zip/restore")]
    for method, path in routes:
        r = await client.request(method, path)
        assert (r.status_code, r.json()["message"]) == (401, "The request requires valid record authorization token.")
        r = await client.request(method, path, headers=user)
        assert (r.status_code, r.json()["message"]) == (
            403, "The authorized record is not allowed to perform this action.")
    await create_backup(client, su_headers, "acl.zip")
    denied = {"message": "Insufficient permissions to access the resource.", "status": 403, "data": {}}
    for params in ({}, {"token": su_headers["Authorization"]}, {"token": await file_token(client, user)},
                   {"token": "garbage"}):
        r = await client.get("/api/backups/acl.zip", params=params)
        assert (r.status_code, r.json()) == (403, denied)
    r = await client.get("/api/backups/acl.zip", params={"token": await file_token(client, user)},
                         headers=su_headers)  # a superuser header does not replace the file token
    assert r.status_code == 403


# --- create, list, download, delete ---

async def test_create_list_download_delete(app: App, client: httpx.AsyncClient, su_headers: dict[str, str],
                                           engine: str) -> None:
    r = await client.get("/api/backups", headers=su_headers)
    assert r.status_code == 200 and r.json() == []
    await create_backup(client, su_headers, "zeta.zip")
    await create_backup(client, su_headers, "alpha.zip")
    r = await client.get("/api/backups", headers=su_headers)
    assert keys(r) == ["alpha.zip", "zeta.zip"]  # by key, as PocketBase lists them
    item = r.json()[0]
    assert list(item) == ["modified", "key", "size"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z", item["modified"])
    body = await download(client, su_headers, "alpha.zip")
    assert len(body) == item["size"]
    r = await client.get("/api/backups/alpha.zip", params={"token": await file_token(client, su_headers)})
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == 'attachment; filename="alpha.zip"'
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        names = zf.namelist()
        manifest = zf.read("keepbase_backup.json")
    assert b'"engine": "%s"' % (b"sqlite" if engine == "sqlite" else b"postgresql") in manifest
    if engine == "sqlite":
        assert "data.db" in names
    else:
        assert {"db/_collections.jsonl", "db/_params.jsonl", "db/_superusers.jsonl", "db/users.jsonl"} <= set(names)
    r = await client.get("/api/backups/alpha.zip", headers={"Range": "bytes=0-3"},
                         params={"token": await file_token(client, su_headers)})
    assert (r.status_code, r.content) == (206, b"PK\x03\x04")

    r = await client.delete("/api/backups/alpha.zip", headers=su_headers)
    assert r.status_code == 204
    r = await client.delete("/api/backups/alpha.zip", headers=su_headers)
    assert r.status_code == 400
    assert r.json()["message"].startswith("Invalid or already deleted backup file. Raw error: \n[key: alpha.zip]")
    r = await client.get("/api/backups/alpha.zip", params={"token": await file_token(client, su_headers)})
    assert (r.status_code, r.json()["message"]) == (404, "The requested resource wasn't found.")
    assert keys(await client.get("/api/backups", headers=su_headers)) == ["zeta.zip"]
    assert not list((Path(app.config.dir) / ".kb_temp").iterdir())  # no staging left behind


async def test_default_name(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    r = await client.patch("/api/settings", json={"meta": {"appName": "My Test App"}}, headers=su_headers)
    assert r.status_code == 200, r.text
    for body in (None, {}, {"name": ""}, {"name": None}):
        r = await client.post("/api/backups", json=body, headers=su_headers)
        assert r.status_code == 204, r.text
    listed = keys(await client.get("/api/backups", headers=su_headers))
    assert listed and all(re.fullmatch(r"pb_backup_my_test_app_\d{14}\.zip", k) for k in listed)


@pytest.mark.parametrize(("body", "code"), [
    ({"name": "Bad Name.zip"}, "validation_match_invalid"),
    ({"name": "no_extension"}, "validation_match_invalid"),
    ({"name": "../escape.zip"}, "validation_match_invalid"),
    ({"name": "a" * 147 + ".zip"}, "validation_length_out_of_range"),
])
async def test_name_validation(client: httpx.AsyncClient, su_headers: dict[str, str], body: dict[str, Any],
                               code: str) -> None:
    r = await client.post("/api/backups", json=body, headers=su_headers)
    assert r.status_code == 400
    assert r.json()["message"] == VALIDATION
    assert r.json()["data"]["name"]["code"] == code


async def test_name_exists_and_bad_bodies(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    ok = "a" * 146 + ".zip"  # 150 characters: the longest accepted
    await create_backup(client, su_headers, ok)
    r = await client.post("/api/backups", json={"name": ok}, headers=su_headers)
    assert r.json()["data"] == {"name": {"code": "validation_backup_name_exists",
                                         "message": "The backup file name is invalid or already exists."}}
    bodies: list[dict[str, Any]] = [{"json": {"name": 5}}, {"json": [1]},
                                    {"content": b"{bad", "headers": {"Content-Type": "application/json"}},
                                    {"content": b"x", "headers": {"Content-Type": "text/plain"}}]
    for kwargs in bodies:
        headers = {**su_headers, **kwargs.pop("headers", {})}
        r = await client.post("/api/backups", headers=headers, **kwargs)
        assert (r.status_code, r.json()["message"]) == (400, LOAD)
    r = await client.post("/api/backups", data={"name": "form_name.zip"}, headers=su_headers)
    assert r.status_code == 204


# --- upload ---

async def test_upload(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await create_backup(client, su_headers, "orig.zip")
    archive = await download(client, su_headers, "orig.zip")
    r = await upload(client, su_headers, "copy.zip", archive)
    assert r.status_code == 204, r.text
    assert await download(client, su_headers, "copy.zip") == archive
    r = await upload(client, su_headers, "copy.zip", archive)
    assert r.json()["data"] == {"file": {"code": "validation_backup_name_exists",
                                         "message": "Backup file with the specified name already exists."}}
    r = await client.post("/api/backups/upload", files={"file": ("doc.txt", b"hello", "text/plain")}, headers=su_headers)
    assert r.status_code == 400 and r.json()["message"] == VALIDATION
    err = r.json()["data"]["file"]
    assert err["code"] == "validation_invalid_mime_type"
    assert re.fullmatch(r'"doc_[a-z0-9]{10}\.txt" mime type must be one of: application/zip\.', err["message"])
    r = await client.post("/api/backups/upload", files={"file": ("fake.zip", b"not a zip", "application/zip")},
                          headers=su_headers)
    assert r.json()["data"]["file"]["code"] == "validation_invalid_mime_type"  # sniffed, not trusted
    missing: list[dict[str, Any]] = [{"files": {"other": ("x.zip", archive, "application/zip")}},
                                     {"data": {"file": "text"}}, {"json": {}}]
    for kwargs in missing:
        r = await client.post("/api/backups/upload", headers=su_headers, **kwargs)
        assert r.json()["data"] == {"file": {"code": "validation_required", "message": "Cannot be blank."}}
    # a path in the file name never leaves the backups folder; unsafe characters are replaced
    for name in ("../../escape.zip", "..\\win.zip", "My Backup (1).zip", ".hidden.zip"):
        assert (await upload(client, su_headers, name, archive)).status_code == 204
    listed = keys(await client.get("/api/backups", headers=su_headers))
    assert listed == ["My_Backup_1_.zip", "copy.zip", "escape.zip", "hidden.zip", "orig.zip", "win.zip"]
    data_dir = Path(app.config.dir)
    assert not (data_dir / "escape.zip").exists() and not (data_dir.parent / "escape.zip").exists()


# --- restore ---

async def _world(client: httpx.AsyncClient, su: dict[str, str]) -> dict[str, Any]:
    """Everything a restore must bring back: schema, records (hidden fields too), file bytes."""
    r = await client.get("/api/collections", params={"perPage": 500}, headers=su)
    assert r.status_code == 200
    collections = sorted(r.json()["items"], key=lambda c: c["id"])
    records: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    token = await file_token(client, su)
    for c in collections:
        if c["type"] == "view":
            continue
        r = await client.get(f"/api/collections/{c['id']}/records", params={"perPage": 500, "sort": "id"}, headers=su)
        assert r.status_code == 200, r.text
        records[c["name"]] = r.json()["items"]
        for rec in r.json()["items"]:
            for f in c["fields"]:
                if f["type"] != "file":
                    continue
                names = rec[f["name"]] if isinstance(rec[f["name"]], list) else [rec[f["name"]]]
                for name in filter(None, names):
                    got = await client.get(f"/api/files/{c['id']}/{rec['id']}/{name}", params={"token": token})
                    assert got.status_code == 200, (c["name"], name)
                    files[f"{c['name']}/{rec['id']}/{name}"] = got.content
    settings = (await client.get("/api/settings", headers=su)).json()
    return {"collections": collections, "records": records, "files": files, "settings": settings}


def _storage_tree(app: App) -> dict[str, bytes]:
    root = Path(app.storage.local.root)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def _populate(client: httpx.AsyncClient, su: dict[str, str]) -> dict[str, str]:
    await make_collection(client, su, name="notes", type="base", **OPEN, fields=[
        {"name": "title", "type": "text"}, {"name": "n", "type": "number"},
        {"name": "doc", "type": "file", "maxSelect": 1},
        {"name": "pics", "type": "file", "maxSelect": 3}])
    await make_collection(client, su, name="notes_view", type="view", listRule="", viewRule="",
                          viewQuery="SELECT id, title FROM notes WHERE n > 1")
    ids = {}
    for i, title in enumerate(["first", "second", "third"]):
        r = await client.post("/api/collections/notes/records", headers=su, data={"title": title, "n": str(i)},
                              files=[("doc", (f"doc{i}.txt", f"document {i}".encode(), "text/plain")),
                                     ("pics", (f"p{i}.txt", b"pic" * (i + 1), "text/plain"))])
        assert r.status_code == 200, r.text
        ids[title] = r.json()["id"]
    return ids


async def test_restore_round_trip(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    ids = await _populate(client, su_headers)
    before = await _world(client, su_headers)
    tree = _storage_tree(app)
    assert len(tree) == 6
    await create_backup(client, su_headers, "snap.zip")

    # change everything: records, files, schema, settings
    r = await client.patch(f"/api/collections/notes/records/{ids['first']}", headers=su_headers,
                           data={"title": "changed"}, files=[("doc", ("new.txt", b"replaced", "text/plain"))])
    assert r.status_code == 200, r.text
    assert (await client.delete(f"/api/collections/notes/records/{ids['second']}", headers=su_headers)).status_code == 204
    r = await client.post("/api/collections/notes/records", headers=su_headers, data={"title": "fourth"},
                          files=[("doc", ("four.txt", b"four", "text/plain"))])
    assert r.status_code == 200
    r = await client.patch("/api/collections/notes", headers=su_headers,
                           json={"fields": [*before_fields(before, "notes"), {"name": "extra", "type": "bool"}]})
    assert r.status_code == 200, r.text
    await make_collection(client, su_headers, name="later", type="base", fields=[{"name": "x", "type": "text"}])
    r = await client.patch("/api/settings", json={"meta": {"appName": "Changed"}}, headers=su_headers)
    assert r.status_code == 200
    assert await _world(client, su_headers) != before

    r = await client.post("/api/backups/snap.zip/restore", headers=su_headers)
    assert r.status_code == 204, r.text
    after = await _world(client, su_headers)
    assert after["collections"] == before["collections"]
    assert after["records"] == before["records"]
    assert after["files"] == before["files"]
    assert after["settings"] == before["settings"]
    assert _storage_tree(app) == tree
    r = await client.get("/api/collections/later/records", headers=su_headers)
    assert r.status_code == 404
    r = await client.get("/api/collections/notes_view/records", headers=su_headers)
    assert r.status_code == 200 and {i["title"] for i in r.json()["items"]} == {"third"}
    # the restored database takes writes, and keeps the insertion order going
    r = await client.post("/api/collections/notes/records", headers=su_headers, json={"title": "fifth"})
    assert r.status_code == 200, r.text
    r = await client.get("/api/collections/notes/records", params={"sort": "@rowid"}, headers=su_headers)
    assert [i["title"] for i in r.json()["items"]] == ["first", "second", "third", "fifth"]
    r = await client.get("/api/health", headers=su_headers)
    assert r.json()["data"]["canBackup"] is True


def before_fields(world: dict[str, Any], name: str) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = next(c["fields"] for c in world["collections"] if c["name"] == name)
    return fields


async def _refused(client: httpx.AsyncClient, su: dict[str, str], app: App, name: str, archive: bytes,
                   before: dict[str, Any], tree: dict[str, bytes]) -> None:
    assert (await upload(client, su, name, archive)).status_code == 204
    r = await client.post(f"/api/backups/{name}/restore", headers=su)
    assert (r.status_code, r.json()) == (400, {"data": {}, "message": INVALID, "status": 400}), name
    assert await _world(client, su) == before, name
    assert _storage_tree(app) == tree, name


async def test_restore_refuses_bad_archives_and_changes_nothing(
        app: App, client: httpx.AsyncClient, su_headers: dict[str, str], engine: str) -> None:
    await _populate(client, su_headers)
    await create_backup(client, su_headers, "good.zip")
    good = await download(client, su_headers, "good.zip")
    # later changes that a refused restore must keep
    r = await client.post("/api/collections/notes/records", headers=su_headers, data={"title": "kept"},
                          files=[("doc", ("kept.txt", b"kept", "text/plain"))])
    assert r.status_code == 200
    before = await _world(client, su_headers)
    tree = _storage_tree(app)
    other = "postgresql" if engine == "sqlite" else "sqlite"

    bad: dict[str, bytes] = {
        "foreign.zip": rezip(good, {"keepbase_backup.json": None}),
        "other_engine.zip": rezip(good, {"keepbase_backup.json": b'{"format": 1, "engine": "%s"}' % other.encode()}),
        "future.zip": rezip(good, {"keepbase_backup.json": b'{"format": 99, "engine": "x"}'}),
        "truncated.zip": good[: len(good) // 2],
        "traversal.zip": rezip(good, {"storage/../../evil.txt": b"evil"}),
    }
    if engine == "sqlite":
        bad["garbage_db.zip"] = rezip(good, {"data.db": b"SQLite format 3\x00" + b"\x00" * 5000})
        bad["no_db.zip"] = rezip(good, {"data.db": None})
    else:
        # the collection rows fail late, after the tables were dropped: the transaction must undo it all
        bad["bad_rows.zip"] = rezip(good, {"db/notes.jsonl": b'{"id": "x", "nope": 1}\n'})
        bad["dup_rows.zip"] = rezip(good, {"db/notes.jsonl": b'{"id": "a"}\n{"id": "a"}\n'})
        bad["no_rows.zip"] = rezip(good, {"db/notes.jsonl": None})
    for name, archive in bad.items():
        await _refused(client, su_headers, app, name, archive, before, tree)
    assert not (Path(app.config.dir).parent / "evil.txt").exists()
    # and the good one still restores afterwards
    r = await client.post("/api/backups/good.zip/restore", headers=su_headers)
    assert r.status_code == 204, r.text
    r = await client.get("/api/collections/notes/records", params={"filter": "title='kept'"}, headers=su_headers)
    assert r.json()["items"] == []


async def test_restore_missing(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    r = await client.post("/api/backups/nope.zip/restore", headers=su_headers)
    assert (r.status_code, r.json()["message"]) == (400, INVALID)


# --- one at a time ---

async def test_busy_guard(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await create_backup(client, su_headers, "held.zip")
    with app.backups.exclusive("held.zip"):
        r = await client.get("/api/health", headers=su_headers)
        assert r.json()["data"]["canBackup"] is False
        for method, path in (("POST", "/api/backups"), ("POST", "/api/backups/held.zip/restore")):
            r = await client.request(method, path, headers=su_headers)
            assert (r.status_code, r.json()["message"]) == (400, BUSY)
        r = await client.delete("/api/backups/held.zip", headers=su_headers)
        assert (r.status_code, r.json()["message"]) == (
            400, "The backup is currently being used and cannot be deleted.")
        assert (await client.get("/api/backups", headers=su_headers)).status_code == 200
    r = await client.get("/api/health", headers=su_headers)
    assert r.json()["data"]["canBackup"] is True
    assert (await client.delete("/api/backups/held.zip", headers=su_headers)).status_code == 204


async def test_concurrent_backups(app: App, client: httpx.AsyncClient, su_headers: dict[str, str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    entered, release = threading.Event(), threading.Event()
    real = snapshot_storage

    def slow_snapshot(root: Path, dest: Path) -> int:
        entered.set()
        assert release.wait(WAIT)
        return real(root, dest)

    monkeypatch.setattr(backups_module, "snapshot_storage", slow_snapshot)
    first = asyncio.create_task(client.post("/api/backups", json={"name": "first.zip"}, headers=su_headers))
    try:
        assert await asyncio.get_running_loop().run_in_executor(None, entered.wait, WAIT)
        r = await client.post("/api/backups", json={"name": "second.zip"}, headers=su_headers)
        assert (r.status_code, r.json()["message"]) == (400, BUSY)
        r = await client.get("/api/health", headers=su_headers)
        assert r.json()["data"]["canBackup"] is False
    finally:
        release.set()
        r = await asyncio.wait_for(first, WAIT)
    assert r.status_code == 204, r.text
    assert keys(await client.get("/api/backups", headers=su_headers)) == ["first.zip"]


# --- keys ---

async def test_keys_cannot_leave_the_backups_folder(app: App, client: httpx.AsyncClient,
                                                    su_headers: dict[str, str]) -> None:
    await create_backup(client, su_headers, "real.zip")
    data_dir = Path(app.config.dir)
    secret = data_dir / "backups" / ".secret"
    secret.write_bytes(b"hidden")
    token = await file_token(client, su_headers)
    for key in ("..", ".secret", "%2E%2E", "..%2Fdata.db", "..%2F..%2Fkb_data%2Fdata.db", "%2Fetc%2Fpasswd",
                "..%5Cdata.db", "real.zip%00"):
        r = await client.get(f"/api/backups/{key}", params={"token": token})
        assert r.status_code == 404, key
        r = await client.delete(f"/api/backups/{key}", headers=su_headers)
        assert r.status_code in (400, 404), key
        r = await client.post(f"/api/backups/{key}/restore", headers=su_headers)
        assert r.status_code in (400, 404), key
    assert secret.read_bytes() == b"hidden"
    if app.db.is_sqlite:
        assert (data_dir / "data.db").exists()
    assert keys(await client.get("/api/backups", headers=su_headers)) == ["real.zip"]


# --- the auto-backup job ---

async def test_auto_backup_job(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    assert JOB_ID not in {j.id for j in app.scheduler.jobs()}
    r = await client.patch("/api/settings", json={"backups": {"cron": "bad cron", "cronMaxKeep": 0}}, headers=su_headers)
    assert r.status_code == 400
    assert {k: v["code"] for k, v in r.json()["data"]["backups"].items()} == {
        "cron": "validation_invalid_cron", "cronMaxKeep": "validation_required"}
    r = await client.patch("/api/settings", json={"backups": {"cron": "0 3 * * *", "cronMaxKeep": 2}}, headers=su_headers)
    assert r.status_code == 200, r.text
    assert [(j.id, j.expression) for j in app.scheduler.jobs() if j.id == JOB_ID] == [(JOB_ID, "0 3 * * *")]

    await create_backup(client, su_headers, "manual.zip")
    backups_dir = Path(app.config.dir) / "backups"
    archive = (backups_dir / "manual.zip").read_bytes()
    for i in range(3):  # three older auto backups, oldest first
        path = backups_dir / f"{AUTO_PREFIX}acme_2020010100000{i}.zip"
        path.write_bytes(archive)
        os.utime(path, (1_600_000_000 + i, 1_600_000_000 + i))
    app.backups.auto_backup()
    listed = keys(await client.get("/api/backups", headers=su_headers))
    autos = [k for k in listed if k.startswith(AUTO_PREFIX)]
    assert len(autos) == 2 and f"{AUTO_PREFIX}acme_20200101000002.zip" in autos  # the newest old one + the new one
    assert "manual.zip" in listed
    fresh = next(k for k in autos if "2020" not in k)
    assert re.fullmatch(AUTO_PREFIX + r"acme_\d{14}\.zip", fresh)

    r = await client.patch("/api/settings", json={"backups": {"cron": ""}}, headers=su_headers)
    assert r.status_code == 200
    assert JOB_ID not in {j.id for j in app.scheduler.jobs()}


# --- the backups S3 bucket (a real S3-compatible server, moto) ---

async def test_backups_on_s3(app: App, client: httpx.AsyncClient, su_headers: dict[str, str],
                             request: pytest.FixtureRequest) -> None:
    endpoint = str(request.getfixturevalue("s3_endpoint"))
    r = await client.patch("/api/settings", json={"backups": {"s3": s3_settings(endpoint, new_bucket(endpoint))}},
                           headers=su_headers)
    assert r.status_code == 200, r.text
    ids = await _populate(client, su_headers)
    before = await _world(client, su_headers)
    await create_backup(client, su_headers, "on_s3.zip")
    assert not (Path(app.config.dir) / "backups" / "on_s3.zip").exists()
    assert keys(await client.get("/api/backups", headers=su_headers)) == ["on_s3.zip"]
    archive = await download(client, su_headers, "on_s3.zip")
    assert zipfile.ZipFile(io.BytesIO(archive)).testzip() is None
    assert (await client.delete(f"/api/collections/notes/records/{ids['first']}", headers=su_headers)).status_code == 204
    r = await client.post("/api/backups/on_s3.zip/restore", headers=su_headers)
    assert r.status_code == 204, r.text
    after = await _world(client, su_headers)
    assert (after["records"], after["files"]) == (before["records"], before["files"])
    assert (await client.delete("/api/backups/on_s3.zip", headers=su_headers)).status_code == 204
    assert keys(await client.get("/api/backups", headers=su_headers)) == []

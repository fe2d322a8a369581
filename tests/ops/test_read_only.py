"""The data folder turns read-only (real mounts, a real ``keepbase serve``), and file uploads to a
full or read-only storage folder on PostgreSQL.

While running: reads, file downloads and password sign-in keep working (the audit and request
log rows are best effort), writes get the 503 envelope, the health endpoint still answers. At
start: ``create_app`` raises ``StartupError`` naming the folder. On PostgreSQL (the database
elsewhere, uploads in the data folder) an upload the folder cannot take gets the envelope and
leaves no record pointing at a missing file.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keepbase.app import create_app
from keepbase.core.config import Config
from keepbase.core.errors import StartupError
from tests.server_process import ServerProcess, run_cli, stop_all

from .helpers import (
    SU_EMAIL,
    SU_PASSWORD,
    assert_envelope,
    integrity,
    make_notes,
    sign_in,
    start,
    stray_files,
    superuser_headers,
)
from .mounts import ext4_image, fill, need_root, tmpfs, turn_read_only

AUDIT_DOWN = "audit rows (_audit) cannot be written"


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    running: list[ServerProcess] = []
    try:
        yield running
    finally:
        stop_all(running)


def test_sqlite_data_folder_turns_read_only_while_running(tmp_path: Path, servers: list[ServerProcess]) -> None:
    with ext4_image(tmp_path / "data", tmp_path / "disk.img") as data:
        srv = start(tmp_path, data)
        servers.append(srv)
        client = httpx.Client(base_url=srv.url, timeout=60)
        headers = superuser_headers(client)
        make_notes(client, headers)
        kept = client.post("/api/collections/notes/records", data={"title": "kept"},
                           files={"doc": ("kept.txt", b"kept file")})
        assert kept.status_code == 200, kept.text
        rid, doc = kept.json()["id"], kept.json()["doc"]

        turn_read_only(data)

        for _ in range(3):
            r = sign_in(client)
            assert r.status_code == 200, r.text
            assert r.json()["record"]["email"] == SU_EMAIL
        listed = client.get("/api/collections/notes/records")
        assert listed.status_code == 200 and listed.json()["totalItems"] == 1, listed.text
        assert client.get(f"/api/collections/notes/records/{rid}").json()["title"] == "kept"
        got = client.get(f"/api/files/notes/{rid}/{doc}")
        assert got.status_code == 200 and got.content == b"kept file"
        assert client.get("/api/collections", headers=headers).status_code == 200

        assert_envelope(client.post("/api/collections/notes/records", json={"title": "refused"}), 503)
        assert_envelope(client.patch(f"/api/collections/notes/records/{rid}", json={"title": "changed"}), 503)
        assert_envelope(client.delete(f"/api/collections/notes/records/{rid}", headers=headers), 503)
        assert_envelope(client.post("/api/collections/notes/records", data={"title": "upload"},
                                    files={"doc": ("new.txt", b"new")}), 503)
        health = client.get("/api/health")
        assert health.status_code in (200, 503) and "message" in health.json()  # whatever it says, it answers

        # nothing changed: the refused writes left no trace
        listed = client.get("/api/collections/notes/records")
        assert [(i["id"], i["title"]) for i in listed.json()["items"]] == [(rid, "kept")]
        client.close()
        out = srv.output()  # before the shutdown (which cannot tidy up a read-only folder)
        assert "Traceback" not in out, out
        assert out.count(AUDIT_DOWN) == 1, out
        srv.stop()
        assert integrity(data / "data.db") == "ok"
        assert stray_files(data / "storage") == [f"{kept.json()['collectionId']}/{rid}/{doc}"]


def test_create_app_on_a_read_only_data_folder(tmp_path: Path) -> None:
    need_root()
    source, view = tmp_path / "src", tmp_path / "ro"
    source.mkdir()
    view.mkdir()
    code, out = run_cli("superuser", "upsert", SU_EMAIL, SU_PASSWORD, "--dir", str(source))
    assert code == 0, out
    if subprocess.run(["mount", "--bind", str(source), str(view)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True, capture_output=True)
        for folder in (view, view / "missing"):  # an existing data folder, and one to create
            with pytest.raises(StartupError) as caught:
                create_app(Config(dir=str(folder)))
            message = str(caught.value)
            assert str(folder) in message and "read-only" in message and "\n" not in message, message
            assert caught.value.path == str(folder)
    finally:
        if subprocess.run(["umount", str(view)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(view)], capture_output=True)


@pytest.fixture
def pg_url(pg_base_url: str) -> Iterator[str]:
    from tests.pg_server import create_database, drop_database

    url = create_database(pg_base_url)
    try:
        yield url
    finally:
        drop_database(url)


@pytest.mark.parametrize("failure", ["full", "read-only"])
def test_postgres_upload_to_unwritable_storage(tmp_path: Path, servers: list[ServerProcess], pg_url: str,
                                               failure: str) -> None:
    """The database is fine, the data folder (uploads) is not: the upload fails whole."""
    mount = tmpfs(tmp_path / "data", "2m") if failure == "full" else ext4_image(tmp_path / "data", tmp_path / "d.img")
    with mount as data:
        srv = start(tmp_path, data, "--db", pg_url)
        servers.append(srv)
        client = httpx.Client(base_url=srv.url, timeout=60)
        headers = superuser_headers(client)
        make_notes(client, headers)
        first = client.post("/api/collections/notes/records", data={"title": "first"},
                            files={"doc": ("first.txt", b"first")})
        assert first.status_code == 200, first.text

        if failure == "full":
            fill(data)
            status = 507
        else:
            turn_read_only(data)
            status = 503
        assert_envelope(client.post("/api/collections/notes/records", data={"title": "refused"},
                                    files={"doc": ("big.bin", b"\2" * 200_000)}), status)
        assert_envelope(client.patch(f"/api/collections/notes/records/{first.json()['id']}",
                                     data={"title": "replaced"}, files={"doc": ("big.bin", b"\3" * 200_000)}), status)
        # the database is not on that disk: writes without files go on, reads and sign-in too
        plain = client.post("/api/collections/notes/records", json={"title": "no file"})
        assert plain.status_code == 200, plain.text
        assert sign_in(client).status_code == 200
        items = client.get("/api/collections/notes/records", params={"sort": "title"}).json()["items"]
        assert [(i["title"], bool(i["doc"])) for i in items] == [("first", True), ("no file", False)]
        got = client.get(f"/api/files/notes/{first.json()['id']}/{first.json()['doc']}")
        assert got.status_code == 200 and got.content == b"first"
        client.close()
        out = srv.output()
        assert "Traceback" not in out, out
        srv.stop()
        stored = stray_files(data / "storage")
        assert stored == [f"{first.json()['collectionId']}/{first.json()['id']}/{first.json()['doc']}"], stored

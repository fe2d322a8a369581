"""The data folder's disk fills up while the server runs (a real ``keepbase serve`` on a real tmpfs).

Every request still gets an answer: writes the 507 envelope (not a reset, not a traceback),
reads 200, password sign-in 200 (its audit row is best effort). Freeing the space makes writes
work again without a restart, every acknowledged write is still there, nothing that was refused
was stored, and both SQLite files pass ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from keepbase.app import create_app
from keepbase.core.config import Config
from keepbase.core.errors import StartupError
from keepbase.store.records import ListParams
from tests.server_process import ServerProcess, stop_all

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
from .mounts import fill, free_bytes, tmpfs

AUDIT_DOWN = "audit rows (_audit) cannot be written"
AUDIT_UP = "audit rows (_audit) are written again"
LOGS_DOWN = "request logs (_logs) cannot be written"
LOGS_UP = "request logs (_logs) are written again"


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    running: list[ServerProcess] = []
    try:
        yield running
    finally:
        stop_all(running)


def _create_many(url: str, worker: int, count: int) -> list[tuple[int, str, dict[str, object]]]:
    """``count`` creates on one keep-alive connection: a reset would raise here."""
    out = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(count):
            r = client.post("/api/collections/notes/records", json={"title": f"w{worker}-{i}-" + "x" * 3000})
            out.append((r.status_code, r.json().get("id", "") if r.status_code == 200 else "", r.json()))
    return out


def _row_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM notes")}
    finally:
        conn.close()


def test_sqlite_disk_full_while_running(tmp_path: Path, servers: list[ServerProcess]) -> None:
    with tmpfs(tmp_path / "data", "6m") as data:
        srv = start(tmp_path, data)
        servers.append(srv)
        client = httpx.Client(base_url=srv.url, timeout=60)
        headers = superuser_headers(client)
        make_notes(client, headers)
        before = [client.post("/api/collections/notes/records", json={"title": f"before {i}"}).json()["id"]
                  for i in range(3)]
        up = client.post("/api/collections/notes/records", data={"title": "with file"},
                         files={"doc": ("hello.txt", b"hello " * 100)})
        assert up.status_code == 200, up.text
        before.append(up.json()["id"])

        # the disk fills up while concurrent creates run, each client on one keep-alive connection
        fill(data, leave=96 * 1024)
        with ThreadPoolExecutor(6) as pool:
            results = [x for part in pool.map(lambda w: _create_many(srv.url, w, 30), range(6)) for x in part]
        statuses = {status for status, _, _ in results}
        assert statuses <= {200, 507}, statuses
        assert 507 in statuses, "the disk never filled up"
        for status, _, body in results:
            if status == 507:
                assert body["message"].startswith("The server is out of storage space"), body
        acked = [rid for status, rid, _ in results if status == 200]

        # now completely full: writes refused with the envelope, reads and sign-in fine
        fill_more(data)
        assert free_bytes(data) < 64 * 1024
        # small writes may still fit in the WAL's pages already on disk: write until one needs more
        for i in range(500):
            r = client.post("/api/collections/notes/records", json={"title": f"big {i} " + "y" * 15000})
            if r.status_code != 200:
                break
            acked.append(r.json()["id"])
        assert_envelope(r, 507)
        assert_envelope(client.post("/api/collections/notes/records", data={"title": "refused upload"},
                                    files={"doc": ("big.bin", b"\1" * 300_000)}), 507)
        listed = client.get("/api/collections/notes/records", params={"perPage": 500})
        assert listed.status_code == 200, listed.text
        assert listed.json()["totalItems"] == len(before) + len(acked)
        assert client.get(f"/api/collections/notes/records/{before[1]}").status_code == 200
        file_name = up.json()["doc"]
        got = client.get(f"/api/files/notes/{before[3]}/{file_name}")
        assert got.status_code == 200 and got.content == b"hello " * 100
        for _ in range(3):
            r = sign_in(client)
            assert r.status_code == 200, r.text
            assert r.json()["token"]
        health = client.get("/api/health")
        assert health.status_code in (200, 503) and "message" in health.json()  # whatever it reports, it answers

        # space freed: writes work again, no restart
        for filler in data.glob("filler*"):
            filler.unlink()
        after = client.post("/api/collections/notes/records", json={"title": "after"})
        assert after.status_code == 200, after.text
        up2 = client.post("/api/collections/notes/records", data={"title": "file after"},
                          files={"doc": ("again.txt", b"again")})
        assert up2.status_code == 200, up2.text
        assert client.get(f"/api/files/notes/{up2.json()['id']}/{up2.json()['doc']}").content == b"again"
        assert sign_in(client).status_code == 200  # the audit row is written again
        for rid in acked:
            assert client.get(f"/api/collections/notes/records/{rid}").status_code == 200, rid
        client.close()
        assert srv.stop() == 0, srv.output()

        # nothing acknowledged lost, nothing refused stored, no corruption, no stray files
        assert _row_ids(data / "data.db") == {*before, *acked, after.json()["id"], up2.json()["id"]}
        assert integrity(data / "data.db") == "ok"
        assert integrity(data / "auxiliary.db") == "ok"
        stored = stray_files(data / "storage")
        assert all(".tmp_" not in name for name in stored), stored
        assert len(stored) == 2, stored  # hello.txt and again.txt

        out = srv.output()
        assert "Traceback" not in out, out
        assert out.count(AUDIT_DOWN) == 1, out
        assert out.count(AUDIT_UP) == 1, out
        assert out.count(LOGS_DOWN) <= 1 and out.count(LOGS_UP) == out.count(LOGS_DOWN), out


def fill_more(data: Path) -> None:
    """Take the space that is left too (the first filler gave some back)."""
    from .mounts import FILLER

    extra = data / FILLER
    extra.rename(data / ("first-" + FILLER))
    fill(data)
    (data / ("first-" + FILLER)).rename(data / (FILLER + ".1"))


def test_side_writers_report_degraded_state(tmp_path: Path) -> None:
    """In process: ``app.audit.degraded`` / ``app.logs.degraded`` while the disk is full, and back."""
    with tmpfs(tmp_path / "data", "4m") as data:
        app = create_app(Config(dir=str(data)))
        try:
            app.upsert_superuser(SU_EMAIL, SU_PASSWORD)
            c = app.collections.get("_superusers")
            assert not app.audit.degraded and not app.logs.degraded
            filler = fill(data)
            record = app.authenticate_with_password(c, SU_EMAIL, SU_PASSWORD)  # no exception
            assert record["email"] == SU_EMAIL
            assert app.audit.degraded
            assert app.audit.health.status()["reason"].startswith("OperationalError: database or disk is full")
            app.logs.writer.add_entry(0, "while full")  # the writer thread tries to store it, and fails
            assert _eventually(lambda: app.logs.degraded)
            assert app.logs.health.status()["reason"].startswith("OperationalError: database or disk is full")
            assert app.logs.writer.pending == 1  # kept for the next flush, not lost

            filler.unlink()
            app.authenticate_with_password(c, SU_EMAIL, SU_PASSWORD)
            assert not app.audit.degraded
            assert app.audit.health.status() == {"degraded": False, "since": None, "reason": "", "lost": 0}
            assert _eventually(lambda: not app.logs.degraded)
            assert app.logs.writer.pending == 0
            assert [e["message"] for e in app.logs.find_logs(ListParams())["items"]] == ["while full"]
            rows = app.audit.find_entries(1, 10, {"action": "auth_with_password"})
            assert rows["totalItems"] == 1  # the sign-in while full left no row; the one after did
        finally:
            app.close()


def test_sign_in_with_an_old_hash_on_a_full_disk(tmp_path: Path) -> None:
    """The bcrypt → Argon2id rehash is opportunistic: skipped while the disk is full, done after."""
    import bcrypt
    from sqlalchemy import select, update

    with tmpfs(tmp_path / "data", "4m") as data:
        app = create_app(Config(dir=str(data)))
        try:
            app.upsert_superuser(SU_EMAIL, SU_PASSWORD)
            c = app.collections.get("_superusers")
            table = app.collections.records_table(c)
            old = bcrypt.hashpw(SU_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
            with app.db.write() as conn:
                conn.execute(update(table).where(table.c.email == SU_EMAIL).values(password=old))

            def stored() -> str:
                with app.db.read() as conn:
                    return str(conn.execute(select(table.c.password).where(table.c.email == SU_EMAIL)).scalar_one())

            filler = fill(data)
            assert app.authenticate_with_password(c, SU_EMAIL, SU_PASSWORD)["email"] == SU_EMAIL
            assert stored() == old
            filler.unlink()
            app.authenticate_with_password(c, SU_EMAIL, SU_PASSWORD)
            assert stored().startswith("$argon2id$")
        finally:
            app.close()


def _eventually(check: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_create_app_on_a_full_empty_folder(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "data", "1m") as data:
        fill(data)
        with pytest.raises(StartupError) as caught:
            create_app(Config(dir=str(data / "kb")))
        message = str(caught.value)
        assert str(data / "kb") in message and "full" in message, message
        assert "\n" not in message

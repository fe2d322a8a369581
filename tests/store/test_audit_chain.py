"""The ``_audit`` trail is hash-chained: real sign-in rows verify with ``keepbase audit verify``;
a row edited or deleted behind keepbase's back is reported, exactly; concurrent writers (threads,
and on PostgreSQL the advisory lock) never fork the chain; a table from before chaining is sealed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from click.testing import CliRunner
from sqlalchemy import delete, select, update

from keepbase.app import App
from keepbase.cli import main
from keepbase.store.audit import AuditEntry, AuditLog, verify_chain
from tests.conftest import SU_EMAIL, SU_PASSWORD


def _verify(app: App) -> tuple[int, str]:
    args = ["audit", "verify", "--dir", app.config.dir] + (["--db", app.config.db] if app.config.db else [])
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


async def _sign_ins(client: httpx.AsyncClient, n: int) -> None:
    for i in range(n):
        password = SU_PASSWORD if i % 2 == 0 else "wrong-password"
        r = await client.post("/api/collections/_superusers/auth-with-password",
                              json={"identity": SU_EMAIL, "password": password})
        assert r.status_code == (200 if i % 2 == 0 else 400)


def _rows(app: App) -> list[tuple[int, str, str]]:
    t = app.audit.table
    with app.db.read() as conn:
        return [(r.seq, r.id, r.created) for r in conn.execute(select(t).order_by(t.c.seq)).all()]


async def test_real_sign_ins_form_an_intact_chain(app: App, client: httpx.AsyncClient) -> None:
    await _sign_ins(client, 2)
    _entries(app, 2)
    assert len(_rows(app)) == 4
    code, out = _verify(app)
    assert code == 0, out
    assert out.splitlines()[0] == "4 entries, chain intact"
    t = app.audit.table
    with app.db.read() as conn:
        links = conn.execute(select(t.c.prevHash, t.c.hash).order_by(t.c.seq)).all()
    assert links[0].prevHash == "" and all(len(h) == 64 for _, h in links)
    assert [p for p, _ in links[1:]] == [h for _, h in links[:-1]]
    assert out.splitlines()[1] == f"head: {links[-1].hash}"


def _entries(app: App, n: int) -> None:
    for i in range(n):
        app.audit.write(AuditEntry("request_password_reset", "c", f"r{i}", ip="127.0.0.1", data={"i": i}))


def test_an_edited_row_is_reported_exactly(app: App) -> None:
    _entries(app, 5)
    seq, row_id, created = _rows(app)[2]
    with app.db.write() as conn:  # tampering behind keepbase's back, in SQL
        conn.execute(update(app.audit.table).where(app.audit.table.c.seq == seq).values(ip="203.0.113.9"))
    code, out = _verify(app)
    assert code == 1
    assert f"row {row_id} (seq {seq}, {created})" in out and "changed" in out
    report = verify_chain(app.db)
    assert report.broken is not None and report.broken.id == row_id and report.entries == 3


def test_a_deleted_row_is_detected(app: App) -> None:
    _entries(app, 5)
    rows = _rows(app)
    with app.db.write() as conn:
        conn.execute(delete(app.audit.table).where(app.audit.table.c.seq == rows[1][0]))
    code, out = _verify(app)
    assert code == 1
    assert f"row {rows[2][1]} (seq {rows[2][0]}," in out and "removed" in out
    with app.db.write() as conn:  # the first row gone: the new first one does not start a chain
        conn.execute(delete(app.audit.table).where(app.audit.table.c.seq == rows[0][0]))
    report = verify_chain(app.db)
    assert report.broken is not None and report.broken.id == rows[2][1] and report.entries == 1


def test_concurrent_writers_do_not_fork_the_chain(app: App) -> None:
    def write(i: int) -> None:
        for j in range(8):
            app.audit.write(AuditEntry("request_verification", "c", f"r{i}-{j}", ip="127.0.0.1"))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))
    report = verify_chain(app.db)
    assert report.broken is None and report.entries == 32


def test_a_table_from_before_chaining_is_sealed(app: App) -> None:
    for i in range(3):
        app.audit.write(AuditEntry("impersonate", "c", f"r{i}"))
    with app.db.write() as conn:  # as an older keepbase left it: no hash columns
        for name in ("prevHash", "hash"):
            conn.exec_driver_sql(f'ALTER TABLE _audit DROP COLUMN "{name}"')
    AuditLog(app.db).bootstrap()
    report = verify_chain(app.db)
    assert report.broken is None and report.entries == 3 and len(report.head) == 64

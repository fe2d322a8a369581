"""Group commit on SQLite: jobs share one transaction, each in a savepoint."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from keepbase.app import create_app
from keepbase.core.config import Config
from keepbase.core.errors import ValidationError
from keepbase.core.types import AuthInfo, RequestInfo
from keepbase.store.db import after_commit


@pytest.fixture
def kb(tmp_path: Path):  # type: ignore[no-untyped-def]
    app = create_app(Config(dir=str(tmp_path)))
    yield app
    app.close()


def test_failing_job_does_not_fail_its_neighbours(kb) -> None:  # type: ignore[no-untyped-def]
    su_c = kb.collections.get("_superusers")
    su = RequestInfo(auth=AuthInfo(su_c.id, su_c.name, {"id": ""}))
    c = kb.collections.create({"name": "items", "fields": [{"name": "title", "type": "text", "required": True}]})
    assert kb.group_writer is not None
    # Hold the writer lock so that every job below is queued and runs in one group.
    gate = threading.Event()
    blocker = kb.group_writer.submit(lambda: gate.wait(5))
    futures = [kb.group_writer.submit(lambda i=i: kb.records.create_record(c, {"title": f"t{i}"}, su))
               for i in range(5)]
    bad = kb.group_writer.submit(lambda: kb.records.create_record(c, {"title": ""}, su))
    futures += [kb.group_writer.submit(lambda i=i: kb.records.create_record(c, {"title": f"u{i}"}, su))
                for i in range(5)]
    gate.set()
    blocker.result(10)
    titles = {f.result(10)["title"] for f in futures}
    assert len(titles) == 10
    with pytest.raises(ValidationError):
        bad.result(10)
    table = kb.collections.records_table(c)
    with kb.db.read() as conn:
        stored = {r[0] for r in conn.execute(select(table.c.title)).all()}
    assert stored == titles


def test_job_that_raises_after_writing_is_rolled_back_alone(kb) -> None:  # type: ignore[no-untyped-def]
    c = kb.collections.create({"name": "items", "fields": [{"name": "title", "type": "text"}]})
    table = kb.collections.records_table(c)
    hooks: list[str] = []

    def good(tag: str) -> str:
        with kb.db.write() as conn:
            conn.execute(insert(table).values(id=f"good{tag}".ljust(15, "0"), title=tag))
            after_commit(conn, lambda: hooks.append(tag))
        return tag

    def half_done() -> None:
        with kb.db.write() as conn:
            conn.execute(insert(table).values(id="bad000000000000", title="bad"))
            after_commit(conn, lambda: hooks.append("bad"))
            raise RuntimeError("boom")

    gate = threading.Event()
    blocker = kb.group_writer.submit(lambda: gate.wait(5))
    f1 = kb.group_writer.submit(lambda: good("a"))
    f2 = kb.group_writer.submit(half_done)
    f3 = kb.group_writer.submit(lambda: good("b"))
    gate.set()
    blocker.result(10)
    assert f1.result(10) == "a" and f3.result(10) == "b"
    with pytest.raises(RuntimeError):
        f2.result(10)
    with kb.db.read() as conn:
        titles = sorted(r[0] for r in conn.execute(select(table.c.title)).all())
    assert titles == ["a", "b"]
    assert hooks == ["a", "b"]  # after-commit hooks ran for the committed jobs only

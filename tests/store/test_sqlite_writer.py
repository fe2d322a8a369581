"""SQLite pragmas, read from the real connections the app opens (store/dialects/sqlite.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from keepbase.app import App, create_app
from keepbase.core.config import Config


def _pragma(engine: Engine, name: str) -> Any:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"PRAGMA {name}")
        value = cur.fetchone()[0]
        cur.close()
        return value
    finally:
        raw.close()


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[App]:
    app = create_app(Config(dir=str(tmp_path / "kb"), sqlite_readers=2))
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def normal_app(tmp_path: Path) -> Iterator[App]:
    app = create_app(Config(dir=str(tmp_path / "kb"), sqlite_sync="normal", sqlite_readers=2))
    try:
        yield app
    finally:
        app.close()


def test_engines_are_sqlite_and_distinct(sqlite_app: App) -> None:
    assert sqlite_app.db.is_sqlite
    assert sqlite_app.db.writer is not sqlite_app.db.reader
    assert (Path(sqlite_app.config.dir) / "data.db").exists()


@pytest.mark.parametrize("role", ["writer", "reader"])
def test_common_pragmas(sqlite_app: App, role: str) -> None:
    engine = getattr(sqlite_app.db, role)
    assert _pragma(engine, "journal_mode") == "wal"
    assert _pragma(engine, "synchronous") == 2  # FULL
    assert _pragma(engine, "foreign_keys") == 1
    assert _pragma(engine, "mmap_size") == 0
    assert _pragma(engine, "busy_timeout") > 0


def test_synchronous_normal_when_configured(normal_app: App) -> None:
    assert _pragma(normal_app.db.writer, "synchronous") == 1  # NORMAL
    assert _pragma(normal_app.db.reader, "synchronous") == 1
    assert _pragma(normal_app.db.writer, "journal_mode") == "wal"


def test_readers_are_query_only_and_never_checkpoint(sqlite_app: App) -> None:
    assert _pragma(sqlite_app.db.reader, "query_only") == 1
    assert _pragma(sqlite_app.db.reader, "wal_autocheckpoint") == 0


def test_writer_writes_and_checkpoints(sqlite_app: App) -> None:
    assert _pragma(sqlite_app.db.writer, "query_only") == 0
    assert _pragma(sqlite_app.db.writer, "wal_autocheckpoint") > 0


def test_every_pooled_reader_has_the_pragmas(sqlite_app: App) -> None:
    """Check several reader connections held at once, not just the first one in the pool."""
    raws = [sqlite_app.db.reader.raw_connection() for _ in range(3)]
    try:
        for raw in raws:
            cur = raw.cursor()
            for name, expected in (("query_only", 1), ("wal_autocheckpoint", 0), ("mmap_size", 0),
                                   ("foreign_keys", 1), ("synchronous", 2)):
                cur.execute(f"PRAGMA {name}")
                assert cur.fetchone()[0] == expected, name
            cur.close()
    finally:
        for raw in raws:
            raw.close()


def test_reader_refuses_writes(sqlite_app: App) -> None:
    raw = sqlite_app.db.reader.raw_connection()
    try:
        cur = raw.cursor()
        with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
            cur.execute("CREATE TABLE nope (x)")
    finally:
        raw.close()


def test_writes_are_visible_to_readers(sqlite_app: App) -> None:
    from keepbase.core.types import AuthInfo, RequestInfo

    c = sqlite_app.collections.create({"name": "t", "fields": [{"name": "title", "type": "text"}]})
    su = RequestInfo(auth=AuthInfo("pbc_3142635823", "_superusers", {"id": ""}))
    rec = sqlite_app.records.create_record(c, {"title": "x"}, su)
    with sqlite_app.db.read() as conn:
        assert conn.exec_driver_sql("SELECT title FROM t WHERE id = ?", (rec["id"],)).scalar() == "x"


def test_failed_write_rolls_back(sqlite_app: App) -> None:
    with pytest.raises(RuntimeError), sqlite_app.db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE half (x)")
        raise RuntimeError("boom")
    with sqlite_app.db.read() as conn:
        assert conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE name = 'half'").scalar() == 0


def test_data_survives_reopen(tmp_path: Path) -> None:
    cfg = Config(dir=str(tmp_path / "kb"), sqlite_readers=2)
    app = create_app(cfg)
    app.collections.create({"name": "kept", "fields": [{"name": "title", "type": "text"}]})
    app.upsert_superuser("x@example.com", "password123")
    app.close()
    again = create_app(cfg)
    try:
        assert again.collections.find("kept") is not None
        assert _pragma(again.db.writer, "journal_mode") == "wal"
    finally:
        again.close()

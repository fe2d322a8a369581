"""The throwaway PostgreSQL helper actually works."""

from __future__ import annotations

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.pg_server import create_database, drop_database, ensure_postgres


def _db_exists(base_url: str, name: str) -> bool:
    engine = sa.create_engine(base_url)
    try:
        with engine.connect() as conn:
            return bool(
                conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            )
    finally:
        engine.dispose()


def test_ensure_postgres_is_cached_and_usable():
    url = ensure_postgres()
    assert ensure_postgres() == url
    assert make_url(url).drivername == "postgresql+psycopg"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_create_connect_drop():
    base = ensure_postgres()
    url = create_database(base)
    name = make_url(url).database
    assert name and name != make_url(base).database
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == name
            assert conn.execute(sa.text("SHOW server_encoding")).scalar() == "UTF8"
            conn.execute(sa.text("CREATE TABLE t (x int)"))
        # an open connection must not block the drop
        held = engine.connect()
        held.execute(sa.text("SELECT 1"))
        assert _db_exists(base, name)
        drop_database(url)
        held.invalidate()
        held.close()
    finally:
        engine.dispose()
    assert not _db_exists(base, name)
    drop_database(url)  # idempotent


def test_database_names_are_identifiers_not_sql():
    base = ensure_postgres()
    name = 'weird "name"; DROP DATABASE postgres; --'
    url = create_database(base, name)
    try:
        assert make_url(url).database == name
        with psycopg.connect(
            host=make_url(url).host, port=make_url(url).port, user=make_url(url).username, dbname=name
        ) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
    finally:
        drop_database(url)
    assert not _db_exists(base, name)
    assert _db_exists(base, "postgres")

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from tests.rules.dataset import Dataset, build


def _pg_url() -> str | None:
    try:
        from tests.pg_server import create_database, ensure_postgres

        return create_database(ensure_postgres())
    except Exception:  # no server can be started: PostgreSQL tests are skipped
        return None


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str | None]:
    url = _pg_url()
    yield url
    if url is not None:
        from tests.pg_server import drop_database

        drop_database(url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine_ds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pg_url: str | None
) -> Iterator[tuple[Engine, Dataset]]:
    dialect: str = request.param
    if dialect == "sqlite":
        path: Path = tmp_path_factory.mktemp("rules") / "data.db"
        engine = create_engine(f"sqlite:///{path}")
    else:
        if pg_url is None:
            pytest.skip("no PostgreSQL server available")
        engine = create_engine(pg_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    ds = build(engine, dialect)
    yield engine, ds
    engine.dispose()

"""Property test: random records and filters give the same rows on SQLite and PostgreSQL.

SQLite is what PocketBase runs on, so it is the reference; PostgreSQL must reproduce it
(affinity, mixed-type comparisons, NULL handling, LIKE, multi-valued operands).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, delete, insert, select

from keepbase.core.types import AuthInfo, RequestInfo
from keepbase.store.resolver import build_filter
from tests.rules.dataset import U1, U2, U3, Dataset, build

SUPERUSER = RequestInfo(auth=AuthInfo("pbc_3142635823", "_superusers", {"id": "su0000000000001"}))

FIELDS = [
    "name",
    "n",
    "active",
    "tags",
    "tags:each",
    "tags:length",
    "name:lower",
    "cat",
    "owner",
    "owner.name",
    "users.name",
    "users.score",
    "users:each",
    "data.k",
    "data.num",
    "data",
    "d",
    "id",
    "owner.score",
    "loc.lon",
    "strftime('%Y', d)",
]
TEXTS = [
    "''",
    "'a'",
    "'2'",
    "'10'",
    "'Alpha'",
    "'a%'",
    "'%'",
    "'_'",
    "'User One'",
    "'v1'",
    "'2.0'",
    "' 2'",
    "'b'",
]
NUMBERS = ["0", "1", "2", "2.5", "-1", "10"]
KEYWORDS = ["null", "true", "false", "@now"]
OPS = ["=", "!=", ">", ">=", "<", "<=", "~", "!~", "?=", "?!=", "?>", "?<", "?~", "?!~"]

operand = st.one_of(st.sampled_from(FIELDS), st.sampled_from(TEXTS + NUMBERS + KEYWORDS))
comparison = st.builds(
    lambda a, op, b: f"{a} {op} {b}", st.sampled_from(FIELDS), st.sampled_from(OPS), operand
)
filters = st.recursive(
    comparison,
    lambda inner: st.builds(
        lambda a, j, b, paren: f"({a} {j} {b})" if paren else f"{a} {j} {b}",
        inner,
        st.sampled_from(["&&", "||"]),
        inner,
        st.booleans(),
    ),
    max_leaves=4,
)

NAMES = ["", "Alpha", "alpha", "2", "10", "a%b", "_x", "2.0", " 2", "beta"]
record = st.fixed_dictionaries(
    {
        "name": st.sampled_from(NAMES),
        "n": st.sampled_from([0, 1, 2, 2.5, -1, 10]),
        "active": st.integers(0, 1),
        "tags": st.lists(st.sampled_from(["a", "b", "2", "10"]), unique=True, max_size=3),
        "cat": st.sampled_from(["", "x", "2"]),
        "owner": st.sampled_from(["", U1, U2, U3]),
        "users": st.lists(st.sampled_from([U1, U2, U3]), unique=True, max_size=3),
        "data": st.sampled_from(
            [
                None,
                '{"k":"v1","num":5}',
                '{"k":2,"num":"5"}',
                '{"k":null}',
                '{"k":true,"num":2.5}',
                "[1,2]",
                '"2"',
            ]
        ),
        "d": st.sampled_from(["", "2024-01-01 00:00:00.000Z", "2025-06-01 12:00:00.000Z"]),
    }
)


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, pg_url: str | None) -> Iterator[dict[str, Any]]:
    if pg_url is None:
        pytest.skip("no PostgreSQL server available")
    lite = create_engine(f"sqlite:///{tmp_path_factory.mktemp('diff') / 'd.db'}")
    pg = create_engine(pg_url)
    with pg.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    out = {"sqlite": (lite, build(lite, "sqlite")), "postgresql": (pg, build(pg, "postgresql"))}
    yield out
    lite.dispose()
    pg.dispose()


def _load(engine: Engine, ds: Dataset, records: list[dict[str, Any]]) -> None:
    items = ds.tables["items"]
    rows = []
    for i, r in enumerate(records):
        rows.append(
            {
                **r,
                "id": f"rand{i:011d}",
                "tags": json.dumps(r["tags"]),
                "users": json.dumps(r["users"]),
                "loc": '{"lon":1.5,"lat":2}',
                "secret": "",
                "created": "",
            }
        )
    with engine.begin() as conn:
        conn.execute(delete(items))
        conn.execute(insert(items), rows)


def _run(engine: Engine, ds: Dataset, expression: str) -> list[str]:
    items = ds.tables["items"]
    where = build_filter(
        ds.collections["items"], items, expression, SUPERUSER, ds.lookup, ds.dialect, is_rule=False
    )
    with engine.connect() as conn:
        return list(conn.scalars(select(items.c.id).where(where).order_by(items.c.id)))


@settings(
    max_examples=int(os.environ.get("KEEPBASE_DIFF_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(st.lists(record, min_size=1, max_size=5), st.lists(filters, min_size=1, max_size=6))
def test_sqlite_and_postgresql_agree(
    engines: dict[str, Any], records: list[dict[str, Any]], exprs: list[str]
) -> None:
    for engine, ds in engines.values():
        _load(engine, ds, records)
    for expression in exprs:
        results = {name: _run(engine, ds, expression) for name, (engine, ds) in engines.items()}
        assert results["sqlite"] == results["postgresql"], expression

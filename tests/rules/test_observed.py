"""Every row of the "Observed results" table of 04-filters-and-rules.md, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from keepbase.core.types import AuthInfo, RequestInfo
from keepbase.rules import FilterError
from keepbase.store.resolver import build_filter, build_sort
from keepbase.store.schema import rowid_column
from tests.rules.dataset import I1, I2, I3, I4, U1, Dataset

ALL = [I1, I2, I3, I4]
SUPERUSER = RequestInfo(auth=AuthInfo("pbc_3142635823", "_superusers", {"id": "su0000000000001"}))

OBSERVED: list[tuple[str, list[str]]] = [
    ("name = 'Alpha'", [I1]),
    ("name = 'alpha'", []),
    ("name:lower = 'alpha'", [I1]),
    ("name = ''", [I4]),
    ("name = null", [I4]),
    ("name != ''", [I1, I2, I3]),
    ("n >= 1 && n < 3", [I1, I2]),
    ("(n = 1 || n = 3) && name = 'x'", []),
    ("n = 1 || n = 3 && name = 'x'", [I1]),
    ("n = '2'", [I2]),
    ("n = 0", [I4]),
    ("n = null", []),
    ("active = true", [I1]),
    ("active = false", [I2, I3, I4]),
    ("active = 1", [I1]),
    ("tags = 'a'", []),
    ("tags ~ 'a'", [I1, I2]),
    ("tags ?= 'a'", []),
    ("tags = '[\"a\"]'", [I1]),
    ("tags = ''", []),
    ("tags = '[]'", [I4]),
    ("tags:each = 'a'", [I1]),
    ("tags:each ?= 'a'", [I1, I2]),
    ("tags:each != 'a'", [I3, I4]),
    ("tags:each ?!= 'a'", [I2, I3, I4]),
    ("tags:length = 2", [I2, I3]),
    ("tags:length > 0", [I1, I2, I3]),
    ("cat = 'x'", [I1]),
    ("cat:each = 'x'", [I1]),
    ("cat = ''", [I3, I4]),
    (f"users ~ '{U1}'", [I1, I2]),
    (f"users ?= '{U1}'", []),
    (f"users.id ?= '{U1}'", [I1, I2]),
    (f"users.id = '{U1}'", [I1]),
    (f"users.id != '{U1}'", [I3, I4]),
    (f"users.id ?!= '{U1}'", [I2, I3, I4]),
    ("users.name ?~ 'two'", [I2, I3]),
    ("users.name ~ 'user'", [I1, I2, I3]),
    ("users:length >= 2", [I2, I3]),
    (f"owner = '{U1}'", [I1]),
    ("owner.name = 'User One'", [I1]),
    ("owner = ''", [I3, I4]),
    ("owner.name = null", [I3, I4]),
    ("owner.notes_via_owner.text ?= 'n1'", [I1]),
    ("users.notes_via_owner.text ?= 'n2'", [I2, I3]),
    ("data.k = 'v1'", [I1]),
    ("data.num > 6", [I2]),
    ("data.arr.0 = 3", [I2]),
    ("data.k = null", [I3, I4]),
    ("data = null", [I3]),
    ("data.missing = null", ALL),
    ("data ~ 'v2'", [I2]),
    ("data.arr:length = 2", []),
    ("loc.lat > 45", [I2]),
    ("geoDistance(loc.lon, loc.lat, 23.32, 42.69) < 10", [I1]),
    ("geoDistance(loc.lon, loc.lat, 2.35, 48.85) < 2000", [I1, I2]),
    ("d > '2024-06-01'", [I2]),
    ("d = ''", [I3, I4]),
    ("d < @now", ALL),
    ("strftime('%Y', d) = '2025'", [I2]),
    ("strftime('%Y', d) = 2025", []),
    ("created > @todayStart", ALL),
    (f"@year = {datetime.now(UTC).year}", ALL),
    ("1 = 1", ALL),
    ("'a' = 'a'", ALL),
    ("id = 'item00000000001' // comment", [I1]),
    ('id != "item00000000001"', [I2, I3, I4]),
    ("n = -1 || n = 1.0", [I1]),
    ("n > -1.5", ALL),
    ("name:isset = true", []),
    ("@request.body.x = null", ALL),
    ("@collection.users.id ?= owner", [I1, I2]),
    ("@collection.users.id = owner", []),
    ("@collection.users:u.id ?= owner && @collection.users:u.name ?= 'User Two'", [I2]),
    ("@collection.users:u.id ?= owner && @collection.users:v.name ?= 'User Two'", [I1, I2]),
    # LIKE cases
    ("name ~ 'AL'", [I1]),
    ("name ~ 'a%'", [I1]),
    ("name ~ '100%'", []),
    ("name ~ '100\\%'", [I3]),
    ("name !~ 'a'", [I4]),
]


def run(engine: Engine, ds: Dataset, expression: str, info: RequestInfo = SUPERUSER) -> list[str]:
    items = ds.tables["items"]
    where = build_filter(
        ds.collections["items"], items, expression, info, ds.lookup, ds.dialect, is_rule=False
    )
    with engine.connect() as conn:
        return list(conn.scalars(select(items.c.id).where(where).order_by(items.c.id)))


@pytest.mark.parametrize(("expression", "expected"), OBSERVED, ids=[e for e, _ in OBSERVED])
def test_observed(engine_ds: tuple[Engine, Dataset], expression: str, expected: list[str]) -> None:
    engine, ds = engine_ds
    assert run(engine, ds, expression) == expected


@pytest.mark.parametrize(
    "expression", ["unknownfield = 1", "owner.unknown = 1", "name :isset = true", "nofunc(n) = 1"]
)
def test_observed_errors(engine_ds: tuple[Engine, Dataset], expression: str) -> None:
    engine, ds = engine_ds
    with pytest.raises(FilterError):
        run(engine, ds, expression)


SORTS = [
    ("-n", [I3, I2, I1, I4]),
    ("owner.name,-n", [I3, I4, I1, I2]),
    ("-data.num", [I2, I1, I3, I4]),
    ("name:lower", [I4, I1, I2, I3]),
    ("tags:length,-id", [I4, I1, I3, I2]),
    ("@rowid", ALL),
    ("-@rowid", [I4, I3, I2, I1]),
]


@pytest.mark.parametrize(("sort", "expected"), SORTS, ids=[s for s, _ in SORTS])
def test_sort(engine_ds: tuple[Engine, Dataset], sort: str, expected: list[str]) -> None:
    engine, ds = engine_ds
    items = ds.tables["items"]
    order = build_sort(ds.collections["items"], items, sort, SUPERUSER, ds.lookup, ds.dialect)
    order.append(rowid_column(items, ds.dialect))
    with engine.connect() as conn:
        assert list(conn.scalars(select(items.c.id).order_by(*order))) == expected


def test_sort_errors(engine_ds: tuple[Engine, Dataset]) -> None:
    _, ds = engine_ds
    items = ds.tables["items"]
    for bad in ["nofield", "'a'", "1", "@now", "owner.nofield"]:
        with pytest.raises(FilterError):
            build_sort(ds.collections["items"], items, bad, SUPERUSER, ds.lookup, ds.dialect)

"""The fixed dataset of 04-filters-and-rules.md ("Observed results"), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, MetaData, Table, insert

from keepbase.rules.macros import format_datetime
from keepbase.store.models import Collection, Field
from keepbase.store.schema import table_for

U1, U2, U3 = "user00000000001", "user00000000002", "user00000000003"
I1, I2, I3, I4 = (f"item0000000000{i}" for i in range(1, 5))


def _id() -> Field:
    return Field("text3208210256", "id", "text", system=True, options={"primaryKey": True})


def users_collection() -> Collection:
    return Collection(
        "_pb_users_auth_",
        "users",
        "auth",
        fields=[
            _id(),
            Field("password901924565", "password", "password", system=True, hidden=True),
            Field("text2504183744", "tokenKey", "text", system=True, hidden=True),
            Field("email3885137012", "email", "email", system=True),
            Field("bool1547992806", "emailVisibility", "bool", system=True),
            Field("bool256245529", "verified", "bool", system=True),
            Field("text1579384326", "name", "text"),
            Field("number1", "score", "number"),
        ],
        rules={"listRule": "", "viewRule": ""},
    )


def items_collection() -> Collection:
    rel = {"collectionId": "_pb_users_auth_"}
    return Collection(
        "pbc_items",
        "items",
        fields=[
            _id(),
            Field("t1", "name", "text"),
            Field("n1", "n", "number"),
            Field("s1", "tags", "select", options={"maxSelect": 3, "values": ["a", "b", "c"]}),
            Field("s2", "cat", "select", options={"maxSelect": 1, "values": ["x", "y"]}),
            Field("r1", "users", "relation", options={**rel, "maxSelect": 5}),
            Field("r2", "owner", "relation", options={**rel, "maxSelect": 1}),
            Field("j1", "data", "json"),
            Field("g1", "loc", "geoPoint"),
            Field("d1", "d", "date"),
            Field("b1", "active", "bool"),
            Field("h1", "secret", "text", hidden=True),
            Field("a1", "created", "autodate"),
        ],
        rules={"listRule": "", "viewRule": ""},
    )


def notes_collection() -> Collection:
    return Collection(
        "pbc_notes",
        "notes",
        fields=[
            _id(),
            Field("t2", "text", "text"),
            Field("r3", "owner", "relation", options={"collectionId": "_pb_users_auth_", "maxSelect": 1}),
        ],
        rules={"listRule": "", "viewRule": ""},
    )


class Dataset:
    def __init__(self, collections: list[Collection], dialect: str) -> None:
        self.collections = {c.name: c for c in collections}
        self.dialect = dialect
        self.metadata = MetaData()
        self.tables: dict[str, Table] = {c.name: table_for(c, self.metadata, dialect) for c in collections}

    def lookup(self, key: str) -> Collection | None:
        for c in self.collections.values():
            if key in (c.id, c.name):
                return c
        return None

    @property
    def lookup_fn(self) -> Callable[[str], Collection | None]:
        return self.lookup


def _geo(lon: float, lat: float) -> str:
    return json.dumps({"lon": lon, "lat": lat})


def build(engine: Engine, dialect: str, now: datetime | None = None) -> Dataset:
    ds = Dataset([users_collection(), items_collection(), notes_collection()], dialect)
    ds.metadata.create_all(engine)
    created = format_datetime(now or datetime.now(UTC))
    users: list[dict[str, Any]] = [
        {"id": U1, "email": "u1@example.com", "emailVisibility": 1, "name": "User One", "score": 1},
        {"id": U2, "email": "u2@example.com", "emailVisibility": 1, "name": "User Two", "score": 2},
        {"id": U3, "email": "u3@example.com", "emailVisibility": 0, "name": "User Three", "score": 3},
    ]
    for u in users:
        u.update(password="x", tokenKey="k" + u["id"], verified=0)
    items = [
        dict(
            id=I1,
            name="Alpha",
            n=1,
            tags='["a"]',
            cat="x",
            users=json.dumps([U1]),
            owner=U1,
            data='{"arr":[1,2],"k":"v1","num":5}',
            loc=_geo(23.32, 42.69),
            d="2024-01-01 00:00:00.000Z",
            active=1,
        ),
        dict(
            id=I2,
            name="beta",
            n=2,
            tags='["a","b"]',
            cat="y",
            users=json.dumps([U1, U2]),
            owner=U2,
            data='{"arr":[3],"k":"v2","num":10}',
            loc=_geo(2.35, 48.85),
            d="2025-06-01 12:00:00.000Z",
            active=0,
        ),
        dict(
            id=I3,
            name="Gamma 100%",
            n=3,
            tags='["b","c"]',
            cat="",
            users=json.dumps([U2, U3]),
            owner="",
            data=None,
            loc=_geo(0, 0),
            d="",
            active=0,
        ),
        dict(
            id=I4,
            name="",
            n=0,
            tags="[]",
            cat="",
            users="[]",
            owner="",
            data='{"k":null}',
            loc=_geo(0, 0),
            d="",
            active=0,
        ),
    ]
    for item in items:
        item.update(secret="s", created=created)
    notes = [
        {"id": "note00000000001", "text": "n1", "owner": U1},
        {"id": "note00000000002", "text": "n2", "owner": U2},
    ]
    with engine.begin() as conn:
        conn.execute(insert(ds.tables["users"]), users)
        conn.execute(insert(ds.tables["items"]), items)
        conn.execute(insert(ds.tables["notes"]), notes)
    return ds

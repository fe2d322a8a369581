"""Non-superuser restrictions, rules with ``@request.*``, and injection safety."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from keepbase.core.errors import ForbiddenError
from keepbase.core.types import AuthInfo, RequestInfo
from keepbase.rules import FilterError
from keepbase.store.models import Collection
from keepbase.store.resolver import build_filter, validate_rule
from tests.rules.dataset import I1, I2, I3, I4, U1, U2, U3, Dataset

ALL = [I1, I2, I3, I4]
GUEST = RequestInfo()
SUPERUSER = RequestInfo(auth=AuthInfo("pbc_3142635823", "_superusers", {"id": "su0000000000001"}))


def user(uid: str, **kw: Any) -> RequestInfo:
    return RequestInfo(auth=AuthInfo("_pb_users_auth_", "users", {"id": uid, "email": f"{uid}@x"}), **kw)


def run(
    engine: Engine,
    ds: Dataset,
    expression: str,
    info: RequestInfo,
    *,
    coll: str = "items",
    is_rule: bool = False,
    lookup: Any = None,
) -> list[str]:
    table = ds.tables[coll]
    lk = lookup or ds.lookup
    collection = lk(coll)
    assert collection is not None
    where = build_filter(collection, table, expression, info, lk, ds.dialect, is_rule=is_rule)
    with engine.connect() as conn:
        return list(conn.scalars(select(table.c.id).where(where).order_by(table.c.id)))


def with_users_rule(ds: Dataset, rule: str | None) -> Any:
    users = replace(ds.collections["users"], rules={"listRule": rule})

    def lookup(key: str) -> Collection | None:
        return users if key in ("users", users.id) else ds.lookup(key)

    return lookup


def test_email_visibility(engine_ds: tuple[Engine, Dataset]) -> None:
    engine, ds = engine_ds
    assert run(engine, ds, "email ~ 'u3'", GUEST, coll="users") == []
    assert run(engine, ds, "email ~ 'u1'", GUEST, coll="users") == [U1]
    assert run(engine, ds, "email ~ 'u3'", SUPERUSER, coll="users") == [U3]
    assert run(engine, ds, "email ~ 'u3'", GUEST, coll="users", is_rule=True) == [U3]
    assert run(engine, ds, "users.email ?~ 'u3'", GUEST) == []
    assert run(engine, ds, "users.email ?~ 'u2'", GUEST) == [I2, I3]


def test_hidden_fields(engine_ds: tuple[Engine, Dataset]) -> None:
    engine, ds = engine_ds
    for expr, coll in [
        ("secret = 's'", "items"),
        ("password = 'x'", "users"),
        ("owner.tokenKey != ''", "items"),
    ]:
        with pytest.raises(FilterError):
            run(engine, ds, expr, GUEST, coll=coll)
        run(engine, ds, expr, SUPERUSER, coll=coll)
        run(engine, ds, expr, GUEST, coll=coll, is_rule=True)
    assert run(engine, ds, "secret = 's'", user(U1), is_rule=True) == ALL


@pytest.mark.parametrize("prefix", ["@collection.", "@request."])
def test_forbidden_prefixes(engine_ds: tuple[Engine, Dataset], prefix: str) -> None:
    engine, ds = engine_ds
    expr = "@collection.users.id ?= owner" if prefix == "@collection." else "@request.auth.id != ''"
    with pytest.raises(ForbiddenError) as info:
        run(engine, ds, expr, user(U1))
    assert info.value.message == f"Only superusers can filter by {prefix}"
    run(engine, ds, expr, SUPERUSER)
    run(engine, ds, expr, user(U1), is_rule=True)


def test_joined_list_rule(engine_ds: tuple[Engine, Dataset]) -> None:
    engine, ds = engine_ds
    lookup = with_users_rule(ds, "id = @request.auth.id")
    expr = "owner.name = 'User One'"
    assert run(engine, ds, expr, user(U1), lookup=lookup) == [I1]
    assert run(engine, ds, expr, GUEST, lookup=lookup) == []
    assert run(engine, ds, expr, user(U2), lookup=lookup) == []
    assert run(engine, ds, expr, SUPERUSER, lookup=lookup) == [I1]
    assert run(engine, ds, "users.name ?~ 'User'", user(U2), lookup=lookup) == [I2, I3]
    null_lookup = with_users_rule(ds, None)
    with pytest.raises(FilterError):
        run(engine, ds, expr, GUEST, lookup=null_lookup)
    assert run(engine, ds, expr, GUEST, lookup=null_lookup, is_rule=True) == [I1]
    assert run(engine, ds, "owner = ''", GUEST, lookup=null_lookup) == [I3, I4]


CREATE_RULE = (
    '@request.auth.id != "" && @request.body.name:isset = true && @request.body.n < 10 && '
    '@request.body.tags:length <= 2 && @request.body.tags:each ?= "c"'
)


@pytest.mark.parametrize(
    ("body", "auth", "ok"),
    [
        ({"name": "r1", "n": 5, "tags": ["a", "c"]}, U1, True),
        ({"name": "r1", "n": "5", "tags": ["a", "c"]}, U1, True),
        ({"n": 5, "tags": ["a", "c"]}, U1, False),
        ({"name": "r1", "n": 50, "tags": ["a", "c"]}, U1, False),
        ({"name": "r1", "n": 5, "tags": ["a", "b", "c"]}, U1, False),
        ({"name": "r1", "n": 5, "tags": ["a", "b"]}, U1, False),
        ({"name": "r1", "n": 5, "tags": ["a", "c"]}, None, False),
    ],
)
def test_create_rule(
    engine_ds: tuple[Engine, Dataset], body: dict[str, Any], auth: str | None, ok: bool
) -> None:
    engine, ds = engine_ds
    info = user(auth, body=body, method="POST") if auth else RequestInfo(body=body, method="POST")
    assert run(engine, ds, CREATE_RULE, info, is_rule=True) == (ALL if ok else [])


UPDATE_RULE = '@request.body.n:changed = false && (owner = @request.auth.id || owner = "")'


@pytest.mark.parametrize(
    ("body", "auth", "expected"),
    [
        ({"name": "x"}, U1, [I1, I3, I4]),
        ({"name": "x"}, U2, [I2, I3, I4]),
        ({"n": 1}, U1, [I1]),
        ({"n": "3"}, U1, [I3]),
        ({"n": 5}, U1, []),
    ],
)
def test_update_rule(
    engine_ds: tuple[Engine, Dataset], body: dict[str, Any], auth: str, expected: list[str]
) -> None:
    engine, ds = engine_ds
    assert run(engine, ds, UPDATE_RULE, user(auth, body=body, method="PATCH"), is_rule=True) == expected


def test_headers_query_method(engine_ds: tuple[Engine, Dataset]) -> None:
    engine, ds = engine_ds
    rule = '@request.headers.x_token = "abc" && @request.query.q = "1" && @request.method = "PATCH"'
    ok = RequestInfo(method="PATCH", headers={"x_token": "abc"}, query={"q": "1"})
    assert run(engine, ds, rule, ok, is_rule=True) == ALL
    assert run(engine, ds, rule, replace(ok, query={"q": "2"}), is_rule=True) == []
    assert run(engine, ds, "@request.query.q:isset = true", ok, is_rule=True) == ALL
    assert run(engine, ds, "@request.query.zz:isset = true", ok, is_rule=True) == []
    assert (
        run(engine, ds, "@request.context = 'default' && @request.method:lower = 'patch'", ok, is_rule=True)
        == ALL
    )


def test_request_auth(engine_ds: tuple[Engine, Dataset]) -> None:
    engine, ds = engine_ds
    assert run(engine, ds, "@request.auth.id != ''", GUEST, is_rule=True) == []
    assert run(engine, ds, "@request.auth.id = ''", GUEST, is_rule=True) == ALL
    assert run(engine, ds, "owner = @request.auth.id", user(U2), is_rule=True) == [I2]
    assert run(engine, ds, "@request.auth.name = 'User One'", user(U1), is_rule=True) == ALL
    assert run(engine, ds, "@request.auth.score > 1", user(U1), is_rule=True) == []
    assert run(engine, ds, "@request.auth.score > 1", user(U2), is_rule=True) == ALL
    assert run(engine, ds, "@request.auth.collectionName = 'users'", user(U1), is_rule=True) == ALL
    assert run(engine, ds, "users.id ?= @request.auth.id", user(U3), is_rule=True) == [I3]
    assert run(engine, ds, "@request.auth.name = 'User One'", GUEST, is_rule=True) == []


def test_request_body_relations(engine_ds: tuple[Engine, Dataset]) -> None:
    engine, ds = engine_ds
    info = user(U1, body={"owner": U2, "users": [U1, U3]})
    assert run(engine, ds, "@request.body.owner.name = 'User Two'", info, is_rule=True) == ALL
    assert run(engine, ds, "@request.body.users.name ?= 'User Three'", info, is_rule=True) == ALL
    assert run(engine, ds, "@request.body.users.name ?= 'User Two'", info, is_rule=True) == []
    assert run(engine, ds, "@request.body.users.name ~ 'User'", info, is_rule=True) == ALL
    assert run(engine, ds, "@request.body.users.name = 'User One'", info, is_rule=True) == []
    assert run(engine, ds, "@request.body.users:length = 2", info, is_rule=True) == ALL
    assert run(engine, ds, "@request.body.users:each ?= owner", info, is_rule=True) == [I1]


HOSTILE = [
    'name = "\'; DROP TABLE items; --"',
    "name = 'x\\' OR 1=1 --'",
    "name ~ '%' || name ~ '\\\\%'",
    "n = 99999999999999999999999999999999999999999999999999999999999999999999999999",
    "name = 'é漢字🙂'",
    "data.k = '\" OR 1=1'",
    "name ~ '_%_'",
]


@pytest.mark.parametrize("expression", HOSTILE)
def test_hostile_values_are_bound(engine_ds: tuple[Engine, Dataset], expression: str) -> None:
    engine, ds = engine_ds
    items = ds.tables["items"]
    where = build_filter(
        ds.collections["items"], items, expression, SUPERUSER, ds.lookup, ds.dialect, is_rule=False
    )
    sql = str(select(items.c.id).where(where).compile(engine))
    for marker in ("DROP", "OR 1=1", "漢字", "\x00"):
        assert marker not in sql
    with engine.connect() as conn:
        try:
            conn.execute(select(items.c.id).where(where)).all()
        except Exception as exc:  # NUL bytes are rejected by PostgreSQL's driver, nothing else may fail
            assert "NUL" in str(exc) and ds.dialect == "postgresql"
        assert conn.scalar(select(func.count()).select_from(items)) == 4


def test_validate_rule(engine_ds: tuple[Engine, Dataset]) -> None:
    _, ds = engine_ds
    items = ds.collections["items"]
    assert validate_rule(items, "nofield = 1", ds.lookup, ds.dialect) == (
        'invalid left operand "nofield" - unknown field "nofield"'
    )
    assert validate_rule(items, "(a = 1", ds.lookup, ds.dialect) == (
        "invalid formatted group - missing 1 closing bracket(s)"
    )
    assert validate_rule(items, "name = owner.nope", ds.lookup, ds.dialect) is not None
    for ok in [
        "@request.auth.id != '' && owner = @request.auth.id",
        "@request.auth.whatever.deep = 1",
        "@request.body.anything = 'x' && @collection.notes.text ?= name",
        "secret = 's'",
    ]:
        assert validate_rule(items, ok, ds.lookup, ds.dialect) is None, ok


def test_dangling_escape_from_request_value(engine_ds: tuple[Engine, Dataset]) -> None:
    engine, ds = engine_ds
    info = RequestInfo(query={"q": "a%\\"})
    assert run(engine, ds, "name ~ @request.query.q", info, is_rule=True) == []
    assert run(engine, ds, "name !~ @request.query.q", info, is_rule=True) == ALL
    assert run(engine, ds, "name ~ @request.query.missing", info, is_rule=True) == []


def test_nul_bytes_are_refused_before_compiling(engine_ds: tuple[Engine, Dataset]) -> None:
    from keepbase.rules import FilterError

    _engine, ds = engine_ds
    for expression in ("name = '\x00'", "name\x00 = 'a'"):
        with pytest.raises(FilterError):
            build_filter(ds.collections["items"], ds.tables["items"], expression, SUPERUSER, ds.lookup,
                         ds.dialect, is_rule=False)

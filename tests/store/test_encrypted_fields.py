"""Encrypted fields (store/encryption.py) through the HTTP API, on SQLite and PostgreSQL: plain values
in and out, ciphertext at rest, equality through the blind index, refusals, unique indexes, the
start-up key check and turning the option on and off for a field with data."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update

from keepbase.app import App, create_app
from keepbase.core.errors import StartupError
from tests.conftest import SU_EMAIL, SU_PASSWORD

K1 = base64.b64encode(bytes(range(32))).decode()
K2 = base64.b64encode(bytes(range(100, 132))).decode()
PLAIN = {"secret": "the cake is a lie", "mail": "alice@example.com", "body": "<p>hello</p>",
         "site": "https://example.com/x", "data": {"b": [1, 2], "a": "z"}}


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"encryption_keys": f"k1:{K1}"}


async def _notes(client: httpx.AsyncClient, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": "notes", "listRule": "", "viewRule": "",
        "fields": [{"name": "title", "type": "text"},
                   {"name": "secret", "type": "text", "encrypted": True},
                   {"name": "mail", "type": "email", "encrypted": True},
                   {"name": "body", "type": "editor", "encrypted": True},
                   {"name": "site", "type": "url", "encrypted": True},
                   {"name": "data", "type": "json", "encrypted": True}],
        **extra}
    r = await client.post("/api/collections", json=payload, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _create(client: httpx.AsyncClient, headers: dict[str, str], **values: Any) -> dict[str, Any]:
    r = await client.post("/api/collections/notes/records", json=values, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _stored(app: App, record_id: str) -> dict[str, Any]:
    table = app.records.table(app.collections.get("notes"))
    with app.db.read() as conn:
        return dict(conn.execute(select(table).where(table.c.id == record_id)).one()._mapping)


async def test_round_trip_and_ciphertext_at_rest(app: App, client: httpx.AsyncClient,
                                                 su_headers: dict[str, str]) -> None:
    schema = await _notes(client, su_headers)
    by_name = {f["name"]: f for f in schema["fields"]}
    assert by_name["secret"]["encrypted"] is True and "encrypted" not in by_name["title"]
    rec = await _create(client, su_headers, title="t", **PLAIN)
    for key, value in PLAIN.items():
        assert rec[key] == value
    assert (await client.get(f"/api/collections/notes/records/{rec['id']}")).json() == rec
    listed = (await client.get("/api/collections/notes/records")).json()["items"]
    assert listed == [rec]

    row = _stored(app, rec["id"])
    assert row["title"] == "t"
    for key in PLAIN:
        assert row[key].startswith("kb1.k1."), row[key]
        assert "cake" not in row[key] and "alice" not in row[key] and "example" not in row[key]
        field_id = by_name[key]["id"]
        assert len(row[f"{field_id}:bi"]) == 43  # base64url of an HMAC-SHA-256

    r = await client.patch(f"/api/collections/notes/records/{rec['id']}", json={"secret": "new", "mail": ""},
                           headers=su_headers)
    assert r.status_code == 200, r.text
    assert (r.json()["secret"], r.json()["mail"], r.json()["body"]) == ("new", "", PLAIN["body"])
    row2 = _stored(app, rec["id"])
    assert row2["secret"].startswith("kb1.k1.") and row2["secret"] != row["secret"]
    assert row2["mail"] == "" and row2[f"{by_name['mail']['id']}:bi"] is None  # empty stays empty
    assert row2["body"] == row["body"]  # untouched fields are not rewritten

    # a ciphertext copied to another record (same field), or to another field, does not decrypt
    other = await _create(client, su_headers, secret="zebra-b")
    table = app.records.table(app.collections.get("notes"))
    with app.db.write() as conn:
        conn.execute(update(table).where(table.c.id == other["id"]).values(secret=row["secret"]))
    r = await client.get(f"/api/collections/notes/records/{other['id']}")
    assert r.status_code == 500
    assert f'field "secret" of record "{other["id"]}"' in r.json()["message"] and "cake" not in r.text
    assert (await client.get("/api/collections/notes/records")).status_code == 500
    with app.db.write() as conn:
        conn.execute(update(table).where(table.c.id == rec["id"]).values(body=row2["secret"]))
    r = await client.get(f"/api/collections/notes/records/{rec['id']}")
    assert r.status_code == 500 and 'field "body"' in r.json()["message"] and "new" not in r.text


async def test_equality_filters_and_rules_use_the_blind_index(app: App, client: httpx.AsyncClient,
                                                              su_headers: dict[str, str]) -> None:
    await _notes(client, su_headers, listRule="secret = 'open' || secret = @request.headers.x_code")
    recs = [await _create(client, su_headers, title=str(i), secret=s, data=d)
            for i, (s, d) in enumerate([("open", {"k": 1}), ("closed", [1]), ("", None), ("sesame", "x")])]
    ids = [r["id"] for r in recs]

    async def found(flt: str, headers: dict[str, str] | None = None) -> list[str]:
        r = await client.get("/api/collections/notes/records", params={"filter": flt, "perPage": 50},
                             headers=su_headers if headers is None else headers)
        assert r.status_code == 200, (flt, r.text)
        return [item["id"] for item in r.json()["items"]]

    assert await found("secret = 'open'") == [ids[0]]
    assert await found("'closed' = secret") == [ids[1]]
    assert await found("secret != 'open'") == ids[1:]
    assert await found("secret ?= 'sesame'") == [ids[3]]
    assert await found("secret = ''") == [ids[2]]
    assert await found("secret != ''") == [ids[0], ids[1], ids[3]]
    assert await found("secret = null") == [ids[2]]
    assert await found("secret = 'OPEN'") == []  # exact, as `=` on a text column
    assert await found("title = '1' && secret = 'closed'") == [ids[1]]
    assert await found("data = '{\"k\": 1}'") == []  # a text is the JSON string, not an object
    assert await found("data = 'x'") == [ids[3]]
    # the rule (anonymous caller): one literal, one request value
    assert await found("", {}) == [ids[0], ids[2]]  # no header: null, which equals the empty value
    assert await found("", {"x-code": "sesame"}) == [ids[0], ids[3]]


REFUSED = [
    ({"filter": "secret ~ 'op'"}, 'operator "~"'),
    ({"filter": "secret !~ 'op'"}, 'operator "!~"'),
    ({"filter": "secret > 'a'"}, 'operator ">"'),
    ({"filter": "secret = title"}, "another field"),
    ({"filter": "secret:lower = 'open'"}, '":lower" modifier'),
    ({"filter": "data.k = 1"}, 'path "data.k"'),
    ({"sort": "-secret"}, "cannot be sorted"),
]


async def test_other_operators_and_sort_are_refused(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _notes(client, su_headers)
    for params, needle in REFUSED:
        r = await client.get("/api/collections/notes/records", params=params, headers=su_headers)
        assert r.status_code == 400, (params, r.text)
        message = r.json()["message"]
        assert "is encrypted" in message and needle in message, (params, message)
    r = await client.patch("/api/collections/notes", json={"viewRule": "secret ~ 'x'"}, headers=su_headers)
    assert r.status_code == 400
    assert 'The field \\"secret\\" is encrypted' in r.text, r.text  # in the rule's raw error


async def test_unique_index_goes_through_the_blind_index(app: App, client: httpx.AsyncClient,
                                                        su_headers: dict[str, str]) -> None:
    await _notes(client, su_headers, indexes=["CREATE UNIQUE INDEX idx_notes_mail ON notes (mail)"])
    first = await _create(client, su_headers, mail="bob@example.com")
    await _create(client, su_headers, mail="carol@example.com")
    await _create(client, su_headers, mail="")
    await _create(client, su_headers, mail="")  # empty values are not unique-checked (NULL blind index)
    r = await client.post("/api/collections/notes/records", json={"mail": "bob@example.com"}, headers=su_headers)
    assert r.status_code == 400
    assert r.json()["data"] == {"mail": {"code": "validation_not_unique", "message": "Value must be unique."}}
    second = (await client.get("/api/collections/notes/records", params={"filter": "mail='carol@example.com'"},
                               headers=su_headers)).json()["items"][0]
    r = await client.patch(f"/api/collections/notes/records/{second['id']}", json={"mail": "bob@example.com"},
                           headers=su_headers)
    assert r.status_code == 400 and "mail" in r.json()["data"]
    assert (await client.get(f"/api/collections/notes/records/{first['id']}")).json()["mail"] == "bob@example.com"
    bad = await client.post("/api/collections", headers=su_headers, json={
        "name": "other", "fields": [{"name": "m", "type": "email", "encrypted": True}],
        "indexes": ["CREATE UNIQUE INDEX idx_other_m ON other (m COLLATE NOCASE)"]})
    assert bad.status_code == 400 and bad.json()["data"]["indexes"]["0"]["code"] == "validation_encrypted_index"


async def test_only_some_fields_can_be_encrypted_and_only_with_keys(app: App, client: httpx.AsyncClient,
                                                                   su_headers: dict[str, str]) -> None:
    for field in ({"name": "n", "type": "number", "encrypted": True},
                  {"name": "f", "type": "file", "encrypted": True},
                  {"name": "id", "type": "text", "primaryKey": True, "required": True, "pattern": "^[a-z0-9]+$",
                   "encrypted": True}):
        r = await client.post("/api/collections", json={"name": "bad", "fields": [field]}, headers=su_headers)
        assert r.status_code == 400, r.text
        errors = r.json()["data"]["fields"]
        assert any(e.get("encrypted", {}).get("code") == "validation_encryption_unsupported"
                   for e in errors.values()), errors
    plain = create_app(dataclasses.replace(app.config, encryption_keys=""))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=plain.asgi), base_url="http://t") as c:
            token = (await c.post("/api/collections/_superusers/auth-with-password",
                                  json={"identity": SU_EMAIL, "password": SU_PASSWORD})).json()["token"]
            r = await c.post("/api/collections", headers={"Authorization": token}, json={
                "name": "vault", "fields": [{"name": "s", "type": "text", "encrypted": True}]})
    finally:
        plain.close()
    assert r.status_code == 400
    error = r.json()["data"]["fields"]["1"]["encrypted"]
    assert error["code"] == "validation_encryption_keys_missing" and "KEEPBASE_ENCRYPTION_KEYS" in error["message"]


async def test_start_up_needs_every_key_the_data_uses(app: App, client: httpx.AsyncClient,
                                                      su_headers: dict[str, str]) -> None:
    await _notes(client, su_headers)
    await _create(client, su_headers, secret="s")
    for keys, needle in ((f"k2:{K2}", "'k1'"), ("", "no encryption keys are configured")):
        with pytest.raises(StartupError) as info:
            create_app(dataclasses.replace(app.config, encryption_keys=keys))
        message = str(info.value)
        assert "\n" not in message and needle in message and "KEEPBASE_ENCRYPTION_KEYS" in message
        assert K1 not in message and K2 not in message
    again = create_app(dataclasses.replace(app.config, encryption_keys=f"k2:{K2},k1:{K1}"))
    again.close()


async def test_turning_encryption_on_and_off_migrates_the_data(app: App, client: httpx.AsyncClient,
                                                               su_headers: dict[str, str]) -> None:
    r = await client.post("/api/collections", headers=su_headers, json={
        "name": "notes", "listRule": "", "viewRule": "",
        "fields": [{"name": "secret", "type": "text"}, {"name": "data", "type": "json"}]})
    assert r.status_code == 200, r.text
    fields = r.json()["fields"]
    ids = [(await _create(client, su_headers, secret=f"s{i}", data={"i": i}))["id"] for i in range(3)]
    for f in fields[1:]:
        f["encrypted"] = True
    r = await client.patch("/api/collections/notes", json={"fields": fields}, headers=su_headers)
    assert r.status_code == 200, r.text
    assert _stored(app, ids[1])["secret"].startswith("kb1.k1.")
    got = (await client.get("/api/collections/notes/records", params={"filter": "secret = 's1'"})).json()["items"]
    assert [(g["id"], g["data"]) for g in got] == [(ids[1], {"i": 1})]
    for f in fields[1:]:
        f["encrypted"] = False
    r = await client.patch("/api/collections/notes", json={"fields": fields}, headers=su_headers)
    assert r.status_code == 200, r.text
    assert _stored(app, ids[2])["secret"] == "s2" and not any(k.endswith(":bi") for k in _stored(app, ids[2]))
    with app.db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM notes WHERE secret LIKE 's%'")).scalar_one() == 3


async def test_realtime_events_carry_sealed_values_and_render_plain(app: App, client: httpx.AsyncClient,
                                                                    su_headers: dict[str, str]) -> None:
    """What realtime ships between nodes (and the PostgreSQL change log keeps) is sealed; each
    subscriber still gets plain values, and a rule on an encrypted field decides who does."""
    import orjson

    from keepbase.realtime.access import Viewer, finish, prepare, stored_values
    from keepbase.realtime.subscriptions import Subscription

    await _notes(client, su_headers, listRule="secret = 'open'")
    c = app.collections.get("notes")
    shown = await _create(client, su_headers, secret="open", body="zebra")
    hidden = await _create(client, su_headers, secret="shut")
    sub = Subscription(raw="notes", collection="notes", record_id="")
    for rec, expected in ((shown, {"secret": "open", "body": "zebra"}), (hidden, None)):
        record = dict(rec)
        values = stored_values(c, {k: v for k, v in record.items() if c.get_field(k)} | {"data": None})
        assert values["secret"].startswith("kb1.k1.") and "zebra" not in orjson.dumps(values).decode()
        ev = prepare(c, "create", values, [Viewer(None, sub)], None)
        finish(app.records, [ev], None)
        out = ev.out[Viewer(None, sub).key]
        if expected is None:
            assert out is None
        else:
            assert out is not None
            sent = orjson.loads(out)["record"]
            assert {k: sent[k] for k in expected} == expected

"""Collection validation as PocketBase 0.40 answers it (checked on the binary; the oracle tests in
tests/oracle/test_diff_collection_validation.py compare the same cases with PocketBase itself)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import make_collection

Headers = dict[str, str]
FORMAT_ERROR = "Failed to load the submitted data due to invalid formatting."


async def _patch(client: httpx.AsyncClient, headers: Headers, name: str, **payload: Any) -> httpx.Response:
    return await client.patch(f"/api/collections/{name}", json=payload, headers=headers)


async def test_field_type_change_is_reported_on_the_field(client: httpx.AsyncClient, su_headers: Headers) -> None:
    c = await make_collection(client, su_headers, name="posts", fields=[{"name": "title", "type": "text"}])
    r = await _patch(client, su_headers, "posts", fields=[{"id": c["fields"][1]["id"], "name": "title", "type": "number"}])
    assert r.status_code == 400, r.text
    assert r.json()["data"] == {"fields": {"1": {"code": "validation_field_type_change",
                                                 "message": "Field type cannot be changed."}}}


@pytest.mark.parametrize(("field", "code"), [
    ({"id": "email3885137012", "name": "mail", "type": "email"}, "validation_system_field_change"),
    ({"name": "password", "type": "text"}, "validation_system_field_change"),
    ({"id": "text3208210256", "name": "ident", "type": "text"}, "validation_missing_primary_key"),
])
async def test_system_field_rename_is_one_error_on_fields(client: httpx.AsyncClient, su_headers: Headers,
                                                          field: dict[str, Any], code: str) -> None:
    await make_collection(client, su_headers, name="members", type="auth")
    r = await _patch(client, su_headers, "members", fields=[field])
    assert r.status_code == 400, r.text
    assert r.json()["data"]["fields"]["code"] == code


async def test_left_out_auth_system_fields_come_back(client: httpx.AsyncClient, su_headers: Headers) -> None:
    c = await make_collection(client, su_headers, name="members", type="auth")
    system = [f for f in c["fields"] if f["system"]]
    r = await _patch(client, su_headers, "members", fields=[{"name": "nick", "type": "text"}])
    assert r.status_code == 200, r.text
    got = r.json()["fields"]
    assert [f["name"] for f in got] == ["id", "nick", "password", "tokenKey", "email", "emailVisibility", "verified"]
    assert [f for f in got if f["system"]] == system


async def test_bare_id_field_becomes_the_primary_key(client: httpx.AsyncClient, su_headers: Headers) -> None:
    c = await make_collection(client, su_headers, name="things", fields=[{"name": "id", "type": "text", "hidden": True}])
    pk = c["fields"][0]
    assert (pk["id"], pk["primaryKey"], pk["required"], pk["system"], pk["hidden"], pk["pattern"]) == (
        "text3208210256", True, True, True, False, "^[a-z0-9]+$")
    r = await client.post("/api/collections/things/records", json={"id": "abc"}, headers=su_headers)
    assert r.status_code == 200, r.text


async def test_resubmitted_field_starts_from_zero_values(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="posts",
                          fields=[{"name": "t", "type": "text", "max": 10, "required": True, "hidden": True}])
    r = await _patch(client, su_headers, "posts", fields=[{"name": "t", "type": "text"}])
    assert r.status_code == 200, r.text
    t = r.json()["fields"][1]
    assert (t["max"], t["required"], t["hidden"]) == (0, False, False)


async def test_system_flag_set_on_create_only(client: httpx.AsyncClient, su_headers: Headers) -> None:
    c = await make_collection(client, su_headers, name="locked", system=True)
    assert c["system"] is True
    r = await client.delete("/api/collections/locked", headers=su_headers)
    assert r.status_code == 400, r.text
    await make_collection(client, su_headers, name="open")
    r = await _patch(client, su_headers, "open", system=True)
    assert r.status_code == 400, r.text
    assert r.json()["data"]["system"]["code"] == "validation_collection_system_flag_change"


@pytest.mark.parametrize("field", [
    {"name": "t", "type": "text", "min": "x"},
    {"name": "t", "type": "text", "min": 1.5},
    {"name": "t", "type": "text", "required": "yes"},
    {"name": "s", "type": "select", "values": [1]},
    {"name": "n", "type": "number", "max": "5"},
    {"name": "d", "type": "date", "min": 5},
])
async def test_settings_of_the_wrong_json_type(client: httpx.AsyncClient, su_headers: Headers,
                                               field: dict[str, Any]) -> None:
    r = await client.post("/api/collections", json={"name": "bad", "fields": [field]}, headers=su_headers)
    assert r.status_code == 400, r.text
    assert r.json() == {"data": {}, "message": FORMAT_ERROR, "status": 400}


@pytest.mark.parametrize(("pattern", "message"), [
    ("([", "Error parsing regexp: missing closing ]: `[`."),
    ("(?=x)", "Error parsing regexp: invalid or unsupported Perl syntax: `(?=`."),
    ("a**", "Error parsing regexp: invalid nested repetition operator: `**`."),
    ("(a)\\1", "Error parsing regexp: invalid escape sequence: `\\1`."),
    ("a{1001}", "Error parsing regexp: invalid repeat count: `{1001}`."),
])
async def test_regex_errors_are_go_s(client: httpx.AsyncClient, su_headers: Headers, pattern: str, message: str) -> None:
    r = await client.post("/api/collections", json={"name": "bad", "fields": [
        {"name": "t", "type": "text", "pattern": pattern}]}, headers=su_headers)
    assert r.status_code == 400, r.text
    assert r.json()["data"]["fields"]["1"]["pattern"] == {"code": "validation_invalid_regex", "message": message}


async def test_generated_autogenerate_values_follow_the_pattern(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="codes", listRule="", createRule="", fields=[
        {"name": "digits", "type": "text", "autogeneratePattern": "\\d{5}"},
        {"name": "pairs", "type": "text", "autogeneratePattern": "(ab|cd){3}"},
        {"name": "word", "type": "text", "autogeneratePattern": "[a-z]+"}])
    r = await client.post("/api/collections/codes/records", json={})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["digits"].isdigit() and len(rec["digits"]) == 5
    assert len(rec["pairs"]) == 6 and set(rec["pairs"][::2]) <= {"a", "c"}
    assert rec["word"].isalpha() and rec["word"].islower()


async def test_identity_fields_errors(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="members", type="auth", fields=[{"name": "nick", "type": "text"}])
    r = await _patch(client, su_headers, "members", passwordAuth={"identityFields": ["nope"]})
    assert r.json()["data"] == {"passwordAuth": {"identityFields": {
        "code": "validation_missing_field", "message": "Invalid or missing field nope.", "params": {"fieldName": "nope"}}}}
    r = await _patch(client, su_headers, "members", passwordAuth={"identityFields": ["email", "nick"]})
    assert r.json()["data"]["passwordAuth"]["identityFields"]["code"] == "validation_missing_unique_constraint"
    r = await _patch(client, su_headers, "members", passwordAuth={"identityFields": ["email", "nick"]},
                     indexes=["CREATE UNIQUE INDEX idx_nick ON members (nick)"])
    assert r.status_code == 200, r.text


async def test_import_quotes_go_json_errors(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.put("/api/collections/import", headers=su_headers, json={"collections": [
        {"name": "fine"}, {"name": "bad", "fields": [{"name": "t", "type": "text", "max": True}]}]})
    assert r.status_code == 400, r.text
    assert r.json()["data"]["collections"]["message"] == (
        "Failed to import the collections configuration. Raw error:\njson: cannot unmarshal JSON object into Go "
        'core.fieldWithType within "/fields/0": failed to unmarshal field: json: cannot unmarshal JSON boolean '
        'into Go int within "/max".')
    r = await client.get("/api/collections/fine", headers=su_headers)
    assert r.status_code == 404

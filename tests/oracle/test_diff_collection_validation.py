"""Differential tests: collection create/update/import validation, keepbase vs PocketBase 0.40.

Crafted bodies (bad names, bad field settings of every type, JSON of the wrong type, system field
changes, auth options, view collections, imports) run once against the shared PocketBase and
against keepbase on SQLite and PostgreSQL; statuses and normalised bodies must match.

Only failing imports are used (the harness cleans up collections created with POST, not
imports), and no step may leave a collection PocketBase cannot delete (``system: true``) or
touch a built-in collection. Random parts of messages (the sample value in
``validation_invalid_autogenerate_pattern_value``) are masked.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.oracle.harness import (
    ORACLE_MARKS,
    Expect,
    PocketBase,
    Scenario,
    Step,
    assert_same_as_pocketbase,
)

pytestmark = ORACLE_MARKS

_EXAMPLE = re.compile(r'(could produce invalid field values, ex\.: )".*"\.$', re.DOTALL)
_UNKNOWN_TYPE = re.compile(r"(missing or unknown field type in )\{.*\}")


def _mask_example(s: str) -> str:
    return _EXAMPLE.sub(r'\1"<sample>".', s)


def _mask_go_json(s: str) -> str:
    """Go's encoding/json words its errors "cannot unmarshal" or "unable to unmarshal" at random
    per process, and re-encodes a field object with its keys in no fixed order."""
    s = s.replace("json: unable to unmarshal", "json: cannot unmarshal")
    return _UNKNOWN_TYPE.sub(r"\1{<field>}", s)


SCENARIOS: list[Scenario] = []


def scenario(name: str, steps: list[Step], **kw: Any) -> None:
    kw.setdefault("normalise", _mask_example)
    SCENARIOS.append(Scenario(name=name, steps=steps, **kw))


def create(name: str, label: str = "", save: str | None = None, **payload: Any) -> Step:
    return Step("POST", "/api/collections", json={"name": name, **payload}, save={save: "id"} if save else {},
                label=label or f"create {name}")


def fields(prefix: str, *items: dict[str, Any]) -> list[Step]:
    """One collection per field definition, named ``<prefix>_<n>``."""
    return [create(f"{prefix}_{i}", label=f"{prefix}_{i} {item}"[:120], fields=[item]) for i, item in enumerate(items)]


def patch(collection: str, label: str, **payload: Any) -> Step:
    return Step("PATCH", f"/api/collections/{collection}", json=payload, label=label)


def keepbase_reserved(name: str) -> Step:
    """A name keepbase keeps for its own tables (docs/compatibility.md); PocketBase accepts it."""
    return Step("POST", "/api/collections", json={"name": name}, label=f"{name}: reserved by keepbase (documented)",
                pb=Expect(200, {"name": name}), kb=Expect(400, {"data.name.code": "validation_collection_name_invalid"}))


def failing_import(label: str, *collections: dict[str, Any]) -> Step:
    return Step("PUT", "/api/collections/import", json={"collections": list(collections)}, label=label)


# --------------------------------------------------------------------------- decoding

scenario("collection_validation_json_types", fields(
    "dcvj",
    {"name": "t", "type": "text", "min": "x"},
    {"name": "t", "type": "text", "min": 1.5},
    {"name": "t", "type": "text", "required": "yes"},
    {"name": "t", "type": "text", "id": 5},
    {"name": 5, "type": "text"},
    {"name": "n", "type": "number", "min": "a"},
    {"name": "r", "type": "relation", "collectionId": "_pb_users_auth_", "cascadeDelete": "x"},
    {"name": "s", "type": "select", "values": "a"},
    {"name": "s", "type": "select", "values": [1]},
    {"name": "d", "type": "date", "min": 5},
    {"name": "t", "type": 5},
    {"name": "t"},
) + [
    create("dcvj_obj", fields={"a": 1}),
    create("dcvj_rule", listRule=5),
    create("dcvj_idx", indexes="x"),
    create("dcvj_auth", type="auth", authToken={"duration": "x"}),
    create("dcvj_otp", type="auth", otp="x"),
])

scenario("collection_validation_nulls_and_zero_values", fields(
    "dcvz",
    {"name": "t", "type": "text", "min": None, "pattern": None, "id": None, "hidden": None},
    {"name": "e", "type": "email", "onlyDomains": None},
    {"name": "f", "type": "file", "mimeTypes": None, "thumbs": None},
    {"name": "s", "type": "select", "values": None},
    {"name": "d", "type": "date", "min": "bad"},
    {"name": "d", "type": "date", "min": "2020-01-01"},
    {"name": "a", "type": "autodate"},
    {"name": "a", "type": "autodate", "onCreate": False, "onUpdate": False},
    {"name": "t", "type": "text", "id": "bad id!"},
) + [create("dcvz_type", type="")])

# --------------------------------------------------------------------------- names

scenario("collection_validation_names", [
    create("dcvn_A_VIA_b"),
    create("dcvn x_via_y"),
    create("x" * 256),
    create("_collections"),
    create("_params"),
    create("_migrations"),
    keepbase_reserved("_logs"),
    keepbase_reserved("_kbx"),
    create("sqlite_master"),
    create("dcvn_id", id="x" * 101),
    create("dcvn_id2", id="bad id"),
    create("dcvn_id3", id="_pb_users_auth_"),
    *fields("dcvn_f",
            {"name": "x" * 101, "type": "text"},
            {"name": "a_VIA_b", "type": "text"},
            {"name": "NULL", "type": "text"},
            {"name": "Expand", "type": "text"},
            {"name": "collectionId", "type": "text"},
            {"name": "t", "type": "text", "id": "x" * 101},
            {"name": "t", "type": "text", "help": "x" * 301}),
    create("dcvn_dup", fields=[{"name": "t", "type": "text", "id": "same"}, {"name": "u", "type": "number", "id": "same"}]),
    create("dcvn_dup2", fields=[{"name": "t", "type": "text"}, {"name": "T", "type": "bool"}]),
])

scenario("collection_validation_generated_id_taken", [
    create("dcvg_a", save="first"),
    patch("dcvg_a", "rename", name="dcvg_b"),
    create("dcvg_a", label="same name again: the generated id is taken"),
])

# --------------------------------------------------------------------------- field settings

scenario("collection_validation_id_field", fields(
    "dcvi",
    {"name": "id", "type": "text"},
    {"name": "id", "type": "text", "pattern": ""},
    {"name": "id", "type": "number"},
    {"name": "id", "type": "text", "hidden": True, "required": False, "primaryKey": False},
    {"name": "id", "type": "text", "min": 5, "max": 20, "autogeneratePattern": "[a-z]{10}"},
    {"name": "id", "type": "text", "autogeneratePattern": "[A-Z]{10}"},
    {"name": "t", "type": "text", "primaryKey": True},
))

scenario("collection_validation_text_password_settings", fields(
    "dcvt",
    {"name": "t", "type": "text", "min": -1},
    {"name": "t", "type": "text", "min": 10, "max": 5},
    {"name": "t", "type": "text", "autogeneratePattern": "[a-z]{3}", "min": 5},
    {"name": "t", "type": "text", "autogeneratePattern": "[a-z]{3}", "pattern": "^[0-9]+$"},
    {"name": "t", "type": "text", "max": 10, "autogeneratePattern": "[a-z]{20}"},
    {"name": "t", "type": "text", "autogeneratePattern": "[a-z]+"},
    {"name": "t", "type": "text", "autogeneratePattern": "(ab|cd){3}"},
    {"name": "t", "type": "text", "autogeneratePattern": "\\d{5}"},
    {"name": "p", "type": "password", "cost": 3},
    {"name": "p", "type": "password", "cost": 40},
    {"name": "p", "type": "password", "min": -1},
    {"name": "p", "type": "password", "min": 80},
    {"name": "p", "type": "password", "max": 72},
    {"name": "p", "type": "password", "min": 10, "max": 5},
    {"name": "p", "type": "password", "pattern": "(["},
))

scenario("collection_validation_regex_errors", fields(
    "dcvr",
    *({"name": "t", "type": "text", "pattern": p} for p in (
        "([", "(?=x)", "(a", "a)", "*a", "a**", "\\q", "[z-a]", "(a)\\1", "a{2,1}", "a{1001}", "\\",
        "^[a-z]+$", "(?i)abc", "(?P<n>x)", "a{2}?")),
    {"name": "t", "type": "text", "autogeneratePattern": "(["},
    {"name": "t", "type": "text", "autogeneratePattern": "x{2,1}"},
))

scenario("collection_validation_other_settings", fields(
    "dcvo",
    {"name": "n", "type": "number", "min": 10, "max": 5},
    {"name": "n", "type": "number", "min": 1.5, "max": 1.25},
    {"name": "n", "type": "number", "min": 5, "max": 0},
    {"name": "n", "type": "number", "onlyInt": True, "min": 1.5},
    {"name": "s", "type": "select", "values": ["a"], "maxSelect": 5},
    {"name": "s", "type": "select", "values": ["a", ""]},
    {"name": "s", "type": "select", "values": ["a"], "maxSelect": -1},
    {"name": "s", "type": "select", "values": []},
    {"name": "f", "type": "file", "maxSelect": -1},
    {"name": "f", "type": "file", "maxSize": -1},
    {"name": "f", "type": "file", "thumbs": ["10x10", "bad", "0x0", ""]},
    {"name": "j", "type": "json", "maxSize": -1},
    {"name": "e", "type": "editor", "maxSize": -1},
    {"name": "e", "type": "email", "onlyDomains": ["a.com"], "exceptDomains": ["b.com"]},
    {"name": "e", "type": "email", "onlyDomains": ["A.COM", "a_b.com", "-a.com", "a.c", "localhost", "x.y.z.co"]},
    {"name": "u", "type": "url", "exceptDomains": ["x", ""]},
    {"name": "d", "type": "date", "min": "2030-01-01 00:00:00.000Z", "max": "2020-01-01 00:00:00.000Z"},
    {"name": "r", "type": "relation"},
    {"name": "r", "type": "relation", "collectionId": "_pb_users_auth_", "minSelect": 3, "maxSelect": 2},
    {"name": "r", "type": "relation", "collectionId": "_pb_users_auth_", "minSelect": 2},
    {"name": "r", "type": "relation", "collectionId": "_pb_users_auth_", "minSelect": -1},
    {"name": "a", "type": "autodate", "onCreate": True, "help": "x", "required": True},
))

scenario("collection_validation_relation_to_view", [
    create("dcvv_view", save="view", type="view", viewQuery="SELECT id FROM users"),
    create("dcvv_base", fields=[{"name": "r", "type": "relation", "collectionId": "{view}"}]),
    create("dcvv_view2", type="view", viewQuery="SELECT id FROM users", createRule="", updateRule="", deleteRule=None),
    create("dcvv_empty", type="view", viewQuery=""),
    create("dcvv_missing", type="view"),
    create("dcvv_multi", type="view", viewQuery="SELECT id FROM users; SELECT 1"),
])

# --------------------------------------------------------------------------- updates

scenario("collection_validation_update_fields", [
    create("dcvu_opt", fields=[{"name": "t", "type": "text", "max": 10, "hidden": True, "presentable": True,
                                "required": True}]),
    Step("GET", "/api/collections/dcvu_opt", save={"tid": "fields.1.id"}),
    patch("dcvu_opt", "type change", fields=[{"id": "{tid}", "name": "t", "type": "number"}]),
    patch("dcvu_opt", "type change with the id field",
          fields=[{"name": "id", "type": "text", "id": "text3208210256"}, {"id": "{tid}", "name": "t", "type": "number"}]),
    patch("dcvu_opt", "a resubmitted field starts from zero values", fields=[{"name": "t", "type": "text"}]),
    patch("dcvu_opt", "a bare id field on update",
          fields=[{"name": "id", "type": "text"}, {"name": "t", "type": "text"}]),
    patch("dcvu_opt", "fields emptied", fields=[]),
    patch("dcvu_opt", "system flag", system=True),
    patch("dcvu_opt", "rename the id field", fields=[{"id": "text3208210256", "name": "ident", "type": "text"}]),
    create("dcvu_sys", fields=[{"name": "s", "type": "text", "system": True}]),
    patch("dcvu_sys", "a system field resubmitted without the flag", fields=[{"name": "s", "type": "text"}]),
    create("dcvu_ad", fields=[{"name": "d", "type": "autodate", "onCreate": True, "system": True}]),
    patch("dcvu_ad", "system autodate settings", fields=[{"name": "d", "type": "autodate", "onUpdate": True,
                                                          "system": True}]),
    create("dcvu_idx", fields=[{"name": "t", "type": "text"}], indexes=["CREATE UNIQUE INDEX idx_dcvu ON dcvu_idx (id)"]),
    patch("dcvu_idx", "drop a unique index over the id field", indexes=[]),
])

scenario("collection_validation_auth_system_fields", [
    create("dcva_auth", type="auth"),
    patch("dcva_auth", "rename id", fields=[{"id": "text3208210256", "name": "ident", "type": "text"}]),
    patch("dcva_auth", "rename email", fields=[{"id": "email3885137012", "name": "mail", "type": "email"}]),
    patch("dcva_auth", "only a custom field: system fields come back", fields=[{"name": "x", "type": "text"}]),
    patch("dcva_auth", "password as text", fields=[{"name": "password", "type": "text"}]),
    patch("dcva_auth", "verified as number", fields=[{"name": "verified", "type": "number"}]),
    patch("dcva_auth", "email hidden", fields=[{"name": "email", "type": "email", "hidden": True}]),
    patch("dcva_auth", "tokenKey shown", fields=[{"name": "tokenKey", "type": "text", "hidden": False,
                                                  "required": False}]),
    patch("dcva_auth", "reserved names", fields=[{"name": "oldPassword", "type": "text"},
                                                 {"name": "passwordConfirm", "type": "text"}]),
    patch("dcva_auth", "drop every index", indexes=[]),
    Step("GET", "/api/collections/dcva_auth"),
    create("dcva_f", type="auth", fields=[{"name": "email", "type": "text"}]),
    create("dcva_g", type="auth", fields=[{"name": "verified", "type": "bool", "id": "custom_v"}]),
    create("dcva_base", fields=[{"name": "email", "type": "email"}, {"name": "passwordConfirm", "type": "text"}]),
])

scenario("collection_validation_auth_options", [
    create("dcvo_auth", type="auth"),
    patch("dcvo_auth", "token duration 5", authToken={"duration": 5}),
    patch("dcvo_auth", "token duration 0", authToken={"duration": 0}),
    patch("dcvo_auth", "token duration huge", authToken={"duration": 99999999999}),
    patch("dcvo_auth", "secret too short", authToken={"secret": "short"}),
    patch("dcvo_auth", "otp settings", otp={"enabled": True, "duration": 5, "length": 2}),
    patch("dcvo_auth", "mfa duration", mfa={"enabled": True, "duration": 5}),
    patch("dcvo_auth", "mfa rule", mfa={"enabled": True, "rule": "nope = 1"}, otp={"enabled": True}),
    patch("dcvo_auth", "mfa with one method", mfa={"enabled": True}),
    patch("dcvo_auth", "blank template", verificationTemplate={"subject": "", "body": ""}),
    patch("dcvo_auth", "blank alert subject", authAlert={"emailTemplate": {"subject": ""}}),
    patch("dcvo_auth", "identity field missing", passwordAuth={"identityFields": ["nope"]}),
    patch("dcvo_auth", "identity field not unique", fields=[{"name": "nick", "type": "text"}],
          passwordAuth={"identityFields": ["email", "nick"]}),
    patch("dcvo_auth", "no identity fields, password auth off", passwordAuth={"enabled": False, "identityFields": []}),
    patch("dcvo_auth", "no identity fields, password auth on", passwordAuth={"enabled": True, "identityFields": []}),
    patch("dcvo_auth", "empty manageRule", manageRule=""),
    patch("dcvo_auth", "invalid authRule", authRule="nope = 1"),
])

# --------------------------------------------------------------------------- import

scenario("collection_validation_import_errors", [
    failing_import("option of the wrong type", {"name": "dcvx_a", "fields": [{"name": "t", "type": "text", "min": 1.5}]}),
    failing_import("bool of the wrong type", {"name": "dcvx_b", "fields": [{"name": "t", "type": "text", "required": "y"}]}),
    failing_import("list of the wrong type", {"name": "dcvx_c", "fields": [{"name": "s", "type": "select", "values": "a"}]}),
    failing_import("list item of the wrong type", {"name": "dcvx_c", "fields": [{"name": "s", "type": "select",
                                                                                "values": [1]}]}),
    failing_import("float option", {"name": "dcvx_d", "fields": [{"name": "n", "type": "number", "min": "a"}]}),
    failing_import("second field", {"name": "dcvx_e", "fields": [{"name": "a", "type": "text"},
                                                                 {"name": "b", "type": "bool", "hidden": "x"}]}),
    failing_import("unknown field type", {"name": "dcvx_f", "fields": [{"name": "a", "type": "nope"}]}),
    failing_import("collection name", {"name": 5}),
    failing_import("rule", {"name": "dcvx_g", "listRule": 5}),
    failing_import("auth option", {"name": "dcvx_h", "type": "auth", "authToken": {"duration": "x"}}),
    failing_import("second collection", {"name": "dcvx_i"}, {"name": "dcvx_j", "fields": [
        {"name": "t", "type": "text", "max": True}]}),
    failing_import("indexes", {"name": "dcvx_k", "indexes": "x"}),
    failing_import("fields object", {"name": "dcvx_l", "fields": {"a": 1}}),
    failing_import("settings error", {"name": "dcvx_m", "fields": [{"name": "t", "type": "text", "min": -1}]}),
    failing_import("autodate error", {"name": "dcvx_n", "fields": [{"name": "a", "type": "autodate"}]}),
    failing_import("view rule", {"name": "dcvx_o", "type": "view", "viewQuery": "SELECT id FROM users",
                                 "createRule": ""}),
    failing_import("regex", {"name": "dcvx_p", "fields": [{"name": "t", "type": "text", "pattern": "(a"}]}),
], normalise=_mask_go_json)

SCENARIO_IDS = [s.name for s in SCENARIOS]
assert len(set(SCENARIO_IDS)) == len(SCENARIO_IDS)


@pytest.mark.parametrize("sc", SCENARIOS, ids=SCENARIO_IDS)
async def test_same_as_pocketbase(sc: Scenario, engine: str, client: httpx.AsyncClient,
                                  su_headers: dict[str, str], pocketbase: PocketBase,
                                  pocketbase_runs: dict[str, Any], request: pytest.FixtureRequest) -> None:
    await assert_same_as_pocketbase(sc, pocketbase, pocketbase_runs, client, su_headers, engine, request)

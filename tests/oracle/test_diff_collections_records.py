"""Differential tests: collections and records API, keepbase vs the real PocketBase 0.40 binary.

Every scenario is a list of HTTP steps.  They run once against a shared PocketBase process and
against keepbase on SQLite and on PostgreSQL; status codes and normalised JSON bodies must match
(see ``harness.py`` for what normalisation replaces).  Collection names are unique per scenario
so the shared PocketBase never conflicts, and the harness deletes them afterwards.

Deliberate differences (keepbase answers 400 where PocketBase silently coerces an unparseable
date, a non-numeric number, a non-bool bool, or invalid JSON in a multipart ``json`` part) are
asserted per server with ``Step.pb`` / ``Step.kb``.  Undocumented differences are keepbase bugs:
their scenarios carry ``xfail(strict=True)`` with the exact difference, so a fix shows up as XPASS.

Set ``KB_ORACLE_REPORT=/path/report.jsonl`` to get every difference (and both normalised bodies of each
differing step) appended as JSON lines.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import httpx
import pytest

from tests.oracle.harness import (
    GUEST,
    ORACLE_MARKS,
    Expect,
    PocketBase,
    Scenario,
    Step,
    compare,
    normalise_results,
    pocketbase_run,
    run_async,
)

pytestmark = ORACLE_MARKS

# --------------------------------------------------------------------------- helpers


def new_collection(name: str, save: str | None = None, label: str = "", **payload: Any) -> Step:
    body = {"name": name, **payload}
    return Step("POST", "/api/collections", json=body, save={save: "id"} if save else {},
                label=label or f"create collection {name}")


def setup_collection(name: str, save: str | None = None, **payload: Any) -> Step:
    """Create a collection for a records scenario; only the status is compared (the collection
    JSON itself is covered by the collection_* scenarios)."""
    step = new_collection(name, save, **payload)
    step.status_only = True
    return step


def open_rules() -> dict[str, str]:
    return {"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""}


def rec(coll: str, rid: str = "") -> str:
    return f"/api/collections/{coll}/records" + (f"/{rid}" if rid else "")


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)

SCENARIOS: list[Scenario] = []


def scenario(name: str, steps: list[Step], **kw: Any) -> None:
    SCENARIOS.append(Scenario(name=name, steps=steps, **kw))


# --------------------------------------------------------------------------- health and routing

scenario("health_and_routes", [
    Step("GET", "/api/health", auth=GUEST),
    Step("GET", "/api/health", label="health as superuser"),
    Step("GET", "/api/health?fields=message", auth=GUEST),
    Step("HEAD", "/api/health", auth=GUEST),
    Step("GET", "/api/health/", auth=GUEST, label="trailing slash"),
    Step("GET", "/api/nope", auth=GUEST),
    Step("POST", "/api/nope", json={}, auth=GUEST),
    Step("DELETE", "/api/health", auth=GUEST, label="wrong method"),
    Step("GET", "/foo/bar", auth=GUEST),
    Step("GET", "/api/collections/", label="collections trailing slash"),
])

# --------------------------------------------------------------------------- collections

ALL_TYPES_BARE = [
    {"name": "t", "type": "text"},
    {"name": "n", "type": "number"},
    {"name": "b", "type": "bool"},
    {"name": "e", "type": "email"},
    {"name": "u", "type": "url"},
    {"name": "ed", "type": "editor"},
    {"name": "d", "type": "date"},
    {"name": "created", "type": "autodate", "onCreate": True},
    {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
    {"name": "s1", "type": "select", "values": ["a", "b"]},
    {"name": "sm", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
    {"name": "r1", "type": "relation", "collectionId": "{c_target}"},
    {"name": "rm", "type": "relation", "collectionId": "{c_target}", "maxSelect": 5},
    {"name": "f1", "type": "file"},
    {"name": "fm", "type": "file", "maxSelect": 3},
    {"name": "j", "type": "json"},
    {"name": "g", "type": "geoPoint"},
    {"name": "p", "type": "password"},
]

ALL_TYPES_FULL = [
    {"name": "t", "type": "text", "required": True, "min": 2, "max": 20, "pattern": "^[a-z ]+$",
     "presentable": True, "help": "a title"},
    {"name": "slug", "type": "text", "autogeneratePattern": "[a-z]{8}", "hidden": True},
    {"name": "n", "type": "number", "min": -5, "max": 100.5, "onlyInt": False, "required": True},
    {"name": "ni", "type": "number", "onlyInt": True},
    {"name": "b", "type": "bool", "required": True},
    {"name": "e", "type": "email", "onlyDomains": ["example.com"]},
    {"name": "e2", "type": "email", "exceptDomains": ["bad.com"]},
    {"name": "u", "type": "url", "onlyDomains": ["example.com"]},
    {"name": "ed", "type": "editor", "maxSize": 1000, "convertURLs": True},
    {"name": "d", "type": "date", "min": "2020-01-01 00:00:00.000Z", "max": "2030-01-01 00:00:00.000Z"},
    {"name": "ac", "type": "autodate", "onCreate": True, "onUpdate": False},
    {"name": "s1", "type": "select", "values": ["x", "y"], "maxSelect": 1, "required": True},
    {"name": "sm", "type": "select", "values": ["a", "b", "c", "d"], "maxSelect": 2},
    {"name": "r1", "type": "relation", "collectionId": "{c_target}", "cascadeDelete": True,
     "required": True, "maxSelect": 1},
    {"name": "rm", "type": "relation", "collectionId": "{c_target}", "minSelect": 1, "maxSelect": 3},
    {"name": "f1", "type": "file", "maxSize": 1024, "mimeTypes": ["image/png"], "thumbs": ["10x10", "0x20t"],
     "protected": True, "maxSelect": 1},
    {"name": "fm", "type": "file", "maxSelect": 4, "maxSize": 2048},
    {"name": "j", "type": "json", "maxSize": 200},
    {"name": "g", "type": "geoPoint", "required": True},
    {"name": "p", "type": "password", "min": 6, "max": 40, "pattern": "^\\S+$", "cost": 5},
]

scenario("collection_every_field_type_defaults", [
    new_collection("dcat_target", save="c_target"),
    new_collection("dcat_bare", fields=ALL_TYPES_BARE),
    Step("GET", "/api/collections/dcat_bare"),
    Step("GET", "/api/collections/dcat_target", label="view target (id field only)"),
])

scenario("collection_every_field_type_options", [
    new_collection("dcaf_target", save="c_target"),
    new_collection("dcaf_full", save="c_full", fields=ALL_TYPES_FULL,
                   listRule="", viewRule="t != ''", createRule=None, updateRule="@request.auth.id != ''",
                   deleteRule=None),
    Step("GET", "/api/collections/{c_full}", label="view by id"),
])

scenario("collection_indexes", [
    new_collection("dcix_main", fields=[{"name": "t", "type": "text"}, {"name": "n", "type": "number"}],
                   indexes=["CREATE INDEX idx_dcix_t ON dcix_main (t)",
                            "CREATE UNIQUE INDEX `idx_dcix_n` ON `dcix_main` (`n`) WHERE n > 0"]),
    Step("PATCH", "/api/collections/dcix_main",
         json={"indexes": ["create index idx_dcix_tn on dcix_main (t, n DESC)"]}, label="replace indexes"),
    Step("GET", "/api/collections/dcix_main"),
])

scenario("collection_auth_create", [
    new_collection("dcau_users", type="auth", fields=[{"name": "nick", "type": "text"}]),
    Step("GET", "/api/collections/dcau_users"),
])

scenario("collection_view_create", [
    new_collection("dcvw_base", fields=[{"name": "title", "type": "text"}, {"name": "views", "type": "number"}]),
    new_collection("dcvw_plain", type="view", listRule="", viewRule="",
                   viewQuery="SELECT id, title, views FROM dcvw_base"),
    new_collection("dcvw_badview", type="view", viewQuery="SELECT title FROM dcvw_base"),
    Step("POST", rec("dcvw_plain"), json={"title": "x"}, label="create record in view"),
])

def _pg_missing_table(s: str) -> str:
    """keepbase on PostgreSQL keeps the server's own wording of a missing table (documented in
    docs/compatibility.md, "PostgreSQL engine"); map it to SQLite's to compare the rest."""
    return re.sub(r'^Invalid query - relation "(\w+)" does not exist\.$',
                  r"Invalid query - SQL logic error: no such table: main.\1 (1).", s)


scenario("collection_view_query_unknown_table", [
    new_collection("dcvt_nope", type="view", viewQuery="SELECT id FROM dcvt_missing_table"),
], normalise=_pg_missing_table)

scenario("collection_view_inferred_types", [
    new_collection("dcvi_base", fields=[{"name": "title", "type": "text"}, {"name": "views", "type": "number"}]),
    new_collection("dcvi_stats", type="view", listRule="", viewRule="",
                   viewQuery="SELECT id, (views * 2) AS doubled, count(id) AS cnt FROM dcvi_base GROUP BY id"),
])

scenario("collection_scaffolds", [
    Step("GET", "/api/collections/meta/scaffolds"),
    Step("GET", "/api/collections/meta/scaffolds", auth=GUEST, label="scaffolds as guest"),
])

scenario("collection_system_auth_collections", [
    Step("GET", "/api/collections/_superusers"),
    Step("GET", "/api/collections/pbc_3142635823", label="_superusers by id"),
    Step("GET", "/api/collections/users"),
    Step("GET", "/api/collections?filter=name='users'&fields=id,name,type"),
])

scenario("collection_system_base_collections", [
    Step("GET", "/api/collections?filter=(system=true%26%26type='base')&sort=name"),
])

scenario("collection_name_errors", [
    new_collection("dcve_dup"),
    new_collection("dcve_dup"),
    new_collection("DCVE_DUP"),
    new_collection("bad name!"),
    new_collection(""),
    Step("POST", "/api/collections", json={"type": "base"}, label="missing name"),
    new_collection("users", label="existing users"),
    new_collection("dcve_type", type="weird"),
    Step("POST", "/api/collections", content=b'{"name": "dcve_json"', headers={"Content-Type": "application/json"},
         label="malformed json"),
    Step("POST", "/api/collections", json={"name": "dcve_guest"}, auth=GUEST, label="guest create"),
    Step("GET", "/api/collections", auth=GUEST, label="guest list"),
])

scenario("collection_name_via_error", [
    new_collection("dcvv_a_via_b"),
])

scenario("collection_field_and_rule_errors", [
    new_collection("dcfe_dup"),
    new_collection("dcfe_rel", fields=[{"name": "r", "type": "relation", "collectionId": "nope_missing"}]),
    new_collection("dcfe_rel2", fields=[{"name": "r", "type": "relation", "collectionId": "dcfe_dup"}]),
    new_collection("dcfe_ftype", fields=[{"name": "t", "type": "nope"}]),
    new_collection("dcfe_fres", fields=[{"name": "expand", "type": "text"}]),
    new_collection("dcfe_fbad", fields=[{"name": "bad-name", "type": "text"}]),
    new_collection("dcfe_sel", fields=[{"name": "s", "type": "select"}]),
    new_collection("dcfe_rule", fields=[{"name": "t", "type": "text"}], listRule="nofield = 1"),
    new_collection("dcfe_rule2", listRule="(id = '1'"),
])

scenario("collection_duplicate_field_names", [
    new_collection("dcfd_main", fields=[{"name": "t", "type": "text"}, {"name": "t", "type": "number"}]),
])

scenario("collection_index_errors", [
    new_collection("dcie_idx", fields=[{"name": "t", "type": "text"}], indexes=["CREATE INDEX foo"]),
    new_collection("dcie_idx2", fields=[{"name": "t", "type": "text"}], indexes=["not sql at all"]),
])

scenario("collection_index_unknown_column", [
    new_collection("dciu_main", fields=[{"name": "t", "type": "text"}],
                   indexes=["CREATE INDEX idx_dciu ON dciu_main (nope)"]),
])

scenario("collection_duplicate_index_name", [
    new_collection("dcdi_main", fields=[{"name": "t", "type": "text"}],
                   indexes=["CREATE INDEX idx_same ON dcdi_main (t)", "CREATE INDEX idx_same ON dcdi_main (id)"]),
])

scenario("collection_view_list_update_delete", [
    new_collection("dcc_main", save="c_main", fields=[{"name": "title", "type": "text"}], listRule="",
                   viewRule=None),
    Step("GET", "/api/collections/dcc_main"),
    Step("GET", "/api/collections/{c_main}"),
    Step("GET", "/api/collections?filter=name='dcc_main'"),
    Step("GET", "/api/collections?filter=name~'dcc_'&fields=name,type,system"),
    Step("GET", "/api/collections?filter=name='dcc_main'&skipTotal=1&perPage=5"),
    Step("GET", "/api/collections?sort=nope", label="bad sort field"),
    Step("GET", "/api/collections?filter=nope='x'", label="bad filter field"),
    Step("GET", "/api/collections/dcc_nope", label="unknown collection"),
    Step("GET", "/api/collections/dcc_main", auth=GUEST, label="guest view"),
    Step("PATCH", "/api/collections/dcc_main",
         json={"viewRule": "", "createRule": "title != ''",
               "fields": [{"name": "title", "type": "text", "required": True},
                          {"name": "count", "type": "number", "onlyInt": True}]},
         label="update rules and fields"),
    Step("PATCH", "/api/collections/dcc_main", json={"listRule": "nofield = 2"}, label="invalid rule"),
    Step("PATCH", "/api/collections/dcc_main", content=b"{", headers={"Content-Type": "application/json"},
         label="malformed json patch"),
    Step("PATCH", "/api/collections/dcc_nope", json={"listRule": ""}, label="patch unknown"),
    Step("POST", rec("dcc_main"), json={"title": "one", "count": 3}),
    Step("PATCH", "/api/collections/dcc_main", json={"name": "dcc_renamed"}, label="rename"),
    Step("GET", "/api/collections/dcc_main", label="old name gone"),
    Step("GET", rec("dcc_renamed"), label="records survive the rename"),
    Step("DELETE", "/api/collections/dcc_renamed/truncate"),
    Step("GET", rec("dcc_renamed"), label="empty after truncate"),
    Step("DELETE", "/api/collections/dcc_renamed", auth=GUEST, label="guest delete"),
    Step("DELETE", "/api/collections/dcc_renamed"),
    Step("DELETE", "/api/collections/dcc_renamed", label="delete again"),
    Step("DELETE", "/api/collections/_superusers", label="delete system collection"),
])

scenario("collection_type_change", [
    new_collection("dctc_main"),
    Step("PATCH", "/api/collections/dctc_main", json={"type": "auth"}, label="type change base -> auth"),
])

scenario("collection_delete_referenced", [
    new_collection("dcdr_target", save="c_target"),
    setup_collection("dcdr_ref", fields=[{"name": "r", "type": "relation", "collectionId": "{c_target}"}]),
    Step("DELETE", "/api/collections/dcdr_target", label="referenced"),
    Step("DELETE", "/api/collections/dcdr_ref"),
    Step("DELETE", "/api/collections/dcdr_target"),
])

# --------------------------------------------------------------------------- records: CRUD

REC_FIELDS = [
    {"name": "t", "type": "text"},
    {"name": "n", "type": "number"},
    {"name": "b", "type": "bool"},
    {"name": "e", "type": "email"},
    {"name": "u", "type": "url"},
    {"name": "ed", "type": "editor"},
    {"name": "d", "type": "date"},
    {"name": "created", "type": "autodate", "onCreate": True},
    {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
    {"name": "s1", "type": "select", "values": ["a", "b"]},
    {"name": "sm", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
    {"name": "r1", "type": "relation", "collectionId": "{c_target}"},
    {"name": "rm", "type": "relation", "collectionId": "{c_target}", "maxSelect": 5},
    {"name": "f1", "type": "file"},
    {"name": "fm", "type": "file", "maxSelect": 3},
    {"name": "j", "type": "json"},
    {"name": "g", "type": "geoPoint"},
    {"name": "p", "type": "password"},
    {"name": "h", "type": "text", "hidden": True},
]

FULL_RECORD = {
    "t": "hello", "n": 12.5, "b": True, "e": "a@b.co", "u": "https://example.com",
    "ed": "<p>Hi <b>there</b></p>", "d": "2024-01-02 03:04:05.678Z", "s1": "a", "sm": ["a", "b"],
    "r1": "{t1}", "rm": ["{t1}", "{t2}"], "j": {"z": 1, "a": {"y": 2, "b": [1, 2]}},
    "g": {"lon": 23.32, "lat": 42.69}, "p": "secret123", "h": "hidden value",
    "created": "2001-01-01 00:00:00.000Z", "unknown": "ignored", "collectionName": "x", "expand": {},
}

scenario("records_crud_every_type", [
    setup_collection("drc_target", save="c_target", listRule="", viewRule="", createRule=""),
    setup_collection("drc_main", fields=REC_FIELDS, **open_rules()),
    Step("POST", rec("drc_target"), json={}, save={"t1": "id"}),
    Step("POST", rec("drc_target"), json={}, save={"t2": "id"}),
    Step("POST", rec("drc_main"), json={}, label="create empty", save={"r0": "id"}),
    Step("POST", rec("drc_main"), json=FULL_RECORD, label="create full", save={"r1": "id"}),
    Step("GET", rec("drc_main", "{r1}"), label="view as superuser (sees hidden)"),
    Step("GET", rec("drc_main", "{r1}"), auth=GUEST, label="view as guest (no hidden)"),
    Step("GET", rec("drc_main"), auth=GUEST, label="list as guest"),
    Step("PATCH", rec("drc_main", "{r1}"),
         json={"t": "changed", "n": -3, "b": False, "sm": ["c", "c", "a"], "s1": ["a", "b"], "rm": ["{t2}"],
               "j": "[1,2]", "g": {"lon": -1.5}, "d": "2024-01-02T03:04:05+05:30", "e": "", "r1": ""},
         label="update"),
    Step("PATCH", rec("drc_main", "{r1}"), json={"j": "{bad", "d": "2024-01-02"}, label="update json string"),
    Step("PATCH", rec("drc_main", "{r1}"), json={"j": None, "h": "guest write"}, auth=GUEST,
         label="update as guest (hidden dropped)"),
    Step("GET", rec("drc_main", "{r1}")),
    Step("PATCH", rec("drc_main", "{r1}"), json={"id": "abcdefghijklmno"}, label="id change"),
    Step("DELETE", rec("drc_main", "{r1}")),
    Step("GET", rec("drc_main", "{r1}"), label="view deleted"),
    Step("DELETE", rec("drc_main", "{r1}"), label="delete again"),
    Step("POST", rec("drc_main"), json={"id": "customid0000001", "t": "x"}, label="custom id"),
    Step("POST", rec("drc_main"), json={"id": "customid0000001"}, label="duplicate custom id"),
    Step("POST", rec("drc_main"), json={"id": "short"}, label="short custom id"),
    Step("POST", rec("drc_main"), json={"id": "UPPERCASEID0001"}, label="bad custom id"),
    Step("DELETE", rec("drc_target", "{t1}"), label="delete relation target (non-required, not cascade)"),
    Step("GET", rec("drc_main", "{r0}")),
])

scenario("records_expand", [
    setup_collection("drx_target", save="c_target", **open_rules(), fields=[{"name": "name", "type": "text"}]),
    setup_collection("drx_main", **open_rules(), fields=[
        {"name": "r1", "type": "relation", "collectionId": "{c_target}", "maxSelect": 1},
        {"name": "rm", "type": "relation", "collectionId": "{c_target}", "maxSelect": 5}]),
    Step("POST", rec("drx_target"), json={"name": "one"}, save={"t1": "id"}),
    Step("POST", rec("drx_target"), json={"name": "two"}, save={"t2": "id"}),
    Step("POST", rec("drx_main"), json={}),
    Step("POST", rec("drx_main"), json={"r1": "{t1}", "rm": ["{t2}", "{t1}"]}, save={"m": "id"}),
    Step("GET", rec("drx_main") + "?expand=r1,rm", label="list with expand"),
    Step("GET", rec("drx_main", "{m}") + "?expand=r1&fields=id,expand.r1.name", label="view with expand+fields"),
    Step("GET", rec("drx_main", "{m}") + "?expand=nope", label="unknown expand path"),
])

scenario("records_multipart_and_urlencoded", [
    setup_collection("drm_main", **open_rules(), fields=[
        {"name": "t", "type": "text"}, {"name": "n", "type": "number"}, {"name": "b", "type": "bool"},
        {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
        {"name": "j", "type": "json"}]),
    Step("POST", rec("drm_main"), data={"t": "123", "n": "007", "b": "false", "tags": ["a", "b"], "j": '{"a":1}'},
         multipart=True, label="multipart inference", save={"m1": "id"}),
    Step("POST", rec("drm_main"), data={"@jsonPayload": '{"t":"From payload","tags":["a","c"]}', "n": "5"},
         multipart=True, label="multipart @jsonPayload"),
    Step("POST", rec("drm_main"), data={"t": "url encoded", "n": "2.5", "b": "true", "tags": "c"},
         label="urlencoded"),
    Step("PATCH", rec("drm_main", "{m1}"), data={"t": "patched", "tags+": "c"}, multipart=True,
         label="multipart patch with modifier"),
    Step("POST", rec("drm_main"), data={"@jsonPayload": "[1]"}, multipart=True, label="non-object @jsonPayload"),
    Step("GET", rec("drm_main") + "?sort=t&fields=t,n,b,tags,j"),
])

scenario("records_files", [
    setup_collection("drfi_main", **open_rules(), fields=[
        {"name": "t", "type": "text"}, {"name": "f1", "type": "file", "maxSize": 100, "mimeTypes": ["image/png"]},
        {"name": "fm", "type": "file", "maxSelect": 2}]),
    Step("POST", rec("drfi_main"), data={"t": "files"},
         files=[("f1", ("My Photo (1).png", PNG, "image/png")), ("fm", ("doc.txt", b"hello", "text/plain")),
                ("fm", ("small.png", PNG, "image/png"))], label="multipart with files", save={"m1": "id"}),
    Step("PATCH", rec("drfi_main", "{m1}"), data={"t": "more"},
         files=[("fm+", ("more.txt", b"more", "text/plain"))], label="append file beyond maxSelect"),
    Step("POST", rec("drfi_main"), data={"t": "x"}, files=[("f1", ("big.png", PNG + b"x" * 200, "image/png"))],
         label="file too big"),
    Step("POST", rec("drfi_main"), data={"t": "x"}, files=[("f1", ("doc.txt", b"hello", "text/plain"))],
         label="file bad mime"),
    Step("POST", rec("drfi_main"), json={"f1": "not-an-existing-file.txt"}, label="plain string for file"),
    Step("GET", rec("drfi_main") + "?fields=t,f1,fm"),
], normalise=lambda s: re.sub(r"_[a-z0-9]{10}\.", "_<rand>.", s))  # stored names in messages

# --------------------------------------------------------------------------- records: listing

PAGING_SETUP = [
    setup_collection("drp_items", fields=[{"name": "t", "type": "text"}, {"name": "n", "type": "number"}],
                   **open_rules()),
    *[Step("POST", rec("drp_items"), json={"t": t, "n": n}) for t, n in
      [("b", 1), ("a", 2), ("c", 3), ("a", 4), ("b", 5)]],
]

scenario("records_paging", [
    *PAGING_SETUP,
    Step("GET", rec("drp_items") + "?perPage=2"),
    Step("GET", rec("drp_items") + "?perPage=2&page=3"),
    Step("GET", rec("drp_items") + "?perPage=2&page=10", label="page past end"),
    Step("GET", rec("drp_items") + "?perPage=0"),
    Step("GET", rec("drp_items") + "?perPage=-5&page=-1"),
    Step("GET", rec("drp_items") + "?perPage=5000", label="perPage clamped"),
    Step("GET", rec("drp_items") + "?perPage=1000"),
    Step("GET", rec("drp_items") + "?skipTotal=1&perPage=2"),
    Step("GET", rec("drp_items") + "?skipTotal=true&page=4&perPage=2"),
    Step("GET", rec("drp_items") + "?skipTotal=False"),
    Step("GET", rec("drp_items") + "?skipTotal=maybe"),
    Step("GET", rec("drp_items") + "?page=abc"),
    Step("GET", rec("drp_items") + "?perPage=1.5"),
    Step("GET", rec("drp_items") + "?page="),
])

scenario("records_sort_and_filter", [
    setup_collection("drs_items", fields=[{"name": "t", "type": "text"}, {"name": "n", "type": "number"}],
                   **open_rules()),
    *[Step("POST", rec("drs_items"), json={"t": t, "n": n}) for t, n in
      [("b", 1), ("a", 2), ("c", 3), ("a", 4), ("b", 5)]],
    Step("GET", rec("drs_items") + "?sort=-n&fields=t,n"),
    Step("GET", rec("drs_items") + "?sort=t,-n&fields=t,n"),
    Step("GET", rec("drs_items") + "?sort=%2Bt,n&fields=t,n", label="explicit + prefix"),
    Step("GET", rec("drs_items") + "?sort=nope"),
    Step("GET", rec("drs_items") + "?filter=n>2%20%26%26%20t!='c'&fields=t,n"),
    Step("GET", rec("drs_items") + "?filter=(t='a'||t='c')&sort=-n&fields=n"),
    Step("GET", rec("drs_items") + "?filter=nope=1"),
    Step("GET", rec("drs_items") + "?filter=n>"),
    Step("GET", rec("drs_items") + "?filter=@request.auth.id=''", auth=GUEST,
         label="guest filter by @request"),
    Step("GET", rec("drs_items") + "?filter=@collection.drs_items.n>0", auth=GUEST,
         label="guest filter by @collection"),
])

DRF_SETUP = [
    setup_collection("drf_items", fields=[{"name": "t", "type": "text"}, {"name": "n", "type": "number"},
                                          {"name": "body", "type": "editor"},
                                          {"name": "j", "type": "json"}], **open_rules()),
    Step("POST", rec("drf_items"), json={"t": "x", "n": 1, "j": {"a": {"b": 1, "c": 2}},
                                         "body": "<p>Hello <b>world</b> this is a long body text</p>"},
         save={"r1": "id"}),
]

scenario("records_fields_nested_json", [
    *DRF_SETUP,
    Step("GET", rec("drf_items") + "?fields=j.a.b,t"),
    Step("GET", rec("drf_items", "{r1}") + "?fields=j.a"),
])

scenario("records_fields_excerpt_ellipsis", [
    *DRF_SETUP,
    Step("GET", rec("drf_items") + "?fields=body:excerpt(20,true)"),
    Step("GET", rec("drf_items") + "?fields=t,body:excerpt(10,true),n"),
])

scenario("records_fields_projection", [
    setup_collection("drf_items", fields=[{"name": "t", "type": "text"}, {"name": "n", "type": "number"},
                                        {"name": "body", "type": "editor"},
                                        {"name": "j", "type": "json"}], **open_rules()),
    Step("POST", rec("drf_items"), json={"t": "x", "n": 1, "j": {"a": {"b": 1, "c": 2}},
                                         "body": "<p>Hello <b>world</b> this is a long body text</p>"},
         save={"r1": "id"}),
    Step("GET", rec("drf_items") + "?fields=id,n"),
    Step("GET", rec("drf_items") + "?fields=*"),
    Step("GET", rec("drf_items") + "?fields=nope"),
    Step("GET", rec("drf_items") + "?fields=body:excerpt(20)"),
    Step("GET", rec("drf_items") + "?fields=body:excerpt(5),t"),
    Step("GET", rec("drf_items", "{r1}") + "?fields=t,collectionName"),
    Step("POST", rec("drf_items") + "?fields=t", json={"t": "y"}, label="create with fields"),
    Step("PATCH", rec("drf_items", "{r1}") + "?fields=n", json={"n": 2}, label="update with fields"),
    Step("GET", rec("drf_items") + "?fields=", label="empty fields"),
])

scenario("records_modifiers", [
    setup_collection("drmod_target", save="c_target", **open_rules()),
    setup_collection("drmod_main", **open_rules(), fields=[
        {"name": "views", "type": "number", "min": 0},
        {"name": "tags", "type": "select", "values": ["a", "b", "c", "d"], "maxSelect": 4},
        {"name": "one", "type": "select", "values": ["a", "b"]},
        {"name": "rel", "type": "relation", "collectionId": "{c_target}", "maxSelect": 5}]),
    Step("POST", rec("drmod_target"), json={}, save={"x1": "id"}),
    Step("POST", rec("drmod_target"), json={}, save={"x2": "id"}),
    Step("POST", rec("drmod_main"), json={"views": 10, "tags": ["a", "b"], "rel": ["{x1}"]}, save={"m": "id"}),
    Step("PATCH", rec("drmod_main", "{m}"), json={"views+": 5}),
    Step("PATCH", rec("drmod_main", "{m}"), json={"views-": 3}),
    Step("PATCH", rec("drmod_main", "{m}"), json={"views-": 100}, label="views- below min"),
    Step("PATCH", rec("drmod_main", "{m}"), json={"tags+": "c"}),
    Step("PATCH", rec("drmod_main", "{m}"), json={"+tags": ["d"]}),
    Step("PATCH", rec("drmod_main", "{m}"), json={"tags-": ["b"]}),
    Step("PATCH", rec("drmod_main", "{m}"), json={"tags-": "a"}),
    Step("PATCH", rec("drmod_main", "{m}"), json={"tags": ["a"], "tags+": "c"}, label="plain + modifier"),
    Step("PATCH", rec("drmod_main", "{m}"), json={"tags+": ["b", "b", "a"]}, label="append duplicates"),
    Step("PATCH", rec("drmod_main", "{m}"), json={"one+": "b"}, label="single select append"),
    Step("PATCH", rec("drmod_main", "{m}"), json={"rel+": "{x2}"}),
    Step("PATCH", rec("drmod_main", "{m}"), json={"rel-": ["{x1}"]}),
    Step("PATCH", rec("drmod_main", "{m}"), json={"+rel": "{x1}"}),
    Step("PATCH", rec("drmod_main", "{m}"), json={"tags+": "zzz"}, label="append invalid value"),
    Step("PATCH", rec("drmod_main", "{m}"), json={"views+": "2"}, label="numeric string modifier"),
    Step("GET", rec("drmod_main", "{m}")),
])

# --------------------------------------------------------------------------- records: validation

VAL_FIELDS = [
    {"name": "t", "type": "text", "required": True, "min": 3, "max": 5, "pattern": "^[a-z]+$"},
    {"name": "n", "type": "number", "required": True, "min": 1, "max": 10, "onlyInt": True},
    {"name": "b", "type": "bool", "required": True},
    {"name": "e", "type": "email", "required": True, "onlyDomains": ["example.com"]},
    {"name": "e2", "type": "email", "exceptDomains": ["bad.com"]},
    {"name": "u", "type": "url", "required": True},
    {"name": "u2", "type": "url", "onlyDomains": ["example.com"]},
    {"name": "ed", "type": "editor", "required": True, "maxSize": 20},
    {"name": "d", "type": "date", "required": True, "min": "2020-01-01 00:00:00.000Z",
     "max": "2030-01-01 00:00:00.000Z"},
    {"name": "s1", "type": "select", "required": True, "values": ["a", "b"]},
    {"name": "sm", "type": "select", "values": ["a", "b", "c"], "maxSelect": 2},
    {"name": "r", "type": "relation", "required": True, "collectionId": "{c_target}"},
    {"name": "rm", "type": "relation", "collectionId": "{c_target}", "maxSelect": 2},
    {"name": "j", "type": "json", "required": True, "maxSize": 20},
    {"name": "g", "type": "geoPoint", "required": True},
    {"name": "p", "type": "password", "required": True, "min": 5, "max": 8},
    {"name": "code", "type": "text"},
]

VALID = {"t": "abc", "n": 5, "b": True, "e": "x@example.com", "e2": "y@good.com", "u": "https://a.io",
         "u2": "https://example.com/x", "ed": "<p>ok</p>", "d": "2024-06-01 00:00:00.000Z", "s1": "a",
         "sm": ["a"], "r": "{v1}", "rm": ["{v1}", "{v2}"], "j": {"k": 1}, "g": {"lon": 1, "lat": 2},
         "p": "secret"}



def invalid(label: str, **override: Any) -> Step:
    return Step("POST", rec("drv_main"), json={**VALID, **override}, label=label)


VALIDATION_SETUP = [
    setup_collection("drv_target", save="c_target", **open_rules()),
    setup_collection("drv_main", fields=VAL_FIELDS, **open_rules(),
                   indexes=["CREATE UNIQUE INDEX idx_drv_code ON drv_main (code) WHERE code != ''"]),
    Step("POST", rec("drv_target"), json={}, save={"v1": "id"}),
    Step("POST", rec("drv_target"), json={}, save={"v2": "id"}),
    Step("POST", rec("drv_target"), json={}, save={"v3": "id"}),
]

scenario("records_validation_required", [
    *VALIDATION_SETUP,
    Step("POST", rec("drv_main"), json={}, label="everything missing"),
    Step("POST", rec("drv_main"), json={"t": "", "n": 0, "b": False, "e": "", "u": "", "ed": "", "d": "",
                                        "s1": "", "r": "", "j": None, "g": {"lon": 0, "lat": 0}, "p": ""},
         label="everything empty"),
    Step("POST", rec("drv_main"), json={"j": {}}, label="json empty object"),
    Step("POST", rec("drv_main"), json={"j": []}, label="json empty array"),
    Step("POST", rec("drv_main"), json={"j": ""}, label="json empty string"),
    invalid("valid record"),
])

scenario("records_validation_text_number", [
    *VALIDATION_SETUP,
    invalid("text too short", t="ab"),
    invalid("text too long", t="abcdef"),
    invalid("text bad pattern", t="ABC"),
    invalid("text unicode length", t="ééé"),
    invalid("number too small", n=0.5),
    invalid("number decimal", n=2.5),
    invalid("number too big", n=11),
    invalid("number negative", n=-1),
    invalid("number numeric string", n="7"),
])

scenario("records_validation_email_url_editor_date", [
    *VALIDATION_SETUP,
    invalid("email invalid", e="notanemail"),
    invalid("email domain not allowed", e="x@other.com"),
    invalid("email except domain", e2="x@bad.com"),
    invalid("url invalid", u="not a url"),
    invalid("url lenient", u="example.com"),
    invalid("url domain not allowed", u2="https://other.com"),
    invalid("editor too big", ed="<p>" + "x" * 30 + "</p>"),
    invalid("date inside range", d="2025-05-05 10:00:00Z"),
])

scenario("records_validation_date_range", [
    *VALIDATION_SETUP,
    invalid("date before min", d="2019-05-05 00:00:00.000Z"),
    invalid("date after max", d="2031-05-05 00:00:00.000Z"),
])

scenario("records_validation_select_relation", [
    *VALIDATION_SETUP,
    invalid("select invalid value", s1="zzz"),
    invalid("multi select invalid value", sm=["a", "zzz"]),
    invalid("multi select too many", sm=["a", "b", "c"]),
    invalid("single select array keeps last", s1=["a", "b"]),
    invalid("relation missing record", r="nonexistent1234"),
    invalid("multi relation missing record", rm=["{v1}", "missingmissing1"]),
    invalid("multi relation too many", rm=["{v1}", "{v2}", "{v3}"]),
    invalid("multi relation single id", rm="{v1}"),
])

scenario("records_relation_min_select", [
    setup_collection("drms_target", save="c_target", **open_rules()),
    setup_collection("drms_main", **open_rules(), fields=[
        {"name": "t", "type": "text"},
        {"name": "rm", "type": "relation", "collectionId": "{c_target}", "minSelect": 2, "maxSelect": 3}]),
    Step("POST", rec("drms_target"), json={}, save={"v1": "id"}),
    Step("POST", rec("drms_target"), json={}, save={"v2": "id"}),
    Step("POST", rec("drms_main"), json={"rm": ["{v1}"]}, label="not enough"),
    Step("POST", rec("drms_main"), json={"rm": ["{v1}", "{v2}"]}, label="enough"),
    Step("POST", rec("drms_main"), json={"t": "no relation"}, label="empty non-required relation"),
    Step("POST", rec("drms_main"), json={"rm": []}, label="explicitly empty"),
])

scenario("records_validation_json_geo_password", [
    *VALIDATION_SETUP,
    invalid("json too big", j={"a": "x" * 40}),
    invalid("geo latitude", g={"lon": 1, "lat": 100}),
    invalid("geo longitude", g={"lon": 200, "lat": 1}),
    invalid("password too short", p="abc"),
    invalid("password unicode length", p="ééééé"),
])

scenario("records_validation_password_max", [
    *VALIDATION_SETUP,
    invalid("password too long", p="abcdefghijk"),
])

scenario("records_validation_unique", [
    *VALIDATION_SETUP,
    invalid("first with code", code="x1"),
    invalid("duplicate code", code="x1"),
    Step("POST", rec("drv_main"), json={"code": "x1"}, label="duplicate code plus required errors"),
])

scenario("records_unique_on_update", [
    setup_collection("dru_main", fields=[{"name": "code", "type": "text"}], **open_rules(),
                   indexes=["CREATE UNIQUE INDEX idx_dru_code ON dru_main (code)"]),
    Step("POST", rec("dru_main"), json={"code": "a"}),
    Step("POST", rec("dru_main"), json={"code": "b"}, save={"rb": "id"}),
    Step("PATCH", rec("dru_main", "{rb}"), json={"code": "a"}, label="update to duplicate"),
    Step("POST", rec("dru_main"), json={"code": "a"}, label="create duplicate"),
])

# --------------------------------------------------------------------------- records: 404s and rules

scenario("records_write_unknown_collection", [
    Step("POST", rec("drwu_missing"), json={}, label="create unknown collection"),
    Step("PATCH", rec("drwu_missing", "abcdefghijklmno"), json={}, label="update unknown collection"),
    Step("POST", rec("drwu_missing"), json={}, auth=GUEST, label="guest create unknown collection"),
])

scenario("records_not_found", [
    setup_collection("drnf_main", **open_rules()),
    Step("GET", rec("drnf_missing"), label="list unknown collection"),
    Step("GET", rec("drnf_missing", "abcdefghijklmno"), label="view unknown collection"),
    Step("DELETE", rec("drnf_missing", "abcdefghijklmno"), label="delete unknown collection"),
    Step("GET", rec("drnf_missing"), auth=GUEST, label="list unknown collection as guest"),
    Step("GET", rec("drnf_main", "abcdefghijklmno"), label="view unknown record"),
    Step("PATCH", rec("drnf_main", "abcdefghijklmno"), json={}, label="update unknown record"),
    Step("DELETE", rec("drnf_main", "abcdefghijklmno"), label="delete unknown record"),
    Step("GET", rec("drnf_main", "abcdefghijklmno"), auth=GUEST, label="view unknown record as guest"),
    Step("GET", rec("drnf_main") + "/", label="records trailing slash"),
    Step("PUT", rec("drnf_main"), json={}, label="PUT records"),
    Step("POST", rec("drnf_main", "abcdefghijklmno"), json={}, label="POST to record path"),
])

RULES_FIELDS = [{"name": "t", "type": "text"}]
NULL_RULES = {"listRule": None, "viewRule": None, "createRule": None, "updateRule": None, "deleteRule": None}
AUTH_RULES = {k: "@request.auth.id != ''" for k in NULL_RULES}


def rule_matrix(coll: str, rid: str, skip_create: bool = False) -> list[Step]:
    return [
        Step("GET", rec(coll), auth=GUEST, label=f"{coll}: guest list"),
        Step("GET", rec(coll, rid), auth=GUEST, label=f"{coll}: guest view"),
        Step("GET", rec(coll, "abcdefghijklmno"), auth=GUEST, label=f"{coll}: guest view missing"),
        *([] if skip_create else [
            Step("POST", rec(coll), json={"t": "guest"}, auth=GUEST, label=f"{coll}: guest create"),
            Step("POST", rec(coll), json={"t": "x" * 20}, auth=GUEST, label=f"{coll}: guest create invalid"),
        ]),
        Step("PATCH", rec(coll, rid), json={"t": "guest2"}, auth=GUEST, label=f"{coll}: guest update"),
        Step("PATCH", rec(coll, "abcdefghijklmno"), json={}, auth=GUEST, label=f"{coll}: guest update missing"),
        Step("DELETE", rec(coll, "abcdefghijklmno"), auth=GUEST, label=f"{coll}: guest delete missing"),
        Step("DELETE", rec(coll, rid), auth=GUEST, label=f"{coll}: guest delete"),
        Step("GET", rec(coll), label=f"{coll}: superuser list after"),
    ]


RULE_FIELDS = [{"name": "t", "type": "text", "max": 10}]

scenario("records_rules_null", [
    setup_collection("drr_null", fields=RULE_FIELDS, **NULL_RULES),
    Step("POST", rec("drr_null"), json={"t": "su"}, save={"n1": "id"}),
    *rule_matrix("drr_null", "{n1}"),
    Step("GET", rec("drr_null"), headers={"Authorization": "garbage"}, auth=GUEST, label="invalid token = guest"),
])

scenario("records_rules_empty", [
    setup_collection("drr_open", fields=RULE_FIELDS, **open_rules()),
    Step("POST", rec("drr_open"), json={"t": "su"}, save={"o1": "id"}),
    *rule_matrix("drr_open", "{o1}"),
])

scenario("records_rules_expression", [
    setup_collection("drr_auth", fields=RULE_FIELDS, **AUTH_RULES),
    Step("POST", rec("drr_auth"), json={"t": "su"}, save={"a1": "id"}),
    *rule_matrix("drr_auth", "{a1}", skip_create=True),
    Step("GET", rec("drr_auth"), headers={"Authorization": "Bearer {su_token}"}, auth=GUEST,
         label="superuser token with Bearer prefix"),
])

scenario("records_rules_expression_create", [
    setup_collection("drrc_auth", fields=RULE_FIELDS, **AUTH_RULES),
    Step("POST", rec("drrc_auth"), json={"t": "guest"}, auth=GUEST, label="guest create, rule not satisfied"),
    Step("POST", rec("drrc_auth"), json={"t": "x" * 20}, auth=GUEST, label="guest create, rule and field fail"),
    Step("POST", rec("drrc_auth"), json={"t": "su"}, label="superuser create"),
])

# --------------------------------------------------------------------------- records: request bodies

scenario("records_request_bodies", [
    setup_collection("drb_main", fields=[{"name": "t", "type": "text"}, {"name": "n", "type": "number"}],
                   **open_rules()),
    Step("POST", rec("drb_main"), content=b'{"t": "x"', headers={"Content-Type": "application/json"},
         label="malformed json"),
    Step("POST", rec("drb_main"), content=b"[1,2]", headers={"Content-Type": "application/json"},
         label="non-object json"),
    Step("POST", rec("drb_main"), content=b"t=x", headers={"Content-Type": "text/plain"},
         label="unsupported content type"),
    Step("POST", rec("drb_main"), content=b"", headers={"Content-Type": "application/json"},
         label="empty json body"),
    Step("POST", rec("drb_main"), content=b"", label="no body, no content type"),
    Step("POST", rec("drb_main"), content=b'{"t":"ok","n":1}',
         headers={"Content-Type": "application/json; charset=utf-8"}, label="json with charset"),
    Step("GET", rec("drb_main") + "?fields=t,n&sort=n"),
])

scenario("records_json_null_body", [
    setup_collection("drjn_main", fields=[{"name": "t", "type": "text"}], **open_rules()),
    Step("POST", rec("drjn_main") + "?fields=t", content=b"null", headers={"Content-Type": "application/json"},
         label="json null body"),
])

# --------------------------------------------------------------------------- documented differences

scenario("records_coercion_documented_differences", [
    setup_collection("drd_main", fields=[{"name": "d", "type": "date"}, {"name": "n", "type": "number"},
                                       {"name": "b", "type": "bool"}, {"name": "j", "type": "json"}],
                   **open_rules()),
    Step("POST", rec("drd_main") + "?fields=d", json={"d": "notadate"}, label="unparseable date",
         pb=Expect(200, {"d": ""}),
         kb=Expect(400, {"message": "Failed to create record.", "data.d.code": "validation_invalid_date"})),
    Step("POST", rec("drd_main") + "?fields=d", json={"d": "2024-01-02 03:04"}, label="partial date",
         pb=Expect(200, {"d": ""}),
         kb=Expect(400, {"message": "Failed to create record.", "data.d.code": "validation_invalid_date"})),
    Step("POST", rec("drd_main") + "?fields=n", json={"n": "abc"}, label="non-numeric number",
         pb=Expect(200, {"n": 0}),
         kb=Expect(400, {"message": "Failed to create record.", "data.n.code": "validation_not_a_number"})),
    Step("POST", rec("drd_main") + "?fields=b", json={"b": "maybe"}, label="non-bool bool",
         pb=Expect(200, {"b": False}),
         kb=Expect(400, {"message": "Failed to create record.", "data.b.code": "validation_invalid_bool"})),
    Step("POST", rec("drd_main") + "?fields=j", data={"j": "{bad"}, multipart=True,
         label="multipart invalid json", pb=Expect(200, {"j": "{bad"}),
         kb=Expect(400, {"message": "Failed to create record.", "data.j.code": "validation_invalid_json"})),
    # what both accept identically
    Step("POST", rec("drd_main") + "?fields=d,n,b,j",
         json={"d": "2024-01-02T03:04:05.123456789Z", "n": "12.5", "b": "true", "j": "{\"a\":1}"},
         label="coercible values"),
    Step("POST", rec("drd_main") + "?fields=d,n,b", json={"d": "", "n": "", "b": 1}, label="empty values"),
    Step("POST", rec("drd_main") + "?fields=d,n,b,j", json={"d": None, "n": None, "b": None, "j": "[1,2]"},
         label="null values"),
])

scenario("records_geopoint_input", [
    setup_collection("drg_main", fields=[{"name": "g", "type": "geoPoint"}], **open_rules()),
    Step("POST", rec("drg_main") + "?fields=g", json={"g": '{"lon":3,"lat":4}'}, label="json string"),
    Step("POST", rec("drg_main") + "?fields=g", json={"g": None}, label="null"),
    Step("POST", rec("drg_main") + "?fields=g", json={"g": {"lat": 5}}, label="missing lon"),
])

scenario("records_geopoint_invalid_input", [
    # documented difference (docs/compatibility.md): PocketBase coerces to {lon:0,lat:0}, keepbase refuses
    setup_collection("drgi_main", fields=[{"name": "g", "type": "geoPoint"}], **open_rules()),
    Step("POST", rec("drgi_main") + "?fields=g", json={"g": [1, 2]}, label="array",
         pb=Expect(200, {"g": {"lon": 0, "lat": 0}}),
         kb=Expect(400, {"message": "Failed to create record.", "data.g.code": "validation_invalid_geo_point"})),
    Step("POST", rec("drgi_main") + "?fields=g", json={"g": "nope"}, label="bad string",
         pb=Expect(200, {"g": {"lon": 0, "lat": 0}}),
         kb=Expect(400, {"message": "Failed to create record.", "data.g.code": "validation_invalid_geo_point"})),
])

# --------------------------------------------------------------------------- key order (byte compatibility)

scenario("key_order_records_and_errors", [
    Step("GET", "/api/health", auth=GUEST),
    setup_collection("dko_target", save="c_target", **open_rules()),
    setup_collection("dko_main", **open_rules(), fields=[
        {"name": "zeta", "type": "text"}, {"name": "alpha", "type": "number"}, {"name": "Mid", "type": "bool"},
        {"name": "geo", "type": "geoPoint"}, {"name": "obj", "type": "json"},
        {"name": "rel", "type": "relation", "collectionId": "{c_target}", "maxSelect": 1}]),
    Step("POST", rec("dko_main"), json={"zeta": "z", "alpha": 1, "geo": {"lat": 1, "lon": 2},
                                        "obj": {"z": 1, "a": {"y": 2, "b": 3}}}, save={"k1": "id"}),
    Step("GET", rec("dko_main", "{k1}")),
    Step("GET", rec("dko_main")),
    Step("POST", rec("dko_main"), json={"rel": "missingmissing1"}, label="validation error body"),
    Step("GET", rec("dko_missing"), label="404 error body"),
], key_order=True)

scenario("key_order_validation_errors", [
    setup_collection("dkov_main", **open_rules(), fields=[
        {"name": "zeta", "type": "text", "required": True}, {"name": "alpha", "type": "number", "required": True},
        {"name": "mid", "type": "bool", "required": True}]),
    Step("POST", rec("dkov_main"), json={}, label="three required errors"),
], key_order=True)

scenario("key_order_collections", [
    new_collection("dkoc_main", fields=[{"name": "t", "type": "text"}, {"name": "n", "type": "number"}],
                   listRule="", viewRule=None),
    Step("GET", "/api/collections?filter=name='dkoc_main'"),
    new_collection("dkoc_view", type="view", viewQuery="SELECT id, t FROM dkoc_main"),
], key_order=True)

SCENARIO_IDS = [s.name for s in SCENARIOS]
assert len(set(SCENARIO_IDS)) == len(SCENARIO_IDS)

# --------------------------------------------------------------------------- the test


_pocketbase_run = pocketbase_run


@pytest.mark.parametrize("sc", SCENARIOS, ids=SCENARIO_IDS)
async def test_same_as_pocketbase(sc: Scenario, engine: str, client: httpx.AsyncClient,
                                  su_headers: dict[str, str], pocketbase: PocketBase,
                                  pocketbase_runs: dict[str, Any], request: pytest.FixtureRequest) -> None:
    reason = sc.xfail.get(engine) or sc.xfail.get("*")
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    pb_run = _pocketbase_run(pocketbase, pocketbase_runs, sc)
    kb_run = await run_async(client, su_headers["Authorization"], sc.steps)
    problems = compare(sc, pb_run, kb_run)
    report = os.environ.get("KB_ORACLE_REPORT")  # optional JSON-lines bug report for keepbase engineers
    if report and problems:
        pb_norm = normalise_results(pb_run[0], pb_run[1], sc.normalise)
        kb_norm = normalise_results(kb_run[0], kb_run[1], sc.normalise)
        steps = [{"step": st.describe(), "pocketbase": p, "keepbase": k}
                 for st, p, k in zip(sc.steps, pb_norm, kb_norm, strict=True) if p != k]
        with open(report, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"scenario": sc.name, "engine": engine, "problems": problems,
                                 "steps": steps}) + "\n")
    assert not problems, f"{sc.name}: keepbase differs from PocketBase:\n" + "\n".join(problems)

"""Differential tests for files: uploads, modifiers, downloads and protected files, keepbase vs a
real PocketBase 0.40 (same harness as test_diff_collections_records)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.oracle.harness import (
    GUEST,
    ORACLE_MARKS,
    PocketBase,
    Scenario,
    Step,
    assert_same_as_pocketbase,
)
from tests.oracle.test_diff_collections_records import PNG, open_rules, rec, setup_collection

pytestmark = ORACLE_MARKS


def _rand(s: str) -> str:  # stored names inside messages: "doc_<rand10>.txt"
    return re.sub(r"_[a-z0-9]{10}(\.|\")", r"_<rand>\1", s)


def files(coll: str, rid: str, name: str, query: str = "") -> str:
    return f"/api/files/{coll}/{rid}/{name}{query}"


SCENARIOS: list[Scenario] = [
    Scenario("files_modifiers", [
        setup_collection("dff_main", **open_rules(), fields=[
            {"name": "t", "type": "text"}, {"name": "doc", "type": "file"},
            {"name": "imgs", "type": "file", "maxSelect": 3}]),
        Step("POST", rec("dff_main"), data={"t": "a"}, files=[("imgs", ("one.png", PNG, "image/png"))],
             save={"r": "id", "one": "imgs.0"}),
        Step("PATCH", rec("dff_main", "{r}"), data={}, files=[("imgs+", ("two.png", PNG, "image/png"))],
             save={"two": "imgs.1"}, label="append"),
        Step("PATCH", rec("dff_main", "{r}"), data={}, files=[("+imgs", ("zero.png", PNG, "image/png"))],
             save={"zero": "imgs.0"}, label="prepend"),
        Step("PATCH", rec("dff_main", "{r}"), data={}, files=[("imgs+", ("four.png", PNG, "image/png"))],
             label="append beyond maxSelect"),
        Step("PATCH", rec("dff_main", "{r}"), json={"imgs-": ["{zero}"]}, label="remove by name"),
        Step("PATCH", rec("dff_main", "{r}"), data={"imgs": "{two}"}, files=[("imgs", ("new.png", PNG, "image/png"))],
             label="keep one by name and add one"),
        Step("PATCH", rec("dff_main", "{r}"), json={"imgs": ["{one}"]}, label="an old name that was dropped"),
        Step("PATCH", rec("dff_main", "{r}"), data={}, files=[("doc", ("a.txt", b"a", "text/plain")),
                                                              ("doc", ("last.txt", b"b", "text/plain"))],
             label="single field keeps the last part", save={"doc": "doc"}),
        Step("GET", files("dff_main", "{r}", "{doc}"), auth=GUEST, label="download text"),
        Step("GET", files("dff_main", "{r}", "{two}", "?thumb=100x100"), auth=GUEST, label="thumb status",
             status_only=True),
        Step("GET", files("dff_main", "{r}", "{zero}"), auth=GUEST, label="removed file is gone"),
        Step("GET", files("dff_main", "nope", "{doc}"), auth=GUEST, label="unknown record"),
        Step("GET", files("dff_nope", "{r}", "{doc}"), auth=GUEST, label="unknown collection"),
        Step("PATCH", rec("dff_main", "{r}"), json={"doc": None}, label="clear"),
        Step("DELETE", rec("dff_main", "{r}")),
    ], normalise=_rand),
    Scenario("files_protected", [
        setup_collection("dfp_main", createRule="", listRule="", viewRule="@request.auth.id != ''", fields=[
            {"name": "f", "type": "file", "protected": True}]),
        Step("POST", rec("dfp_main"), data={}, files=[("f", ("secret.txt", b"secret", "text/plain"))],
             save={"r": "id", "f": "f"}),
        Step("POST", "/api/files/token", auth=GUEST, label="guest file token"),
        Step("POST", "/api/files/token", save={"ft": "token"}, label="superuser file token"),
        Step("GET", files("dfp_main", "{r}", "{f}"), auth=GUEST, label="no token"),
        Step("GET", files("dfp_main", "{r}", "{f}", "?token={su_token}"), auth=GUEST, label="auth token in query"),
        Step("GET", files("dfp_main", "{r}", "{f}", "?token={ft}"), auth=GUEST, label="file token"),
        Step("GET", files("dfp_main", "{r}", "{f}", "?token=garbage"), auth=GUEST, label="garbage token"),
    ]),
]
SCENARIO_IDS = [s.name for s in SCENARIOS]


@pytest.mark.parametrize("sc", SCENARIOS, ids=SCENARIO_IDS)
async def test_files_same_as_pocketbase(sc: Scenario, engine: str, client: httpx.AsyncClient,
                                        su_headers: dict[str, str], pocketbase: PocketBase,
                                        pocketbase_runs: dict[str, Any]) -> None:
    await assert_same_as_pocketbase(sc, pocketbase, pocketbase_runs, client, su_headers)

"""Differential tests of ``?expand=`` (03-records.md §Expand) against a real PocketBase."""

from __future__ import annotations

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
from tests.oracle.test_diff_collections_records import open_rules, rec, setup_collection

pytestmark = ORACLE_MARKS

OWNER = "owner = @request.auth.id"
PW = "password123"
U1 = {"Authorization": "{tok1}"}


def _user(coll: str, email: str, name: str, var: str) -> Step:
    return Step("POST", rec(coll), json={"email": email, "password": PW, "passwordConfirm": PW, "name": name},
                save={var: "id"}, status_only=True)


SCENARIOS = [
    Scenario("expand_relations_and_back_relations", [
        setup_collection("dxe_users", save="c_users", type="auth", listRule="id = @request.auth.id",
                         viewRule="id = @request.auth.id", fields=[{"name": "name", "type": "text"}]),
        setup_collection("dxe_posts", save="c_posts", **open_rules(), fields=[
            {"name": "title", "type": "text"},
            {"name": "author", "type": "relation", "collectionId": "{c_users}", "maxSelect": 1},
            {"name": "editors", "type": "relation", "collectionId": "{c_users}", "maxSelect": 5}]),
        setup_collection("dxe_notes", listRule=OWNER, viewRule=OWNER, fields=[
            {"name": "text", "type": "text"},
            {"name": "post", "type": "relation", "collectionId": "{c_posts}", "maxSelect": 1},
            {"name": "owner", "type": "relation", "collectionId": "{c_users}", "maxSelect": 1}]),
        _user("dxe_users", "u1@example.com", "User One", "u1"),
        _user("dxe_users", "u2@example.com", "User Two", "u2"),
        Step("POST", "/api/collections/dxe_users/auth-with-password", auth=GUEST,
             json={"identity": "u1@example.com", "password": PW}, save={"tok1": "token"}, status_only=True),
        Step("POST", rec("dxe_posts"), json={"title": "x", "author": "{u1}", "editors": ["{u2}", "{u1}"]},
             save={"p1": "id"}),
        Step("POST", rec("dxe_posts"), json={"title": "empty"}),
        Step("POST", rec("dxe_notes") + "?expand=owner,post", json={"text": "n1", "post": "{p1}", "owner": "{u1}"},
             label="create with expand"),
        Step("POST", rec("dxe_notes"), json={"text": "n2", "post": "{p1}", "owner": "{u2}"}),
        Step("GET", rec("dxe_notes") + "?expand=post.author,owner", label="nested expand"),
        Step("GET", rec("dxe_notes") + "?expand=post.author,owner&fields=id,expand.post.title,"
             "expand.post.expand.author.name,expand.owner.name", label="nested expand + fields"),
        Step("GET", rec("dxe_posts", "{p1}") + "?expand=dxe_notes_via_post.owner", label="back-relation (su)"),
        Step("GET", rec("dxe_posts", "{p1}") + "?expand=dxe_notes_via_post.owner", auth=GUEST, headers=U1,
             label="back-relation (u1)"),
        Step("GET", rec("dxe_posts") + "?expand=author,editors,dxe_notes_via_post", auth=GUEST,
             label="guest: nothing viewable"),
        Step("GET", rec("dxe_posts") + "?expand=author,editors", auth=GUEST, headers=U1, label="u1 sees itself"),
        Step("GET", rec("dxe_posts", "{p1}") + "?expand=dxe_notes(post)", label="legacy back-relation"),
        Step("GET", rec("dxe_notes") + "?expand=post.editors,post.author,post", label="merged paths"),
        Step("GET", rec("dxe_posts", "{p1}") + "?expand=nope", label="unknown path"),
        Step("GET", rec("dxe_posts", "{p1}") + "?expand=author,author.nope", label="prefix of a failing path"),
        Step("GET", rec("dxe_posts", "{p1}") + "?expand=nope,editors.nope,author", label="one good path"),
        Step("GET", rec("dxe_posts", "{p1}") + "?expand=%20author%20,", label="spaces"),
        Step("PATCH", rec("dxe_notes", "{p1}").replace("dxe_notes", "dxe_posts") + "?expand=editors",
             json={"editors": ["{u1}"]}, label="update with expand"),
        Step("POST", "/api/collections/dxe_users/auth-with-password?expand=dxe_notes_via_owner.post", auth=GUEST,
             json={"identity": "u1@example.com", "password": PW}, label="auth response expand"),
    ], key_order=True),
    Scenario("expand_null_rule_unique_back_relation", [
        setup_collection("dxn_secret", save="c_secret", fields=[{"name": "v", "type": "text"}]),
        setup_collection("dxn_things", save="c_things", **open_rules(), fields=[
            {"name": "secret", "type": "relation", "collectionId": "{c_secret}", "maxSelect": 1}]),
        setup_collection("dxn_profiles", **open_rules(), fields=[
            {"name": "bio", "type": "text"},
            {"name": "thing", "type": "relation", "collectionId": "{c_things}", "maxSelect": 1}],
            indexes=["CREATE UNIQUE INDEX idx_dxn_profiles_thing ON dxn_profiles (thing)"]),
        setup_collection("dxn_tags", **open_rules(), fields=[
            {"name": "thing", "type": "relation", "collectionId": "{c_things}", "maxSelect": 1}]),
        Step("POST", rec("dxn_secret"), json={"v": "s"}, save={"s1": "id"}, status_only=True),
        Step("POST", rec("dxn_things"), json={"secret": "{s1}"}, save={"t1": "id"}),
        Step("POST", rec("dxn_things"), json={}),
        Step("POST", rec("dxn_profiles"), json={"bio": "hi", "thing": "{t1}"}),
        Step("POST", rec("dxn_tags"), json={"thing": "{t1}"}),
        Step("GET", rec("dxn_things") + "?expand=secret", auth=GUEST, label="null viewRule as guest"),
        Step("GET", rec("dxn_things") + "?expand=secret,dxn_tags_via_thing", auth=GUEST,
             label="null viewRule next to a good path"),
        Step("GET", rec("dxn_things") + "?expand=secret", label="null viewRule as superuser"),
        Step("GET", rec("dxn_things", "{t1}") + "?expand=dxn_profiles_via_thing,dxn_tags_via_thing", auth=GUEST,
             label="unique back-relation is an object"),
    ], key_order=True),
]


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_expand_same_as_pocketbase(sc: Scenario, client: httpx.AsyncClient, su_headers: dict[str, str],
                                         pocketbase: PocketBase, pocketbase_runs: dict[str, Any]) -> None:
    await assert_same_as_pocketbase(sc, pocketbase, pocketbase_runs, client, su_headers)

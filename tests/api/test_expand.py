"""``?expand=`` (03-records.md §Expand) through HTTP, on both engines."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import make_collection

Headers = dict[str, str]
OPEN = {"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""}
OWNER = "owner = @request.auth.id"
PW = "password123"


async def _user(client: httpx.AsyncClient, su: Headers, email: str, name: str) -> tuple[str, Headers]:
    r = await client.post("/api/collections/users/records", headers=su,
                          json={"email": email, "name": name, "password": PW, "passwordConfirm": PW})
    assert r.status_code == 200, r.text
    uid = r.json()["id"]
    r = await client.post("/api/collections/users/auth-with-password", json={"identity": email, "password": PW})
    assert r.status_code == 200, r.text
    return uid, {"Authorization": r.json()["token"]}


async def _create(client: httpx.AsyncClient, su: Headers, coll: str, **body: Any) -> str:
    r = await client.post(f"/api/collections/{coll}/records", json=body, headers=su)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def _seed(client: httpx.AsyncClient, su: Headers) -> dict[str, Any]:
    """03's example: users u1/u2, posts (author, editors), notes (post, owner; owner-only rules)."""
    u1, h1 = await _user(client, su, "u1@example.com", "User One")
    u2, h2 = await _user(client, su, "u2@example.com", "User Two")
    posts = await make_collection(client, su, name="posts", **OPEN, fields=[
        {"name": "title", "type": "text"},
        {"name": "author", "type": "relation", "collectionId": "_pb_users_auth_"},
        {"name": "editors", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 5}])
    await make_collection(client, su, name="notes", listRule=OWNER, viewRule=OWNER, fields=[
        {"name": "text", "type": "text"},
        {"name": "post", "type": "relation", "collectionId": posts["id"]},
        {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_"}])
    p1 = await _create(client, su, "posts", title="x", author=u1, editors=[u2, u1])
    n1 = await _create(client, su, "notes", text="n1", post=p1, owner=u1)
    n2 = await _create(client, su, "notes", text="n2", post=p1, owner=u2)
    return {"u1": u1, "u2": u2, "h1": h1, "h2": h2, "p1": p1, "n1": n1, "n2": n2}


async def test_nested_expand_with_projection(client: httpx.AsyncClient, su_headers: Headers) -> None:
    s = await _seed(client, su_headers)
    r = await client.get("/api/collections/notes/records", headers=su_headers, params={
        "expand": "post.author,owner",
        "fields": "id,expand.post.title,expand.post.expand.author.name,expand.owner.name"})
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [
        {"expand": {"owner": {"name": "User One"}, "post": {"title": "x", "expand": {"author": {"name": "User One"}}}},
         "id": s["n1"]},
        {"expand": {"owner": {"name": "User Two"}, "post": {"title": "x", "expand": {"author": {"name": "User One"}}}},
         "id": s["n2"]},
    ]
    # without projection: expand sits at its sorted key position, nested records carry their own
    r = await client.get(f"/api/collections/notes/records/{s['n1']}", headers=su_headers,
                         params={"expand": " post . author , owner "})
    body = r.json()
    assert list(body) == sorted(body, key=str.encode)
    assert list(body["expand"]) == ["owner", "post"]
    assert body["expand"]["post"]["expand"]["author"]["id"] == s["u1"]
    assert body["expand"]["owner"]["email"] == "u1@example.com"  # superuser sees emails
    assert body["expand"]["post"]["collectionName"] == "posts"


async def test_back_relation_applies_view_rule(client: httpx.AsyncClient, su_headers: Headers) -> None:
    s = await _seed(client, su_headers)
    url = f"/api/collections/posts/records/{s['p1']}"
    params = {"expand": "notes_via_post.owner",
              "fields": "id,expand.notes_via_post.text,expand.notes_via_post.expand.owner.email"}
    r = await client.get(url, headers=su_headers, params=params)
    assert r.json() == {"expand": {"notes_via_post": [
        {"expand": {"owner": {"email": "u1@example.com"}}, "text": "n1"},
        {"expand": {"owner": {"email": "u2@example.com"}}, "text": "n2"}]}, "id": s["p1"]}
    r = await client.get(url, headers=s["h1"], params=params)
    assert r.json() == {"expand": {"notes_via_post": [
        {"expand": {"owner": {"email": "u1@example.com"}}, "text": "n1"}]}, "id": s["p1"]}
    # the legacy form keeps its own key
    r = await client.get(url, headers=su_headers, params={"expand": "notes(post)", "fields": "expand"})
    assert [n["text"] for n in r.json()["expand"]["notes(post)"]] == ["n1", "n2"]
    # guests see no notes at all, but the path was processed
    r = await client.get(url, params={"expand": "notes_via_post", "fields": "id,expand"})
    assert r.json() == {"expand": {}, "id": s["p1"]}


async def test_errors_are_silent(client: httpx.AsyncClient, su_headers: Headers) -> None:
    s = await _seed(client, su_headers)
    url = f"/api/collections/posts/records/{s['p1']}"
    for bad in ("nope", "title", "post.nope", "author.nope", "notes_via_title", "nope_via_post", "notes(text)"):
        r = await client.get(url, headers=su_headers, params={"expand": bad})
        assert r.status_code == 200 and "expand" not in r.json(), (bad, r.text)
    r = await client.get(url, headers=su_headers, params={"expand": "nope,editors.nope,author"})
    assert list(r.json()["expand"]) == ["author"]
    assert "expand" not in r.json()["expand"]["author"]
    # a path that is a prefix of another one is dropped: the longer one alone decides
    r = await client.get(url, headers=su_headers, params={"expand": "author,author.nope"})
    assert "expand" not in r.json()
    r = await client.get(url, headers=su_headers, params={"expand": ",, ."})
    assert "expand" not in r.json()


async def test_null_view_rule_fails_the_path(client: httpx.AsyncClient, su_headers: Headers) -> None:
    secrets = await make_collection(client, su_headers, name="secrets", fields=[{"name": "v", "type": "text"}])
    await make_collection(client, su_headers, name="things", **OPEN, fields=[
        {"name": "secret", "type": "relation", "collectionId": secrets["id"]}])
    sid = await _create(client, su_headers, "secrets", v="hidden")
    tid = await _create(client, su_headers, "things", secret=sid)
    await _create(client, su_headers, "things")
    url = "/api/collections/things/records"
    r = await client.get(url, params={"expand": "secret"})
    assert all("expand" not in item for item in r.json()["items"])
    r = await client.get(url, headers=su_headers, params={"expand": "secret"})
    items = r.json()["items"]
    assert items[0]["id"] == tid and items[0]["expand"]["secret"]["v"] == "hidden"
    assert items[1]["expand"] == {}


async def test_guest_expanding_unviewable_relation(client: httpx.AsyncClient, su_headers: Headers) -> None:
    s = await _seed(client, su_headers)
    r = await client.get("/api/collections/posts/records", params={"expand": "author,editors"})
    assert r.json()["items"][0]["expand"] == {}
    # u2 may view only itself: of the editors [u2, u1] only u2 remains, email visible to the owner
    r = await client.get(f"/api/collections/posts/records/{s['p1']}", headers=s["h2"],
                         params={"expand": "author,editors"})
    expand = r.json()["expand"]
    assert list(expand) == ["editors"]
    assert [e["id"] for e in expand["editors"]] == [s["u2"]]
    assert expand["editors"][0]["email"] == "u2@example.com"


async def test_multi_relation_keeps_stored_order_and_merges_paths(client: httpx.AsyncClient,
                                                                   su_headers: Headers) -> None:
    s = await _seed(client, su_headers)
    r = await client.get(f"/api/collections/notes/records/{s['n1']}", headers=su_headers,
                         params={"expand": "post.editors,post.author,post"})
    post = r.json()["expand"]["post"]
    assert [e["id"] for e in post["expand"]["editors"]] == [s["u2"], s["u1"]]
    assert post["expand"]["author"]["id"] == s["u1"]
    # a single-element multi relation is still an array
    await client.patch(f"/api/collections/posts/records/{s['p1']}", json={"editors": [s["u1"]]},
                       headers=su_headers)
    r = await client.get(f"/api/collections/posts/records/{s['p1']}", headers=su_headers,
                         params={"expand": "editors"})
    assert [e["id"] for e in r.json()["expand"]["editors"]] == [s["u1"]]


async def test_unique_back_relation_is_an_object(client: httpx.AsyncClient, su_headers: Headers) -> None:
    u1, h1 = await _user(client, su_headers, "u1@example.com", "User One")
    await make_collection(client, su_headers, name="profiles", **OPEN,
                          fields=[{"name": "bio", "type": "text"},
                                  {"name": "user", "type": "relation", "collectionId": "_pb_users_auth_"}],
                          indexes=["CREATE UNIQUE INDEX idx_profiles_user ON profiles (user)"])
    await make_collection(client, su_headers, name="tags", **OPEN,
                          fields=[{"name": "user", "type": "relation", "collectionId": "_pb_users_auth_"}])
    await _create(client, su_headers, "profiles", bio="hi", user=u1)
    await _create(client, su_headers, "tags", user=u1)
    r = await client.get(f"/api/collections/users/records/{u1}", headers=h1,
                         params={"expand": "profiles_via_user,tags_via_user"})
    expand = r.json()["expand"]
    assert expand["profiles_via_user"]["bio"] == "hi"
    assert isinstance(expand["tags_via_user"], list) and len(expand["tags_via_user"]) == 1
    # auth responses expand as seen by the record that signed in
    r = await client.post("/api/collections/users/auth-with-password",
                          params={"expand": "profiles_via_user", "fields": "record.expand.profiles_via_user.bio"},
                          json={"identity": "u1@example.com", "password": PW})
    assert r.json() == {"record": {"expand": {"profiles_via_user": {"bio": "hi"}}}}
    r = await client.post("/api/collections/users/auth-refresh", headers=h1, params={"expand": "tags_via_user"})
    assert len(r.json()["record"]["expand"]["tags_via_user"]) == 1


async def test_depth_limit(client: httpx.AsyncClient, su_headers: Headers) -> None:
    chain = await make_collection(client, su_headers, name="chain", **OPEN, fields=[{"name": "n", "type": "number"}])
    fields = [*chain["fields"], {"name": "next", "type": "relation", "collectionId": chain["id"]}]
    r = await client.patch(f"/api/collections/{chain['id']}", json={"fields": fields}, headers=su_headers)
    assert r.status_code == 200, r.text
    nxt = ""
    for n in range(8, 0, -1):
        nxt = await _create(client, su_headers, "chain", n=n, next=nxt)
    r = await client.get(f"/api/collections/chain/records/{nxt}", headers=su_headers,
                         params={"expand": ".".join(["next"] * 7)})
    node, seen = r.json(), []
    while "expand" in node:
        node = node["expand"]["next"]
        seen.append(node["n"])
    assert seen == [2, 3, 4, 5, 6, 7]  # six levels; the seventh is ignored, not an error


async def test_create_and_update_responses_expand(client: httpx.AsyncClient, su_headers: Headers) -> None:
    s = await _seed(client, su_headers)
    r = await client.patch("/api/collections/notes", headers=su_headers,
                           json={"createRule": OWNER, "updateRule": OWNER})
    assert r.status_code == 200, r.text
    r = await client.post("/api/collections/notes/records", headers=s["h1"], params={"expand": "owner,post"},
                          json={"text": "n3", "post": s["p1"], "owner": s["u1"]})
    assert r.status_code == 200, r.text
    assert r.json()["expand"]["owner"]["id"] == s["u1"] and r.json()["expand"]["post"]["title"] == "x"
    r = await client.patch(f"/api/collections/notes/records/{r.json()['id']}", headers=s["h1"],
                           params={"expand": "post", "fields": "text,expand.post.title"}, json={"text": "n4"})
    assert r.json() == {"expand": {"post": {"title": "x"}}, "text": "n4"}


async def test_hidden_relation_and_multi_back_relation(client: httpx.AsyncClient, su_headers: Headers) -> None:
    s = await _seed(client, su_headers)
    await make_collection(client, su_headers, name="groups", **OPEN, fields=[
        {"name": "label", "type": "text"},
        {"name": "members", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 9},
        {"name": "lead", "type": "relation", "collectionId": "_pb_users_auth_", "hidden": True}])
    g1 = await _create(client, su_headers, "groups", label="g1", members=[s["u2"], s["u1"]], lead=s["u1"])
    await _create(client, su_headers, "groups", label="g2", members=[s["u1"]])
    await _create(client, su_headers, "groups", label="g3", members=[s["u2"]])
    r = await client.get("/api/collections/users/records", headers=su_headers,
                         params={"expand": "groups_via_members", "sort": "name"})
    got = {i["id"]: [g["label"] for g in i["expand"]["groups_via_members"]] for i in r.json()["items"]}
    assert got == {s["u1"]: ["g1", "g2"], s["u2"]: ["g1", "g3"]}
    # a hidden relation is not output, but it still expands (the target's viewRule applies)
    r = await client.get(f"/api/collections/groups/records/{g1}", headers=s["h1"], params={"expand": "lead"})
    assert "lead" not in r.json() and r.json()["expand"]["lead"]["id"] == s["u1"]


async def test_rules_see_expand_context(client: httpx.AsyncClient, su_headers: Headers) -> None:
    hidden = await make_collection(client, su_headers, name="only_expand", listRule="",
                                   viewRule="@request.context = 'expand'", fields=[{"name": "v", "type": "text"}])
    await make_collection(client, su_headers, name="holders", **OPEN, fields=[
        {"name": "ref", "type": "relation", "collectionId": hidden["id"]}])
    oid = await _create(client, su_headers, "only_expand", v="x")
    hid = await _create(client, su_headers, "holders", ref=oid)
    assert (await client.get(f"/api/collections/only_expand/records/{oid}")).status_code == 404
    r = await client.get(f"/api/collections/holders/records/{hid}", params={"expand": "ref"})
    assert r.json()["expand"]["ref"]["v"] == "x"

"""Collections management API (02-collections.md) on SQLite and PostgreSQL."""

from __future__ import annotations

import zlib
from typing import Any

import httpx
import pytest

from tests.conftest import make_collection

Headers = dict[str, str]

COLLECTION_KEYS = ["id", "listRule", "viewRule", "createRule", "updateRule", "deleteRule", "name", "type",
                   "fields", "indexes", "created", "updated", "system"]
AUTH_EXTRA_KEYS = ["authRule", "manageRule", "authAlert", "oauth2", "passwordAuth", "mfa", "otp", "authToken",
                   "passwordResetToken", "emailChangeToken", "verificationToken", "fileToken",
                   "verificationTemplate", "resetPasswordTemplate", "confirmEmailChangeTemplate"]
ID_FIELD = {"autogeneratePattern": "[a-z0-9]{15}", "help": "", "hidden": False, "id": "text3208210256",
            "max": 15, "min": 15, "name": "id", "pattern": "^[a-z0-9]+$", "presentable": False,
            "primaryKey": True, "required": True, "system": True, "type": "text"}


def pbc(ctype: str, name: str) -> str:
    return "pbc_" + str(zlib.crc32((ctype + name).encode()))


def fid(ftype: str, name: str) -> str:
    return ftype + str(zlib.crc32(name.encode()))


def common(ftype: str, name: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"hidden": False, "id": fid(ftype, name), "name": name, "presentable": False,
                           "system": False, "type": ftype}
    if ftype != "autodate":
        out.update(help="", required=False)
    out.update(extra)
    return dict(sorted(out.items()))


# the default field object of every type, as PocketBase serialises it
DEFAULT_FIELDS: dict[str, dict[str, Any]] = {
    "text": common("text", "f_text", autogeneratePattern="", max=0, min=0, pattern="", primaryKey=False),
    "number": common("number", "f_number", max=None, min=None, onlyInt=False),
    "bool": common("bool", "f_bool"),
    "email": common("email", "f_email", exceptDomains=[], onlyDomains=[]),
    "url": common("url", "f_url", exceptDomains=[], onlyDomains=[]),
    "editor": common("editor", "f_editor", convertURLs=False, maxSize=0),
    "date": common("date", "f_date", max="", min=""),
    "autodate": common("autodate", "f_autodate", onCreate=True, onUpdate=False),
    "select": common("select", "f_select", maxSelect=0, values=["a", "b"]),
    "file": common("file", "f_file", maxSelect=0, maxSize=0, mimeTypes=[], protected=False, thumbs=[]),
    "json": common("json", "f_json", maxSize=0),
    "password": common("password", "f_password", cost=0, max=0, min=0, pattern=""),
    "geoPoint": common("geoPoint", "f_geoPoint"),
}


async def user_headers(client: httpx.AsyncClient, email: str = "u1@example.com") -> Headers:
    """A regular (non-superuser) auth token from the default ``users`` collection."""
    pw = "userpass123"
    r = await client.post("/api/collections/users/records",
                          json={"email": email, "password": pw, "passwordConfirm": pw})
    assert r.status_code == 200, r.text
    r = await client.post("/api/collections/users/auth-with-password", json={"identity": email, "password": pw})
    assert r.status_code == 200, r.text
    return {"Authorization": r.json()["token"]}


def assert_envelope(r: httpx.Response, status: int, message: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["data", "message", "status"]
    assert body["status"] == status
    assert body["message"] == message
    return dict(body["data"])


def field_error(data: dict[str, Any], *path: str) -> str:
    node: Any = data
    for p in path:
        if p == "*":  # any one index (where the final field order is not pinned by the spec)
            assert isinstance(node, dict) and len(node) == 1, f"{path} not in {data}"
            p = next(iter(node))
        assert isinstance(node, dict) and p in node, f"{path} not in {data}"
        node = node[p]
    assert set(node) <= {"code", "message", "params"}, node
    return str(node["code"])


# --- create ------------------------------------------------------------------------------------

async def test_create_base_with_every_field_type(client: httpx.AsyncClient, su_headers: Headers) -> None:
    fields = [{"name": f"f_{t}", "type": t} for t in DEFAULT_FIELDS]
    fields[[f["type"] for f in fields].index("select")]["values"] = ["a", "b"]
    fields[[f["type"] for f in fields].index("autodate")]["onCreate"] = True  # PocketBase needs one of the two
    r = await client.post("/api/collections", json={"name": "everything", "fields": fields}, headers=su_headers)
    assert r.status_code == 200, r.text
    c = r.json()
    assert list(c) == COLLECTION_KEYS
    assert c["id"] == pbc("base", "everything")
    assert c["type"] == "base" and c["system"] is False and c["indexes"] == []
    assert [c[k] for k in ("listRule", "viewRule", "createRule", "updateRule", "deleteRule")] == [None] * 5
    assert c["fields"][0] == ID_FIELD
    assert len(c["fields"]) == len(DEFAULT_FIELDS) + 1
    for got in c["fields"]:
        assert list(got) == sorted(got), f"keys of {got['name']} not sorted"
    by_name = {f["name"]: f for f in c["fields"]}
    for ftype, expected in DEFAULT_FIELDS.items():
        assert by_name[f"f_{ftype}"] == expected
    assert "help" not in by_name["f_autodate"] and "required" not in by_name["f_autodate"]
    assert c["created"] == c["updated"]
    assert len(c["created"]) == 24 and c["created"].endswith("Z")
    # the stored collection reads back identically
    r = await client.get(f"/api/collections/{c['id']}", headers=su_headers)
    assert r.json() == c


async def test_field_options_are_kept(client: httpx.AsyncClient, su_headers: Headers) -> None:
    target = await make_collection(client, su_headers, name="target")
    fields: list[dict[str, Any]] = [
        {"name": "title", "type": "text", "required": True, "min": 2, "max": 10, "pattern": "^[a-z]+$",
         "presentable": True, "help": "The title"},
        {"name": "slug", "type": "text", "autogeneratePattern": "[a-z]{8}"},
        {"name": "views", "type": "number", "min": 0, "max": 100, "onlyInt": True},
        {"name": "contact", "type": "email", "onlyDomains": ["example.com"]},
        {"name": "site", "type": "url", "exceptDomains": ["evil.com"]},
        {"name": "body", "type": "editor", "maxSize": 100, "convertURLs": True},
        {"name": "pub", "type": "date", "min": "2020-01-01 00:00:00.000Z", "max": "2030-01-01 00:00:00.000Z"},
        {"name": "stamp", "type": "autodate", "onCreate": True, "onUpdate": True},
        {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
        {"name": "docs", "type": "file", "maxSelect": 2, "maxSize": 1000, "mimeTypes": ["image/png"],
         "thumbs": ["100x100", "50x0t"], "protected": True},
        {"name": "rel", "type": "relation", "collectionId": target["id"], "cascadeDelete": True,
         "minSelect": 1, "maxSelect": 5},
        {"name": "meta", "type": "json", "maxSize": 2000, "hidden": True},
        {"name": "secret", "type": "password", "min": 3, "max": 20, "cost": 6},
        {"name": "loc", "type": "geoPoint", "required": True},
    ]
    c = await make_collection(client, su_headers, name="opts", fields=fields)
    by_name = {f["name"]: f for f in c["fields"]}
    for submitted in fields:
        got = by_name[submitted["name"]]
        for key, value in submitted.items():
            assert got[key] == value, (submitted["name"], key, got[key])
        assert list(got) == sorted(got)
        assert got["id"] == fid(submitted["type"], submitted["name"])


async def test_supplied_ids_are_kept(client: httpx.AsyncClient, su_headers: Headers) -> None:
    c = await make_collection(client, su_headers, id="my_custom_id", name="custom",
                              fields=[{"id": "fld_title", "name": "title", "type": "text"}])
    assert c["id"] == "my_custom_id"
    assert c["fields"][1]["id"] == "fld_title"
    r = await client.get("/api/collections/my_custom_id", headers=su_headers)
    assert r.status_code == 200 and r.json()["name"] == "custom"


async def test_field_id_clash_gets_suffix(client: httpx.AsyncClient, su_headers: Headers) -> None:
    c = await make_collection(client, su_headers, name="clash", fields=[
        {"id": fid("text", "b"), "name": "a", "type": "text"},
        {"name": "b", "type": "text"},
    ])
    assert [f["id"] for f in c["fields"][1:]] == [fid("text", "b"), fid("text", "b") + "2"]


async def test_create_auth_collection_defaults(client: httpx.AsyncClient, su_headers: Headers) -> None:
    c = await make_collection(client, su_headers, name="members", type="auth")
    assert list(c) == COLLECTION_KEYS + AUTH_EXTRA_KEYS
    assert c["id"] == pbc("auth", "members")
    names = [f["name"] for f in c["fields"]]
    assert names == ["id", "password", "tokenKey", "email", "emailVisibility", "verified"]
    by_name = {f["name"]: f for f in c["fields"]}
    assert all(f["system"] for f in c["fields"])
    assert by_name["password"]["hidden"] and by_name["tokenKey"]["hidden"]
    assert by_name["email"]["required"] is True
    assert c["authRule"] == "" and c["manageRule"] is None
    assert c["passwordAuth"] == {"enabled": True, "identityFields": ["email"]}
    assert c["mfa"] == {"enabled": False, "duration": 600, "rule": ""}
    assert {k: v for k, v in c["otp"].items() if k != "emailTemplate"} == {
        "enabled": False, "duration": 180, "length": 8}
    assert c["authToken"] == {"duration": 432000}
    assert c["passwordResetToken"] == {"duration": 1800}
    assert c["emailChangeToken"] == {"duration": 1800}
    assert c["verificationToken"] == {"duration": 86400}
    assert c["fileToken"] == {"duration": 180}
    assert c["oauth2"] == {"providers": [], "mappedFields": {"id": "", "name": "", "username": "",
                                                              "avatarURL": ""}, "enabled": False}
    assert list(c["oauth2"]) == ["providers", "mappedFields", "enabled"]
    assert c["verificationTemplate"]["subject"] == "Verify your {APP_NAME} email"
    assert "secret" not in str(c)
    joined = " ".join(c["indexes"])
    assert "UNIQUE" in joined and "`tokenKey`" in joined and "`email`" in joined
    assert len(c["indexes"]) == 2


async def test_auth_nested_options_merge_on_update(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="members", type="auth")
    r = await client.patch("/api/collections/members", json={"otp": {"enabled": True}}, headers=su_headers)
    assert r.status_code == 200, r.text
    otp = r.json()["otp"]
    assert otp["enabled"] is True and otp["duration"] == 180 and otp["length"] == 8
    assert otp["emailTemplate"]["subject"] == "OTP for {APP_NAME}"


async def test_create_view_collection(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="posts", fields=[{"name": "title", "type": "text"}])
    c = await make_collection(client, su_headers, name="post_titles", type="view", listRule="", viewRule="",
                              viewQuery="SELECT id, title FROM posts")
    assert list(c) == COLLECTION_KEYS + ["viewQuery"]
    assert c["viewQuery"] == "SELECT id, title FROM posts"
    assert c["id"] == pbc("view", "post_titles")
    assert c["indexes"] == []
    assert c["createRule"] is None and c["updateRule"] is None and c["deleteRule"] is None


async def test_view_collection_fields_are_inferred(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="posts", fields=[{"name": "title", "type": "text"},
                                                                    {"name": "views", "type": "number"}])
    c = await make_collection(client, su_headers, name="post_stats", type="view", listRule="",
                              viewQuery="SELECT id, title, views, count(id) AS n FROM posts GROUP BY id")
    by_name = {f["name"]: f for f in c["fields"]}
    assert set(by_name) == {"id", "title", "views", "n"}
    assert by_name["title"]["type"] == "text"
    assert by_name["views"]["type"] == "number"
    assert by_name["n"]["type"] == "number"


async def test_invalid_view_query(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.post("/api/collections", headers=su_headers,
                          json={"name": "broken", "type": "view", "viewQuery": "SELECT id FROM nope"})
    data = assert_envelope(r, 400, "Failed to create collection.")
    assert field_error(data, "viewQuery") == "validation_invalid_view_query"
    r = await client.get("/api/collections/broken", headers=su_headers)
    assert r.status_code == 404


# --- validation errors -------------------------------------------------------------------------

CREATE_ERRORS: list[tuple[str, dict[str, Any], tuple[str, ...], str]] = [
    ("missing name", {"fields": []}, ("name",), "validation_required"),
    ("bad name", {"name": "bad name!"}, ("name",), "validation_match_invalid"),
    ("via in name", {"name": "a_via_b"}, ("name",), "validation_found_via"),
    ("internal table", {"name": "_collections"}, ("name",), "validation_collection_name_invalid"),
    ("too long name", {"name": "x" * 256}, ("name",), "validation_length_out_of_range"),
    ("bad type", {"name": "t", "type": "nope"}, ("type",), "validation_in_invalid"),
    ("reserved field expand", {"name": "t", "fields": [{"name": "expand", "type": "text"}]},
     ("fields", "1", "name"), "validation_not_in_invalid"),
    ("reserved field collectionId", {"name": "t", "fields": [{"name": "collectionId", "type": "text"}]},
     ("fields", "1", "name"), "validation_not_in_invalid"),
    ("reserved field null", {"name": "t", "fields": [{"name": "null", "type": "bool"}]},
     ("fields", "1", "name"), "validation_not_in_invalid"),
    ("reserved _rowid_", {"name": "t", "fields": [{"name": "_rowid_", "type": "number"}]},
     ("fields", "1", "name"), "validation_not_in_invalid"),
    ("auth reserved passwordConfirm", {"name": "t", "type": "auth",
                                       "fields": [{"name": "passwordConfirm", "type": "text"}]},
     ("fields", "*", "name"), "validation_reserved_field_name"),
    ("auth reserved oldPassword", {"name": "t", "type": "auth",
                                   "fields": [{"name": "oldPassword", "type": "text"}]},
     ("fields", "*", "name"), "validation_reserved_field_name"),
    ("bad field name", {"name": "t", "fields": [{"name": "a b", "type": "text"}]},
     ("fields", "1", "name"), "validation_match_invalid"),
    ("empty field name", {"name": "t", "fields": [{"name": "", "type": "text"}]},
     ("fields", "1", "name"), "validation_required"),
    ("duplicated field names", {"name": "t", "fields": [{"name": "a", "type": "text"},
                                                        {"name": "A", "type": "number"}]},
     ("fields", "2", "name"), "validation_duplicated_field_name"),
    ("relation to missing collection", {"name": "t", "fields": [{"name": "r", "type": "relation",
                                                                 "collectionId": "nope"}]},
     ("fields", "1", "collectionId"), "validation_field_relation_missing_collection"),
    ("relation by name instead of id", {"name": "t", "fields": [{"name": "r", "type": "relation",
                                                                 "collectionId": "users"}]},
     ("fields", "1", "collectionId"), "validation_field_relation_missing_collection"),
    ("select without values", {"name": "t", "fields": [{"name": "s", "type": "select"}]},
     ("fields", "1", "values"), "validation_required"),
    ("bad thumb", {"name": "t", "fields": [{"name": "f", "type": "file", "thumbs": ["big"]}]},
     ("fields", "1", "thumbs", "0"), "validation_match_invalid"),
    ("invalid index expression", {"name": "t", "fields": [{"name": "a", "type": "text"}],
                                  "indexes": ["CREATE INDEXX nope"]},
     ("indexes", "0"), "validation_invalid_index_expression"),
    ("index on unknown column", {"name": "t", "fields": [{"name": "a", "type": "text"}],
                                 "indexes": ["CREATE INDEX idx_t_b ON t (b)"]},
     ("indexes", "0"), "validation_invalid_index_expression"),
    ("duplicated index name", {"name": "t", "fields": [{"name": "a", "type": "text"}, {"name": "b", "type": "text"}],
                               "indexes": ["CREATE INDEX idx_same ON t (a)", "CREATE INDEX idx_same ON t (b)"]},
     ("indexes", "1"), "validation_duplicated_index_name"),
    ("duplicated index definition", {"name": "t", "fields": [{"name": "a", "type": "text"}],
                                     "indexes": ["CREATE INDEX idx_1 ON t (a)", "CREATE INDEX idx_2 ON t (a)"]},
     ("indexes", "1"), "validation_duplicated_index_definition"),
    ("view with index", {"name": "t", "type": "view", "viewQuery": "SELECT id FROM users",
                         "indexes": ["CREATE INDEX idx_v ON t (id)"]},
     ("indexes",), "validation_indexes_not_supported"),
    ("manageRule empty", {"name": "t", "type": "auth", "manageRule": ""}, ("manageRule",),
     "validation_nil_or_not_empty_required"),
]


@pytest.mark.parametrize(("payload", "path", "code"), [c[1:] for c in CREATE_ERRORS],
                         ids=[c[0] for c in CREATE_ERRORS])
async def test_create_validation_errors(client: httpx.AsyncClient, su_headers: Headers, payload: dict[str, Any],
                                        path: tuple[str, ...], code: str) -> None:
    before = (await client.get("/api/collections?perPage=1000", headers=su_headers)).json()["totalItems"]
    r = await client.post("/api/collections", json=payload, headers=su_headers)
    data = assert_envelope(r, 400, "Failed to create collection.")
    assert field_error(data, *path) == code
    after = (await client.get("/api/collections?perPage=1000", headers=su_headers)).json()["totalItems"]
    assert after == before


async def test_name_exists_case_insensitive(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="posts")
    for name in ("posts", "POSTS", "Posts"):
        r = await client.post("/api/collections", json={"name": name}, headers=su_headers)
        data = assert_envelope(r, 400, "Failed to create collection.")
        assert data == {"name": {"code": "validation_collection_name_exists",
                                 "message": "Collection name must be unique (case insensitive)."}}


async def test_name_equal_to_other_collection_id(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.post("/api/collections", json={"name": "_pb_users_auth_"}, headers=su_headers)
    data = assert_envelope(r, 400, "Failed to create collection.")
    assert field_error(data, "name") == "validation_collection_name_id_duplicate"


async def test_existing_index_name_in_other_collection(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="a", fields=[{"name": "x", "type": "text"}],
                          indexes=["CREATE INDEX idx_x ON a (x)"])
    r = await client.post("/api/collections", headers=su_headers, json={
        "name": "b", "fields": [{"name": "x", "type": "text"}], "indexes": ["CREATE INDEX idx_x ON b (x)"]})
    data = assert_envelope(r, 400, "Failed to create collection.")
    assert field_error(data, "indexes", "0") == "validation_existing_index_name"


async def test_unknown_field_type(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.post("/api/collections", headers=su_headers,
                          json={"name": "t", "fields": [{"name": "a", "type": "nope"}]})
    assert_envelope(r, 400, "Failed to load the submitted data due to invalid formatting.")


async def test_create_malformed_json(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.post("/api/collections", content=b'{"name":', headers={
        **su_headers, "Content-Type": "application/json"})
    assert assert_envelope(r, 400, "Failed to load the collection type data due to invalid formatting.") == {}


async def test_invalid_rule_is_rejected_or_ignored_consistently(client: httpx.AsyncClient,
                                                                su_headers: Headers) -> None:
    """A rule naming an unknown field: once rules are real it is ``validation_invalid_rule``."""
    r = await client.post("/api/collections", headers=su_headers,
                          json={"name": "t", "listRule": "nofield = 1"})
    if r.status_code == 400:
        data = assert_envelope(r, 400, "Failed to create collection.")
        assert field_error(data, "listRule") == "validation_invalid_rule"
        assert data["listRule"]["message"].startswith("Invalid rule. Raw error: ")
    else:
        assert r.status_code == 200, r.text
        assert r.json()["listRule"] == "nofield = 1"


async def test_repeated_field_replaces_the_earlier(client: httpx.AsyncClient, su_headers: Headers) -> None:
    # as PocketBase 0.40: matched by explicit id, else by exact name (keeping the earlier id)
    c = await make_collection(client, su_headers, name="t", fields=[
        {"name": "a", "type": "text"}, {"name": "n", "type": "number"}, {"name": "a", "type": "number"},
        {"id": "x1", "name": "b", "type": "text"}, {"id": "x1", "name": "c", "type": "bool"}])
    assert [(f["id"], f["name"], f["type"]) for f in c["fields"][1:]] == [
        (fid("text", "a"), "a", "number"), (fid("number", "n"), "n", "number"), ("x1", "c", "bool")]


async def test_index_strings_echoed_unless_for_another_table(client: httpx.AsyncClient,
                                                           su_headers: Headers) -> None:
    # as PocketBase 0.40: kept as submitted; rebuilt only when it names another table
    c = await make_collection(client, su_headers, name="t", fields=[{"name": "a", "type": "text"}],
                              indexes=['CREATE UNIQUE INDEX "idx_a" ON "t" ("a")', "CREATE INDEX idx_b ON other (a)"])
    assert c["indexes"] == ['CREATE UNIQUE INDEX "idx_a" ON "t" ("a")', "CREATE INDEX `idx_b` ON `t` (`a`)"]
    r = await client.patch("/api/collections/t", json={"name": "t2"}, headers=su_headers)
    assert r.status_code == 200, r.text
    assert r.json()["indexes"] == ["CREATE UNIQUE INDEX `idx_a` ON `t2` (`a`)", "CREATE INDEX `idx_b` ON `t2` (`a`)"]


# --- view and list ------------------------------------------------------------------------------

async def test_view_by_id_and_name(client: httpx.AsyncClient, su_headers: Headers) -> None:
    c = await make_collection(client, su_headers, name="posts")
    for key in (c["id"], "posts", "POSTS"):
        r = await client.get(f"/api/collections/{key}", headers=su_headers)
        assert r.status_code == 200, key
        assert r.json()["id"] == c["id"]
    r = await client.get("/api/collections/nope", headers=su_headers)
    assert assert_envelope(r, 404, "The requested resource wasn't found.") == {}


async def test_builtin_collections(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.get("/api/collections?perPage=100", headers=su_headers)
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["items", "page", "perPage", "totalItems", "totalPages"]
    ids = {i["name"]: i["id"] for i in body["items"]}
    assert ids["_superusers"] == "pbc_3142635823"
    assert ids["users"] == "_pb_users_auth_"
    assert ids["_mfas"] == "pbc_2279338944"
    assert ids["_otps"] == "pbc_1638494021"
    assert ids["_externalAuths"] == "pbc_2281828961"
    assert ids["_authOrigins"] == "pbc_4275539003"
    su = next(i for i in body["items"] if i["name"] == "_superusers")
    assert su["system"] is True
    assert su["authToken"] == {"duration": 86400}


async def test_list_pagination_and_sort(client: httpx.AsyncClient, su_headers: Headers) -> None:
    for name in ("zeta", "alpha", "mid"):
        await make_collection(client, su_headers, name=name)
    r = await client.get("/api/collections?perPage=1000", headers=su_headers)
    total = r.json()["totalItems"]
    names = [i["name"] for i in r.json()["items"]]
    assert names[-3:] == ["zeta", "alpha", "mid"]  # default order = creation
    r = await client.get("/api/collections?perPage=2&page=2", headers=su_headers)
    body = r.json()
    assert body["page"] == 2 and body["perPage"] == 2 and len(body["items"]) == 2
    assert body["totalItems"] == total and body["totalPages"] == (total + 1) // 2
    r = await client.get("/api/collections?sort=-name&perPage=1000", headers=su_headers)
    names = [i["name"] for i in r.json()["items"]]
    assert names == sorted(names, reverse=True)
    r = await client.get("/api/collections?sort=name&perPage=2&skipTotal=1", headers=su_headers)
    body = r.json()
    assert body["totalItems"] == -1 and body["totalPages"] == -1
    assert [i["name"] for i in body["items"]] == sorted(names)[:2]
    r = await client.get("/api/collections?sort=listRule", headers=su_headers)
    assert_envelope(r, 400, "Something went wrong while processing your request.")
    r = await client.get("/api/collections?page=abc", headers=su_headers)
    assert_envelope(r, 400, "Something went wrong while processing your request.")


async def test_list_filter(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="posts")
    r = await client.get("/api/collections", params={"filter": "name = 'posts'"}, headers=su_headers)
    assert r.status_code == 200, r.text
    assert [i["name"] for i in r.json()["items"]] == ["posts"]
    r = await client.get("/api/collections", params={"filter": "system = true && type = 'auth'",
                                                     "perPage": "100"}, headers=su_headers)
    assert r.status_code == 200, r.text
    assert [i["name"] for i in r.json()["items"]] == ["_superusers"]


async def test_list_fields_projection(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.get("/api/collections?fields=id,name&perPage=2", headers=su_headers)
    body = r.json()
    assert list(body) == ["items", "page", "perPage", "totalItems", "totalPages"]
    assert all(set(i) == {"id", "name"} for i in body["items"])


# --- update --------------------------------------------------------------------------------------

async def test_patch_merges_top_level_keys(client: httpx.AsyncClient, su_headers: Headers) -> None:
    c = await make_collection(client, su_headers, name="posts", listRule="", fields=[
        {"name": "title", "type": "text", "max": 50}], indexes=["CREATE INDEX idx_title ON posts (title)"])
    r = await client.patch("/api/collections/posts", json={"viewRule": ""}, headers=su_headers)
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["viewRule"] == "" and u["listRule"] == ""
    assert u["fields"] == c["fields"]
    assert u["indexes"] == c["indexes"]
    assert u["created"] == c["created"]
    assert u["updated"] >= c["updated"]
    r = await client.patch("/api/collections/posts", json={"listRule": None}, headers=su_headers)
    assert r.json()["listRule"] is None


async def test_patch_unknown_collection(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.patch("/api/collections/nope", json={"listRule": ""}, headers=su_headers)
    assert_envelope(r, 404, "The requested resource wasn't found.")


async def test_patch_type_change_refused(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="posts")
    r = await client.patch("/api/collections/posts", json={"type": "auth"}, headers=su_headers)
    data = assert_envelope(r, 400, "Failed to update collection.")
    assert field_error(data, "type") == "validation_collection_type_change"


async def test_patch_field_type_change_refused(client: httpx.AsyncClient, su_headers: Headers) -> None:
    c = await make_collection(client, su_headers, name="posts", fields=[{"name": "title", "type": "text"}])
    fields = c["fields"]
    fields[1] = {"id": fields[1]["id"], "name": "title", "type": "number"}
    r = await client.patch("/api/collections/posts", json={"fields": fields}, headers=su_headers)
    data = assert_envelope(r, 400, "Failed to update collection.")
    assert field_error(data, "fields", "1") == "validation_field_type_change"


async def test_patch_system_field_rename_refused(client: httpx.AsyncClient, su_headers: Headers) -> None:
    c = await make_collection(client, su_headers, name="members", type="auth")
    fields = c["fields"]
    renamed = [dict(f) for f in fields]
    renamed[3]["name"] = "mail"
    r = await client.patch("/api/collections/members", json={"fields": renamed}, headers=su_headers)
    data = assert_envelope(r, 400, "Failed to update collection.")
    assert field_error(data, "fields") == "validation_system_field_change"
    r = await client.get("/api/collections/members", headers=su_headers)
    assert r.json()["fields"] == fields


async def test_patch_cannot_remove_system_field(client: httpx.AsyncClient, su_headers: Headers) -> None:
    """Leaving a system field out is refused or the field is restored; it never disappears."""
    c = await make_collection(client, su_headers, name="members", type="auth")
    fields = c["fields"]
    r = await client.patch("/api/collections/members", json={"fields": fields[:-1]}, headers=su_headers)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        data = assert_envelope(r, 400, "Failed to update collection.")
        assert "validation_system_field_change" in str(data)
    r = await client.get("/api/collections/members", headers=su_headers)
    assert r.json()["fields"] == fields


async def test_system_collection_rules_cannot_change(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.patch("/api/collections/_superusers", json={"listRule": ""}, headers=su_headers)
    data = assert_envelope(r, 400, "Failed to update collection.")
    assert field_error(data, "listRule") == "validation_collection_system_rule_change"


async def test_rename_collection_keeps_records(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="posts", fields=[{"name": "title", "type": "text"}])
    r = await client.post("/api/collections/posts/records", json={"title": "kept"}, headers=su_headers)
    rid = r.json()["id"]
    r = await client.patch("/api/collections/posts", json={"name": "articles"}, headers=su_headers)
    assert r.status_code == 200, r.text
    r = await client.get(f"/api/collections/articles/records/{rid}", headers=su_headers)
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "kept" and r.json()["collectionName"] == "articles"
    r = await client.get("/api/collections/posts/records", headers=su_headers)
    assert_envelope(r, 404, "Missing collection context.")


async def test_field_rename_add_and_drop_keep_data(client: httpx.AsyncClient, su_headers: Headers) -> None:
    c = await make_collection(client, su_headers, name="posts", fields=[
        {"name": "title", "type": "text"}, {"name": "views", "type": "number"}, {"name": "old", "type": "text"}])
    r = await client.post("/api/collections/posts/records", json={"title": "t1", "views": 7, "old": "x"},
                          headers=su_headers)
    rid = r.json()["id"]
    fields = c["fields"]
    new_fields = [fields[0], {**fields[1], "name": "headline"}, fields[2],
                  {"name": "flag", "type": "bool"}, {"name": "meta", "type": "json"}]
    r = await client.patch("/api/collections/posts", json={"fields": new_fields}, headers=su_headers)
    assert r.status_code == 200, r.text
    names = [f["name"] for f in r.json()["fields"]]
    assert names == ["id", "headline", "views", "flag", "meta"]
    assert r.json()["fields"][1]["id"] == fields[1]["id"]
    r = await client.get(f"/api/collections/posts/records/{rid}", headers=su_headers)
    rec = r.json()
    assert rec["headline"] == "t1" and rec["views"] == 7
    assert rec["flag"] is False and rec["meta"] is None
    assert "old" not in rec and "title" not in rec


async def test_field_matched_by_name_keeps_id(client: httpx.AsyncClient, su_headers: Headers) -> None:
    c = await make_collection(client, su_headers, name="posts", fields=[{"name": "title", "type": "text"}])
    r = await client.patch("/api/collections/posts", headers=su_headers,
                           json={"fields": [{"name": "title", "type": "text", "max": 9}]})
    assert r.status_code == 200, r.text
    title = r.json()["fields"][1]
    assert title["id"] == c["fields"][1]["id"] and title["max"] == 9
    assert r.json()["fields"][0]["name"] == "id"  # the id field is kept automatically


# --- delete and truncate ------------------------------------------------------------------------

async def test_delete_collection(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="posts", fields=[{"name": "title", "type": "text"}])
    await client.post("/api/collections/posts/records", json={"title": "a"}, headers=su_headers)
    r = await client.delete("/api/collections/posts", headers=su_headers)
    assert r.status_code == 204 and r.content == b""
    r = await client.get("/api/collections/posts", headers=su_headers)
    assert r.status_code == 404
    # the name is free again and the new table is empty
    await make_collection(client, su_headers, name="posts", fields=[{"name": "title", "type": "text"}])
    r = await client.get("/api/collections/posts/records", headers=su_headers)
    assert r.json()["totalItems"] == 0


async def test_delete_system_collection_refused(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.delete("/api/collections/_superusers", headers=su_headers)
    assert_envelope(r, 400, "Failed to delete collection.")


async def test_delete_referenced_collection_refused(client: httpx.AsyncClient, su_headers: Headers) -> None:
    posts = await make_collection(client, su_headers, name="posts", fields=[{"name": "title", "type": "text"}])
    await make_collection(client, su_headers, name="notes", fields=[
        {"name": "post", "type": "relation", "collectionId": posts["id"]}])
    await make_collection(client, su_headers, name="comments", fields=[
        {"name": "post", "type": "relation", "collectionId": posts["id"], "maxSelect": 3}])
    r = await client.delete("/api/collections/posts", headers=su_headers)
    assert_envelope(r, 400, "Failed to delete collection probably due to existing reference in comments, notes.")
    r = await client.get("/api/collections/posts", headers=su_headers)
    assert r.status_code == 200


async def test_delete_unknown_collection(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.delete("/api/collections/nope", headers=su_headers)
    assert_envelope(r, 404, "The requested resource wasn't found.")


async def test_truncate(client: httpx.AsyncClient, su_headers: Headers) -> None:
    posts = await make_collection(client, su_headers, name="posts", fields=[{"name": "title", "type": "text"}])
    await make_collection(client, su_headers, name="notes", fields=[
        {"name": "post", "type": "relation", "collectionId": posts["id"], "cascadeDelete": True}])
    for i in range(3):
        r = await client.post("/api/collections/posts/records", json={"title": str(i)}, headers=su_headers)
        await client.post("/api/collections/notes/records", json={"post": r.json()["id"]}, headers=su_headers)
    r = await client.delete("/api/collections/posts/truncate", headers=su_headers)
    assert r.status_code == 204, r.text
    for name in ("posts", "notes"):
        r = await client.get(f"/api/collections/{name}/records", headers=su_headers)
        assert r.json()["totalItems"] == 0, name


async def test_truncate_blocked_by_required_reference(client: httpx.AsyncClient, su_headers: Headers) -> None:
    posts = await make_collection(client, su_headers, name="posts", fields=[{"name": "title", "type": "text"}])
    await make_collection(client, su_headers, name="notes", fields=[
        {"name": "post", "type": "relation", "collectionId": posts["id"], "required": True}])
    r = await client.post("/api/collections/posts/records", json={"title": "x"}, headers=su_headers)
    await client.post("/api/collections/notes/records", json={"post": r.json()["id"]}, headers=su_headers)
    r = await client.delete("/api/collections/posts/truncate", headers=su_headers)
    assert_envelope(r, 400, "Failed to truncate collection (most likely due to required cascade delete "
                            "record references).")
    r = await client.get("/api/collections/posts/records", headers=su_headers)
    assert r.json()["totalItems"] == 1


async def test_truncate_view_refused(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="v", type="view", viewQuery="SELECT id FROM users")
    r = await client.delete("/api/collections/v/truncate", headers=su_headers)
    assert_envelope(r, 400, "View collections cannot be truncated since they don't store their own records.")


# --- import ---------------------------------------------------------------------------------------

async def test_import_creates_and_updates(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="existing", fields=[{"name": "a", "type": "text"}])
    r = await client.put("/api/collections/import", headers=su_headers, json={"collections": [
        {"name": "imp1", "fields": [{"name": "title", "type": "text"}]},
        {"name": "existing", "listRule": "", "fields": [{"name": "a", "type": "text"}, {"name": "b", "type": "bool"}]},
    ]})
    assert r.status_code == 204, r.text
    r = await client.get("/api/collections/imp1", headers=su_headers)
    assert r.status_code == 200 and r.json()["id"] == pbc("base", "imp1")
    r = await client.get("/api/collections/existing", headers=su_headers)
    assert r.json()["listRule"] == "" and [f["name"] for f in r.json()["fields"]] == ["id", "a", "b"]


async def test_import_is_all_or_nothing(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="existing", listRule=None)
    r = await client.put("/api/collections/import", headers=su_headers, json={"collections": [
        {"name": "imp1"},
        {"name": "existing", "listRule": ""},
        {"name": "bad name"},
    ]})
    data = assert_envelope(r, 400, "Failed to import collections.")
    assert field_error(data, "collections") == "validation_collections_import_failure"
    assert data["collections"]["message"].startswith('Data validations failed for collection "bad name"')
    r = await client.get("/api/collections/imp1", headers=su_headers)
    assert r.status_code == 404
    r = await client.get("/api/collections/existing", headers=su_headers)
    assert r.json()["listRule"] is None
    # the registry stays usable after the failed import
    await make_collection(client, su_headers, name="imp1")


async def test_import_failure_message_format(client: httpx.AsyncClient, su_headers: Headers) -> None:
    """02: ``Data validations failed for collection "<name>" (<id>):\\n{\\n  "<key>": "<message>"\\n}.``"""
    r = await client.put("/api/collections/import", headers=su_headers, json={"collections": [
        {"name": "imp2", "fields": [{"name": "expand", "type": "text"}]}]})
    data = assert_envelope(r, 400, "Failed to import collections.")
    assert data["collections"]["message"] == (
        f'Data validations failed for collection "imp2" ({pbc("base", "imp2")}):\n'
        '{\n  "fields": {\n    "1": {\n      "name": "must not be in list"\n    }\n  }\n}.')  # unrendered, as PB 0.40.6


async def test_import_delete_missing(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="gone")
    await make_collection(client, su_headers, name="kept")
    r = await client.put("/api/collections/import", headers=su_headers,
                         json={"collections": [{"name": "kept"}], "deleteMissing": True})
    assert r.status_code == 204, r.text
    assert (await client.get("/api/collections/gone", headers=su_headers)).status_code == 404
    assert (await client.get("/api/collections/kept", headers=su_headers)).status_code == 200
    assert (await client.get("/api/collections/_superusers", headers=su_headers)).status_code == 200


@pytest.mark.parametrize("body", [{}, {"collections": []}, {"collections": None}])
async def test_import_requires_collections(client: httpx.AsyncClient, su_headers: Headers,
                                           body: dict[str, Any]) -> None:
    r = await client.put("/api/collections/import", json=body, headers=su_headers)
    data = assert_envelope(r, 400, "An error occurred while validating the submitted data.")
    assert data == {"collections": {"code": "validation_required", "message": "Cannot be blank."}}


# --- scaffolds -------------------------------------------------------------------------------------

async def test_scaffolds(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.get("/api/collections/meta/scaffolds", headers=su_headers)
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["base", "auth", "view"]
    for ctype, scaffold in body.items():
        assert scaffold["id"] == "" and scaffold["name"] == "" and scaffold["created"] == ""
        assert scaffold["type"] == ctype
        assert scaffold["listRule"] is None
    assert body["base"]["fields"] == [ID_FIELD]
    assert list(body["auth"]) == COLLECTION_KEYS + AUTH_EXTRA_KEYS
    assert list(body["view"]) == COLLECTION_KEYS + ["viewQuery"]


# --- access ------------------------------------------------------------------------------------------

MANAGEMENT_ROUTES = [
    ("GET", "/api/collections", None),
    ("POST", "/api/collections", {"name": "x"}),
    ("GET", "/api/collections/users", None),
    ("PATCH", "/api/collections/users", {"listRule": ""}),
    ("DELETE", "/api/collections/users", None),
    ("DELETE", "/api/collections/users/truncate", None),
    ("PUT", "/api/collections/import", {"collections": [{"name": "x"}]}),
    ("GET", "/api/collections/meta/scaffolds", None),
    ("GET", "/api/collections/nope", None),
]


@pytest.mark.parametrize(("method", "url", "body"), MANAGEMENT_ROUTES)
async def test_guest_gets_401(client: httpx.AsyncClient, method: str, url: str, body: Any) -> None:
    r = await client.request(method, url, json=body)
    assert_envelope(r, 401, "The request requires valid record authorization token.")


@pytest.mark.parametrize(("method", "url", "body"), MANAGEMENT_ROUTES)
async def test_non_superuser_gets_403(client: httpx.AsyncClient, su_headers: Headers, method: str, url: str,
                                      body: Any) -> None:
    headers = await user_headers(client)
    r = await client.request(method, url, json=body, headers=headers)
    assert_envelope(r, 403, "The authorized record is not allowed to perform this action.")
    r = await client.get("/api/collections/users", headers=su_headers)
    assert r.status_code == 200  # nothing was changed or deleted
    assert r.json()["listRule"] == "id = @request.auth.id"


async def test_invalid_token_is_a_guest(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/collections", headers={"Authorization": "Bearer not.a.token"})
    assert_envelope(r, 401, "The request requires valid record authorization token.")


async def test_bearer_prefix_accepted(client: httpx.AsyncClient, su_headers: Headers) -> None:
    r = await client.get("/api/collections", headers={"Authorization": "Bearer " + su_headers["Authorization"]})
    assert r.status_code == 200

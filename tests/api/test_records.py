"""Records API (03-records.md) on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import make_collection

Headers = dict[str, str]
GENERIC_400 = "Something went wrong while processing your request."
ID_RE = re.compile(r"^[a-z0-9]{15}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$")
OPEN_RULES = {"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""}


def assert_envelope(r: httpx.Response, status: int, message: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["data", "message", "status"]
    assert body["status"] == status and body["message"] == message
    return dict(body["data"])


async def user_headers(client: httpx.AsyncClient, email: str = "u1@example.com") -> Headers:
    pw = "userpass123"
    r = await client.post("/api/collections/users/records",
                          json={"email": email, "password": pw, "passwordConfirm": pw})
    assert r.status_code == 200, r.text
    r = await client.post("/api/collections/users/auth-with-password", json={"identity": email, "password": pw})
    assert r.status_code == 200, r.text
    return {"Authorization": r.json()["token"]}


async def make_posts(client: httpx.AsyncClient, su: Headers, **overrides: Any) -> dict[str, Any]:
    authors = await make_collection(client, su, name="authors", **OPEN_RULES,
                                    fields=[{"name": "name", "type": "text"}])
    payload: dict[str, Any] = {
        "name": "posts", **OPEN_RULES,
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "body", "type": "editor"},
            {"name": "views", "type": "number"},
            {"name": "published", "type": "bool"},
            {"name": "contact", "type": "email"},
            {"name": "site", "type": "url"},
            {"name": "pubDate", "type": "date"},
            {"name": "status", "type": "select", "values": ["draft", "live"]},
            {"name": "tags", "type": "select", "values": ["a", "b", "c", "d"], "maxSelect": 4},
            {"name": "author", "type": "relation", "collectionId": authors["id"]},
            {"name": "editors", "type": "relation", "collectionId": authors["id"], "maxSelect": 5},
            {"name": "meta", "type": "json"},
            {"name": "loc", "type": "geoPoint"},
            {"name": "doc", "type": "file"},
            {"name": "secret", "type": "text", "hidden": True},
            {"name": "created", "type": "autodate", "onCreate": True},
            {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
        ],
    }
    payload.update(overrides)
    return await make_collection(client, su, **payload)


async def create(client: httpx.AsyncClient, collection: str, body: dict[str, Any],
                 headers: Headers | None = None) -> dict[str, Any]:
    r = await client.post(f"/api/collections/{collection}/records", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


# --- create / view / list / update / delete ---------------------------------------------------------

async def test_create_json_full_record(client: httpx.AsyncClient, su_headers: Headers) -> None:
    posts = await make_posts(client, su_headers)
    author = await create(client, "authors", {"name": "A"})
    rec = await create(client, "posts", {
        "title": "Hello", "body": "<p>Hi</p>", "views": 10, "published": True, "contact": "a@b.co",
        "site": "https://example.com", "pubDate": "2024-01-02T03:04:05+05:30", "status": "live",
        "tags": ["b", "b", "a"], "author": author["id"], "editors": [author["id"]],
        "meta": {"z": 1, "a": {"y": 2, "b": 3}}, "loc": {"lat": 42.69, "lon": 23.32}, "secret": "s",
        "collectionId": "ignored", "collectionName": "ignored", "expand": {"x": 1}, "unknown": 1,
        "created": "2000-01-01 00:00:00.000Z",
    })
    assert list(rec) == sorted(rec)
    assert ID_RE.match(rec["id"])
    assert rec["collectionId"] == posts["id"] and rec["collectionName"] == "posts"
    assert rec["title"] == "Hello" and rec["views"] == 10 and rec["published"] is True
    assert rec["pubDate"] == "2024-01-01 21:34:05.000Z"
    assert rec["tags"] == ["b", "a"]
    assert rec["author"] == author["id"] and rec["editors"] == [author["id"]]
    assert rec["meta"] == {"a": {"b": 3, "y": 2}, "z": 1}
    assert rec["loc"] == {"lon": 23.32, "lat": 42.69} and list(rec["loc"]) == ["lon", "lat"]
    assert rec["doc"] == ""
    assert "secret" not in rec  # hidden fields are not output to a guest
    assert "unknown" not in rec and "expand" not in rec
    assert DATE_RE.match(rec["created"]) and rec["created"] == rec["updated"]
    assert rec["created"] != "2000-01-01 00:00:00.000Z"
    r = await client.get(f"/api/collections/posts/records/{rec['id']}")
    assert r.json() == rec
    r = await client.get(f"/api/collections/posts/records/{rec['id']}", headers=su_headers)
    assert r.json()["secret"] == ""  # a guest's value for a hidden field is dropped


async def test_empty_values(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    rec = await create(client, "posts", {})
    expected = {"title": "", "body": "", "views": 0, "published": False, "contact": "", "site": "",
                "pubDate": "", "status": "", "tags": [], "author": "", "editors": [], "meta": None,
                "loc": {"lon": 0, "lat": 0}, "doc": ""}
    for key, value in expected.items():
        assert rec[key] == value, key


async def test_json_raw_body_bytes(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    r = await client.post("/api/collections/posts/records", json={"views": 3.0, "meta": {"b": 1, "a": 2}})
    assert r.content.endswith(b'"views":3}')
    assert b'"meta":{"a":2,"b":1}' in r.content
    assert r.headers["content-type"] == "application/json"


async def test_create_multipart(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    files = [("title", (None, "123")), ("tags", (None, "a")), ("tags", (None, "c")), ("views", (None, "007")),
             ("published", (None, "true")), ("meta", (None, '{"a":1}')), ("status", (None, "draft"))]
    r = await client.post("/api/collections/posts/records", files=files)
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["title"] == "123"
    assert rec["tags"] == ["a", "c"]
    assert rec["views"] == 7
    assert rec["published"] is True
    assert rec["meta"] == {"a": 1}
    assert rec["status"] == "draft"


async def test_create_multipart_json_payload(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    files = [("title", (None, "from part")), ("views", (None, "2")),
             ("@jsonPayload", (None, '{"title":"From payload","tags":["a","c"]}'))]
    r = await client.post("/api/collections/posts/records", files=files)
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["title"] == "From payload" and rec["tags"] == ["a", "c"] and rec["views"] == 2


async def test_create_urlencoded(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    r = await client.post("/api/collections/posts/records",
                          content="title=hi+there&views=-1.5&published=false&tags=a&tags=b",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["title"] == "hi there" and rec["views"] == -1.5 and rec["published"] is False
    assert rec["tags"] == ["a", "b"]


async def test_update_with_each_body_format(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    rec = await create(client, "posts", {"title": "t", "views": 1, "tags": ["a"]})
    url = f"/api/collections/posts/records/{rec['id']}"
    r = await client.patch(url, json={"title": "json"})
    assert r.status_code == 200 and r.json()["title"] == "json" and r.json()["views"] == 1
    r = await client.patch(url, files=[("title", (None, "multi")), ("tags+", (None, "b"))])
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "multi" and r.json()["tags"] == ["a", "b"]
    r = await client.patch(url, content="views%2B=5", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    assert r.json()["views"] == 6 and r.json()["title"] == "multi"


async def test_delete(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    rec = await create(client, "posts", {"title": "t"})
    r = await client.delete(f"/api/collections/posts/records/{rec['id']}")
    assert r.status_code == 204 and r.content == b""
    r = await client.get(f"/api/collections/posts/records/{rec['id']}")
    assert_envelope(r, 404, "The requested resource wasn't found.")
    r = await client.delete(f"/api/collections/posts/records/{rec['id']}")
    assert_envelope(r, 404, "The requested resource wasn't found.")
    r = await client.patch(f"/api/collections/posts/records/{rec['id']}", json={"title": "x"})
    assert_envelope(r, 404, "The requested resource wasn't found.")


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("POST", ""), ("GET", "/abc"),
                                                 ("PATCH", "/abc"), ("DELETE", "/abc")])
async def test_unknown_collection(client: httpx.AsyncClient, method: str, suffix: str) -> None:
    r = await client.request(method, f"/api/collections/nope/records{suffix}", json={} if method in (
        "POST", "PATCH") else None)
    # PocketBase 0.40 words it differently for create and update
    message = "Missing or invalid collection context." if method in ("POST", "PATCH") else "Missing collection context."
    assert r.json() == {"data": {}, "message": message, "status": 404}


async def test_collection_by_id(client: httpx.AsyncClient, su_headers: Headers) -> None:
    posts = await make_posts(client, su_headers)
    rec = await create(client, posts["id"], {"title": "by id"})
    r = await client.get(f"/api/collections/{posts['id']}/records/{rec['id']}")
    assert r.json()["title"] == "by id"


# --- ids --------------------------------------------------------------------------------------------

async def test_client_supplied_id(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    rec = await create(client, "posts", {"id": "abcdefghij12345", "title": "mine"})
    assert rec["id"] == "abcdefghij12345"
    for rid, code in (("short", "validation_min_text_constraint"),
                      ("UPPERCASEID0001", "validation_invalid_format"),
                      ("abcdefghij12345", "validation_not_unique")):
        r = await client.post("/api/collections/posts/records", json={"id": rid})
        data = assert_envelope(r, 400, "Failed to create record.")
        assert data["id"]["code"] == code, (rid, data)
    r = await client.patch("/api/collections/posts/records/abcdefghij12345", json={"id": "zzzzzzzzzzzzzzz"})
    data = assert_envelope(r, 400, "Failed to update record.")
    assert data["id"]["code"] == "validation_pk_change"


async def test_generated_ids_are_unique(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    ids = {(await create(client, "posts", {}))["id"] for _ in range(20)}
    assert len(ids) == 20 and all(ID_RE.match(i) for i in ids)


# --- list parameters ------------------------------------------------------------------------------------

async def _seed(client: httpx.AsyncClient, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        out.append(await create(client, "posts", {"title": f"t{i}", "views": i % 3, "status":
                                                   "live" if i % 2 else "draft"}))
    return out


async def test_list_envelope_and_pagination(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    recs = await _seed(client, 5)
    r = await client.get("/api/collections/posts/records")
    body = r.json()
    assert list(body) == ["items", "page", "perPage", "totalItems", "totalPages"]
    assert (body["page"], body["perPage"], body["totalItems"], body["totalPages"]) == (1, 30, 5, 1)
    assert [i["id"] for i in body["items"]] == [x["id"] for x in recs]  # insertion order
    r = await client.get("/api/collections/posts/records?perPage=2&page=3")
    body = r.json()
    assert (body["page"], body["perPage"], body["totalItems"], body["totalPages"]) == (3, 2, 5, 3)
    assert [i["id"] for i in body["items"]] == [recs[4]["id"]]
    r = await client.get("/api/collections/posts/records?perPage=2&page=9")
    body = r.json()
    assert body["items"] == [] and body["totalItems"] == 5 and body["page"] == 9


@pytest.mark.parametrize(("query", "page", "per_page"), [
    ("perPage=5000", 1, 1000), ("perPage=1000", 1, 1000), ("perPage=0", 1, 30), ("perPage=-3", 1, 30),
    ("page=0", 1, 30), ("page=-1", 1, 30), ("page=", 1, 30), ("perPage=", 1, 30),
])
async def test_page_clamping(client: httpx.AsyncClient, su_headers: Headers, query: str, page: int,
                             per_page: int) -> None:
    await make_posts(client, su_headers)
    r = await client.get(f"/api/collections/posts/records?{query}")
    assert r.status_code == 200, r.text
    assert (r.json()["page"], r.json()["perPage"]) == (page, per_page)


@pytest.mark.parametrize("query", ["perPage=abc", "page=1.5", "perPage=1e3", "page=x", "skipTotal=maybe",
                                   "skipTotal=yes", "sort=nofield", "sort=-nofield", "sort=secret,title"])
async def test_bad_list_params(client: httpx.AsyncClient, su_headers: Headers, query: str) -> None:
    await make_posts(client, su_headers)
    r = await client.get(f"/api/collections/posts/records?{query}")
    assert assert_envelope(r, 400, GENERIC_400) == {}


@pytest.mark.parametrize("value", ["1", "t", "T", "TRUE", "true", "True"])
async def test_skip_total(client: httpx.AsyncClient, su_headers: Headers, value: str) -> None:
    await make_posts(client, su_headers)
    await _seed(client, 3)
    r = await client.get(f"/api/collections/posts/records?skipTotal={value}&perPage=2")
    body = r.json()
    assert body["totalItems"] == -1 and body["totalPages"] == -1 and len(body["items"]) == 2


@pytest.mark.parametrize("value", ["0", "f", "F", "FALSE", "false", "False"])
async def test_skip_total_false(client: httpx.AsyncClient, su_headers: Headers, value: str) -> None:
    await make_posts(client, su_headers)
    await _seed(client, 3)
    r = await client.get(f"/api/collections/posts/records?skipTotal={value}&perPage=2")
    assert r.json()["totalItems"] == 3 and r.json()["totalPages"] == 2


async def test_sort(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    await _seed(client, 6)
    r = await client.get("/api/collections/posts/records?sort=-views")
    views = [i["views"] for i in r.json()["items"]]
    assert views == sorted(views, reverse=True)
    r = await client.get("/api/collections/posts/records?sort=status,-views,title")
    items = [(i["status"], -i["views"], i["title"]) for i in r.json()["items"]]
    assert items == sorted(items)
    r = await client.get("/api/collections/posts/records?sort=%2Btitle")
    titles = [i["title"] for i in r.json()["items"]]
    assert titles == sorted(titles)
    r = await client.get("/api/collections/posts/records?sort=-created,-id")
    assert r.status_code == 200


async def test_superuser_may_sort_by_hidden_field(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    for s in ("b", "c", "a"):
        await create(client, "posts", {"secret": s}, su_headers)
    r = await client.get("/api/collections/posts/records?sort=secret", headers=su_headers)
    assert [i["secret"] for i in r.json()["items"]] == ["a", "b", "c"]


async def test_filter(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    await _seed(client, 6)
    r = await client.get("/api/collections/posts/records", params={"filter": "views = 2 && status = 'live'"})
    assert r.status_code == 200, r.text
    assert [i["title"] for i in r.json()["items"]] == ["t5"]
    assert r.json()["totalItems"] == 1
    r = await client.get("/api/collections/posts/records", params={"filter": "views >"})
    assert_envelope(r, 400, GENERIC_400)
    r = await client.get("/api/collections/posts/records", params={"filter": "nofield = 1"})
    assert_envelope(r, 400, GENERIC_400)


# --- fields projection ----------------------------------------------------------------------------------

async def test_fields_projection(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    rec = await create(client, "posts", {"title": "T", "body": "<p>Hello <b>world</b> this is a long body...</p>",
                                         "loc": {"lon": 1, "lat": 2}})
    url = f"/api/collections/posts/records/{rec['id']}"
    r = await client.get(url + "?fields=id,title")
    assert r.json() == {"id": rec["id"], "title": "T"}
    r = await client.get(url + "?fields=*")
    assert r.json() == rec
    r = await client.get(url + "?fields=*,body:excerpt(20,true)")
    assert r.json()["body"] == "Hello world this is..." and r.json()["title"] == "T"
    r = await client.get(url + "?fields=body:excerpt(20)")
    assert r.json() == {"body": "Hello world this is"}
    r = await client.get(url + "?fields=body:excerpt(500,true)")
    assert r.json() == {"body": "Hello world this is a long body..."}
    r = await client.get(url + "?fields=loc.lat,nope")
    assert r.json() == {"loc": {"lat": 2}}
    r = await client.get(url + "?fields=nope")
    assert r.json() == {}
    r = await client.get("/api/collections/posts/records?fields=title")
    body = r.json()
    assert body["items"] == [{"title": "T"}] and body["totalItems"] == 1
    # never applied to error bodies
    r = await client.get("/api/collections/posts/records/missing?fields=id")
    assert_envelope(r, 404, "The requested resource wasn't found.")
    # and applies to create/update responses
    r = await client.patch(url + "?fields=views", json={"views+": 2})
    assert r.json() == {"views": 2}


# --- modifiers --------------------------------------------------------------------------------------------

async def test_number_modifiers(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    rec = await create(client, "posts", {"views": 10})
    url = f"/api/collections/posts/records/{rec['id']}"
    r = await client.patch(url, json={"views+": 5})
    assert r.json()["views"] == 15
    r = await client.patch(url, json={"views-": 20})
    assert r.json()["views"] == -5
    r = await client.patch(url, json={"views+": "2.5"})
    assert r.json()["views"] == -2.5
    r = await client.patch(url, json={"views": 1, "views+": 1})
    assert r.json()["views"] == 2


async def test_number_modifier_result_is_validated(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="counters", **OPEN_RULES,
                          fields=[{"name": "n", "type": "number", "min": 0}])
    rec = await create(client, "counters", {"n": 15})
    r = await client.patch(f"/api/collections/counters/records/{rec['id']}", json={"n-": 20})
    data = assert_envelope(r, 400, "Failed to update record.")
    assert data["n"]["code"] == "validation_min_number_constraint"
    r = await client.get(f"/api/collections/counters/records/{rec['id']}")
    assert r.json()["n"] == 15


async def test_select_modifiers(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    rec = await create(client, "posts", {"tags": ["a", "b"]})
    url = f"/api/collections/posts/records/{rec['id']}"
    r = await client.patch(url, json={"tags+": "c"})
    assert r.json()["tags"] == ["a", "b", "c"]
    r = await client.patch(url, json={"+tags": ["a"], "tags-": ["b"]})
    assert r.json()["tags"] == ["a", "c"]
    r = await client.patch(url, json={"+tags": "d"})
    assert r.json()["tags"] == ["d", "a", "c"]
    r = await client.patch(url, json={"tags": ["a"], "tags+": "c"})
    assert r.json()["tags"] == ["a", "c"]
    r = await client.patch(url, json={"tags-": ["a", "c"]})
    assert r.json()["tags"] == []
    r = await client.patch(url, json={"tags+": ["x"]})
    data = assert_envelope(r, 400, "Failed to update record.")
    assert data["tags"] == {"code": "validation_invalid_value", "message": "Invalid value x.",
                            "params": {"value": "x"}}


async def test_relation_modifiers(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    a1, a2, a3 = [(await create(client, "authors", {"name": n}))["id"] for n in ("1", "2", "3")]
    rec = await create(client, "posts", {"editors": [a1]})
    url = f"/api/collections/posts/records/{rec['id']}"
    r = await client.patch(url, json={"editors+": [a2, a3]})
    assert r.json()["editors"] == [a1, a2, a3]
    r = await client.patch(url, json={"editors-": a2})
    assert r.json()["editors"] == [a1, a3]
    r = await client.patch(url, json={"+editors": a2})
    assert r.json()["editors"] == [a2, a1, a3]


async def test_single_select_array_keeps_last(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    rec = await create(client, "posts", {"status": ["draft", "live"]})
    assert rec["status"] == "live"


# --- autodate -------------------------------------------------------------------------------------------

async def test_autodate(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    rec = await create(client, "posts", {"title": "a"})
    r = await client.patch(f"/api/collections/posts/records/{rec['id']}",
                           json={"title": "b", "created": "2000-01-01 00:00:00.000Z",
                                 "updated": "2000-01-01 00:00:00.000Z"})
    upd = r.json()
    assert upd["created"] == rec["created"]
    assert upd["updated"] >= rec["updated"] and DATE_RE.match(upd["updated"])
    assert upd["updated"] != "2000-01-01 00:00:00.000Z"


# --- field validation ----------------------------------------------------------------------------------

STRICT_FIELDS: list[dict[str, Any]] = [
    {"name": "title", "type": "text", "min": 2, "max": 10, "pattern": "^[a-z]+$"},
    {"name": "req", "type": "text", "required": True},
    {"name": "n", "type": "number", "min": 1, "max": 100, "onlyInt": True},
    {"name": "flag", "type": "bool"},
    {"name": "mail", "type": "email", "onlyDomains": ["example.com"]},
    {"name": "site", "type": "url", "exceptDomains": ["evil.com"]},
    {"name": "html", "type": "editor", "maxSize": 20},
    {"name": "day", "type": "date", "min": "2020-01-01 00:00:00.000Z", "max": "2030-01-01 00:00:00.000Z"},
    {"name": "pick", "type": "select", "values": ["a", "b", "c"], "maxSelect": 2},
    {"name": "meta", "type": "json", "maxSize": 20},
    {"name": "loc", "type": "geoPoint"},
    {"name": "doc", "type": "file"},
    {"name": "pw", "type": "password", "min": 3},
    {"name": "long", "type": "text"},
]

FIELD_ERRORS: list[tuple[str, Any, str]] = [
    ("title", "a", "validation_min_text_constraint"),
    ("title", "abcdefghijkl", "validation_max_text_constraint"),
    ("title", "ABC", "validation_invalid_format"),
    ("title", {"a": 1}, "validation_invalid_value"),
    ("req", "", "validation_required"),
    ("n", 1.5, "validation_only_int_constraint"),
    ("n", -5, "validation_min_number_constraint"),
    ("n", 500, "validation_max_number_constraint"),
    ("n", "abc", "validation_not_a_number"),
    ("n", "12abc", "validation_not_a_number"),
    ("n", [1], "validation_not_a_number"),
    ("flag", "maybe", "validation_invalid_bool"),
    ("flag", 2, "validation_invalid_bool"),
    ("mail", "nope", "validation_is_email"),
    ("mail", "a@other.com", "validation_email_domain_not_allowed"),
    ("site", "not a url", "validation_invalid_url"),
    ("site", "https://evil.com/x", "validation_url_domain_not_allowed"),
    ("html", "<p>" + "x" * 30 + "</p>", "validation_content_size_limit"),
    ("day", "2000-01-01", "validation_min_greater_equal_than_required"),
    ("day", "2040-01-01", "validation_max_less_equal_than_required"),
    ("day", "notadate", "validation_invalid_date"),
    ("day", "2024-01-02 03:04", "validation_invalid_date"),
    ("day", 12345, "validation_invalid_date"),
    ("pick", ["a", "b", "c"], "validation_too_many_values"),
    ("pick", ["x"], "validation_invalid_value"),
    ("meta", {"k": "x" * 40}, "validation_json_size_limit"),
    ("loc", {"lon": 0, "lat": 100}, "validation_invalid_latitude"),
    ("loc", {"lon": 200, "lat": 0}, "validation_invalid_longitude"),
    ("doc", "foo.png", "validation_invalid_file"),
    ("pw", "ab", "validation_min_text_constraint"),
    ("long", "x" * 5001, "validation_max_text_constraint"),
]


@pytest.mark.parametrize(("field", "value", "code"), FIELD_ERRORS,
                         ids=[f"{f}-{c}-{i}" for i, (f, _v, c) in enumerate(FIELD_ERRORS)])
async def test_field_validation(client: httpx.AsyncClient, su_headers: Headers, field: str, value: Any,
                                code: str) -> None:
    await make_collection(client, su_headers, name="strict", **OPEN_RULES, fields=STRICT_FIELDS)
    body = {"req": "ok", field: value}
    r = await client.post("/api/collections/strict/records", json=body)
    data = assert_envelope(r, 400, "Failed to create record.")
    assert data[field]["code"] == code, data
    assert set(data) == {field}
    r = await client.get("/api/collections/strict/records")
    assert r.json()["totalItems"] == 0
    # the same value on update
    ok = await create(client, "strict", {"req": "ok"})
    r = await client.patch(f"/api/collections/strict/records/{ok['id']}", json={field: value})
    data = assert_envelope(r, 400, "Failed to update record.")
    assert data[field]["code"] == code, data


async def test_field_error_messages_and_params(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="strict", **OPEN_RULES, fields=STRICT_FIELDS)
    r = await client.post("/api/collections/strict/records", json={
        "title": "a", "n": 500, "pick": ["a", "b", "c"], "pw": "ab", "html": "x" * 21})
    data = assert_envelope(r, 400, "Failed to create record.")
    assert data["req"] == {"code": "validation_required", "message": "Cannot be blank."}
    assert data["title"] == {"code": "validation_min_text_constraint", "message": "Must be at least 2 character(s).",
                             "params": {"min": 2}}
    assert data["n"] == {"code": "validation_max_number_constraint", "message": "Must be less or equal than 100.",
                         "params": {"max": 100}}
    assert data["pick"] == {"code": "validation_too_many_values", "message": "Select no more than 2.",
                            "params": {"maxSelect": 2}}
    assert data["pw"] == {"code": "validation_min_text_constraint", "message": "Must be at least 3 character(s)."}
    assert data["html"] == {"code": "validation_content_size_limit",
                            "message": "The maximum allowed content size is 20 bytes.", "params": {"maxSize": 20}}


@pytest.mark.parametrize(("field", "value"), [
    ("title", "abc"), ("n", 0), ("n", "42"), ("n", 1), ("flag", "true"), ("flag", 1), ("flag", "0"),
    ("mail", "x@example.com"), ("site", "example.com"), ("site", "ftp://x.y"), ("day", "2024-01-02"),
    ("pick", ["b", "a"]), ("pick", "c"), ("meta", "[1,2]"), ("meta", "{bad"), ("meta", None),
    ("loc", '{"lon":1,"lat":2}'), ("pw", "abc"),
])
async def test_field_accepts(client: httpx.AsyncClient, su_headers: Headers, field: str, value: Any) -> None:
    await make_collection(client, su_headers, name="strict", **OPEN_RULES, fields=STRICT_FIELDS)
    r = await client.post("/api/collections/strict/records", json={"req": "ok", field: value})
    assert r.status_code == 200, r.text


async def test_coercions(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="strict", **OPEN_RULES, fields=STRICT_FIELDS)
    rec = await create(client, "strict", {"req": "ok", "n": "42", "flag": "1", "meta": "[1,2]",
                                          "day": "2024-01-02", "loc": '{"lon":1.5,"lat":2}', "pw": "secret1"})
    assert rec["n"] == 42 and rec["flag"] is True and rec["meta"] == [1, 2]
    assert rec["day"] == "2024-01-02 00:00:00.000Z"
    assert rec["loc"] == {"lon": 1.5, "lat": 2}
    assert rec["pw"] == ""  # a custom password field is output as ""
    rec = await create(client, "strict", {"req": "ok", "meta": "{bad"})
    assert rec["meta"] == "{bad"


async def test_multipart_strictness(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="strict", **OPEN_RULES, fields=STRICT_FIELDS)
    cases = [("meta", "{bad", "validation_invalid_json"), ("n", "abc", "validation_not_a_number"),
             ("flag", "maybe", "validation_invalid_bool"), ("day", "notadate", "validation_invalid_date")]
    for field, value, code in cases:
        r = await client.post("/api/collections/strict/records", files=[("req", (None, "ok")),
                                                                         (field, (None, value))])
        data = assert_envelope(r, 400, "Failed to create record.")
        assert data[field]["code"] == code, (field, data)


async def test_relation_validation(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    a1 = (await create(client, "authors", {"name": "1"}))["id"]
    r = await client.post("/api/collections/posts/records", json={"author": "nonexistent0000"})
    data = assert_envelope(r, 400, "Failed to create record.")
    assert data["author"] == {"code": "validation_missing_rel_records",
                              "message": "Failed to find all relation records with the provided ids."}
    r = await client.post("/api/collections/posts/records", json={"editors": [a1, "nonexistent0000"]})
    data = assert_envelope(r, 400, "Failed to create record.")
    assert data["editors"]["code"] == "validation_missing_rel_records"
    r = await client.post("/api/collections/posts/records", json={"editors": [a1] * 3})
    assert r.status_code == 200 and r.json()["editors"] == [a1]


async def test_relation_min_max_select(client: httpx.AsyncClient, su_headers: Headers) -> None:
    authors = await make_collection(client, su_headers, name="authors", **OPEN_RULES)
    await make_collection(client, su_headers, name="teams", **OPEN_RULES, fields=[
        {"name": "members", "type": "relation", "collectionId": authors["id"], "minSelect": 2, "maxSelect": 3}])
    ids = [(await create(client, "authors", {}))["id"] for _ in range(4)]
    r = await client.post("/api/collections/teams/records", json={"members": ids[:1]})
    assert assert_envelope(r, 400, "Failed to create record.")["members"]["code"] == "validation_not_enough_values"
    r = await client.post("/api/collections/teams/records", json={"members": ids})
    assert assert_envelope(r, 400, "Failed to create record.")["members"]["code"] == "validation_too_many_values"
    await create(client, "teams", {"members": ids[:2]})
    await create(client, "teams", {"members": []})  # minSelect applies to a non-empty value only


async def test_unique_index(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="slugs", **OPEN_RULES,
                          fields=[{"name": "slug", "type": "text"}, {"name": "other", "type": "text"}],
                          indexes=["CREATE UNIQUE INDEX idx_slug ON slugs (slug)"])
    await create(client, "slugs", {"slug": "a"})
    second = await create(client, "slugs", {"slug": "b"})
    r = await client.post("/api/collections/slugs/records", json={"slug": "a"})
    data = assert_envelope(r, 400, "Failed to create record.")
    assert data == {"slug": {"code": "validation_not_unique", "message": "Value must be unique."}}
    r = await client.patch(f"/api/collections/slugs/records/{second['id']}", json={"slug": "a"})
    data = assert_envelope(r, 400, "Failed to update record.")
    assert data == {"slug": {"code": "validation_not_unique", "message": "Value must be unique."}}
    r = await client.get("/api/collections/slugs/records?sort=slug")
    assert [i["slug"] for i in r.json()["items"]] == ["a", "b"]


async def test_nocase_unique_index(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="tags", **OPEN_RULES, fields=[{"name": "name", "type": "text"}],
                          indexes=["CREATE UNIQUE INDEX idx_tag_name ON tags (name COLLATE NOCASE)"])
    await create(client, "tags", {"name": "Python"})
    r = await client.post("/api/collections/tags/records", json={"name": "PYTHON"})
    data = assert_envelope(r, 400, "Failed to create record.")
    assert data["name"]["code"] == "validation_not_unique"


# --- rules ------------------------------------------------------------------------------------------

async def test_null_rules_are_superuser_only(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_collection(client, su_headers, name="locked", fields=[{"name": "title", "type": "text"}])
    rec = await create(client, "locked", {"title": "x"}, su_headers)
    user = await user_headers(client)
    for headers in ({}, user):
        for method, url, body in (
            ("GET", "/api/collections/locked/records", None),
            ("GET", f"/api/collections/locked/records/{rec['id']}", None),
            ("GET", "/api/collections/locked/records/doesnotexist123", None),  # null check before lookup
            ("POST", "/api/collections/locked/records", {"title": "y"}),
            ("PATCH", f"/api/collections/locked/records/{rec['id']}", {"title": "y"}),
            ("PATCH", "/api/collections/locked/records/doesnotexist123", {"title": "y"}),
            ("DELETE", f"/api/collections/locked/records/{rec['id']}", None),
            ("DELETE", "/api/collections/locked/records/doesnotexist123", None),
        ):
            r = await client.request(method, url, json=body, headers=headers)
            assert_envelope(r, 403, "Only superusers can perform this action.")
    r = await client.get("/api/collections/locked/records", headers=su_headers)
    assert [i["title"] for i in r.json()["items"]] == ["x"]


async def test_rule_that_matches_nothing(client: httpx.AsyncClient, su_headers: Headers) -> None:
    """``id = "nothing"``: holds whether rules are compiled or (without the resolver) deny outright."""
    rule = 'id = "nothing"'
    await make_collection(client, su_headers, name="guarded", listRule=rule, viewRule=rule, createRule=rule,
                          updateRule=rule, deleteRule=rule, fields=[{"name": "title", "type": "text"}])
    rec = await create(client, "guarded", {"title": "x"}, su_headers)
    user = await user_headers(client)
    for headers in ({}, user):
        r = await client.get("/api/collections/guarded/records", headers=headers)
        assert r.status_code == 200 and r.json()["items"] == [] and r.json()["totalItems"] == 0
        r = await client.get(f"/api/collections/guarded/records/{rec['id']}", headers=headers)
        assert_envelope(r, 404, "The requested resource wasn't found.")
        r = await client.post("/api/collections/guarded/records", json={"title": "y"}, headers=headers)
        assert assert_envelope(r, 400, "Failed to create record.") == {}
        r = await client.patch(f"/api/collections/guarded/records/{rec['id']}", json={"title": "y"},
                               headers=headers)
        assert_envelope(r, 404, "The requested resource wasn't found.")
        r = await client.delete(f"/api/collections/guarded/records/{rec['id']}", headers=headers)
        assert_envelope(r, 404, "The requested resource wasn't found.")
    # failing the create rule wins over field validation: empty data
    await client.patch("/api/collections/guarded", headers=su_headers,
                       json={"fields": [{"name": "title", "type": "text", "required": True}]})
    r = await client.post("/api/collections/guarded/records", json={})
    assert assert_envelope(r, 400, "Failed to create record.") == {}
    # superusers bypass rules; nothing above changed the record
    r = await client.get(f"/api/collections/guarded/records/{rec['id']}", headers=su_headers)
    assert r.status_code == 200 and r.json()["title"] == "x"
    r = await client.get("/api/collections/guarded/records", headers=su_headers)
    assert r.json()["totalItems"] == 1


async def test_empty_rules_allow_guests(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    rec = await create(client, "posts", {"title": "guest"})
    r = await client.get(f"/api/collections/posts/records/{rec['id']}")
    assert r.status_code == 200


async def test_guest_cannot_set_hidden_field(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    rec = await create(client, "posts", {"title": "t", "secret": "guest value"})
    r = await client.get(f"/api/collections/posts/records/{rec['id']}", headers=su_headers)
    assert r.json()["secret"] == ""


# --- delete cascades ----------------------------------------------------------------------------------

async def test_cascade_delete_and_required_refusal(client: httpx.AsyncClient, su_headers: Headers) -> None:
    posts = await make_collection(client, su_headers, name="posts", **OPEN_RULES,
                                  fields=[{"name": "title", "type": "text"}])
    await make_collection(client, su_headers, name="notes", **OPEN_RULES, fields=[
        {"name": "post", "type": "relation", "collectionId": posts["id"], "cascadeDelete": True}])
    await make_collection(client, su_headers, name="pins", **OPEN_RULES, fields=[
        {"name": "post", "type": "relation", "collectionId": posts["id"], "required": True}])
    await make_collection(client, su_headers, name="lists", **OPEN_RULES, fields=[
        {"name": "posts", "type": "relation", "collectionId": posts["id"], "maxSelect": 5}])
    p1 = await create(client, "posts", {"title": "1"})
    p2 = await create(client, "posts", {"title": "2"})
    note = await create(client, "notes", {"post": p1["id"]})
    lst = await create(client, "lists", {"posts": [p1["id"], p2["id"]]})
    pin = await create(client, "pins", {"post": p2["id"]})

    r = await client.delete(f"/api/collections/posts/records/{p1['id']}")
    assert r.status_code == 204, r.text
    assert (await client.get(f"/api/collections/notes/records/{note['id']}")).status_code == 404
    r = await client.get(f"/api/collections/lists/records/{lst['id']}")
    assert r.json()["posts"] == [p2["id"]]

    r = await client.delete(f"/api/collections/posts/records/{p2['id']}")
    assert_envelope(r, 400, "Failed to delete record. Make sure that the record is not part of a required "
                            "relation reference.")
    assert (await client.get(f"/api/collections/posts/records/{p2['id']}")).status_code == 200
    r = await client.get(f"/api/collections/lists/records/{lst['id']}")
    assert r.json()["posts"] == [p2["id"]]  # the refused delete changed nothing
    await client.delete(f"/api/collections/pins/records/{pin['id']}")
    r = await client.delete(f"/api/collections/posts/records/{p2['id']}")
    assert r.status_code == 204
    r = await client.get(f"/api/collections/lists/records/{lst['id']}")
    assert r.json()["posts"] == []


async def test_recursive_cascade(client: httpx.AsyncClient, su_headers: Headers) -> None:
    a = await make_collection(client, su_headers, name="a", **OPEN_RULES)
    b = await make_collection(client, su_headers, name="b", **OPEN_RULES, fields=[
        {"name": "a", "type": "relation", "collectionId": a["id"], "cascadeDelete": True}])
    await make_collection(client, su_headers, name="c", **OPEN_RULES, fields=[
        {"name": "b", "type": "relation", "collectionId": b["id"], "cascadeDelete": True, "maxSelect": 2}])
    ra = await create(client, "a", {})
    rb = await create(client, "b", {"a": ra["id"]})
    rc = await create(client, "c", {"b": [rb["id"]]})
    r = await client.delete(f"/api/collections/a/records/{ra['id']}")
    assert r.status_code == 204
    assert (await client.get(f"/api/collections/b/records/{rb['id']}")).status_code == 404
    assert (await client.get(f"/api/collections/c/records/{rc['id']}")).status_code == 404


# --- view collections ---------------------------------------------------------------------------------

async def test_view_collection_records_are_read_only(client: httpx.AsyncClient, su_headers: Headers) -> None:
    await make_posts(client, su_headers)
    rec = await create(client, "posts", {"title": "visible", "views": 3})
    await make_collection(client, su_headers, name="post_view", type="view", listRule="", viewRule="",
                          viewQuery="SELECT id, title, views FROM posts")
    r = await client.get("/api/collections/post_view/records")
    assert r.status_code == 200, r.text
    assert r.json()["totalItems"] == 1
    item = r.json()["items"][0]
    assert item["id"] == rec["id"] and item["title"] == "visible" and item["views"] == 3
    r = await client.get(f"/api/collections/post_view/records/{rec['id']}")
    assert r.status_code == 200 and r.json()["title"] == "visible"
    for headers in ({}, su_headers):
        r = await client.post("/api/collections/post_view/records", json={"title": "x"}, headers=headers)
        assert_envelope(r, 400 if headers else 403, "Unsupported collection type." if headers else
                        "Only superusers can perform this action.")
        if headers:
            r = await client.patch(f"/api/collections/post_view/records/{rec['id']}", json={"title": "x"},
                                   headers=headers)
            assert_envelope(r, 400, "Unsupported collection type.")
            r = await client.delete(f"/api/collections/post_view/records/{rec['id']}", headers=headers)
            assert_envelope(r, 400, "Unsupported collection type.")
    r = await client.get(f"/api/collections/posts/records/{rec['id']}")
    assert r.json()["title"] == "visible"

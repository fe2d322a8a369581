"""The blog template: authors (auth), posts, comments — every rule allows and denies."""

from __future__ import annotations

import httpx
import pytest

from tests.templates.helpers import ids, import_template, signup

POSTS = "/api/collections/posts/records"
COMMENTS = "/api/collections/comments/records"
AUTHORS = "/api/collections/authors/records"


@pytest.fixture
async def blog(client: httpx.AsyncClient, su_headers: dict[str, str]) -> dict[str, dict[str, str] | str]:
    return await make_blog(client, su_headers)


async def make_blog(client: httpx.AsyncClient, su_headers: dict[str, str]) -> dict[str, dict[str, str] | str]:
    """Import the template and create its accounts (also used by test_oracle.py)."""
    await import_template(client, su_headers, "blog")
    a1, h1 = await signup(client, "authors", "a1@example.com", name="Ann")
    a2, h2 = await signup(client, "authors", "a2@example.com", name="Bob")
    return {"a1": a1, "h1": h1, "a2": a2, "h2": h2}


async def _post(client: httpx.AsyncClient, headers: dict[str, str], author: str, **extra: object) -> str:
    r = await client.post(POSTS, json={"title": "t", "author": author, **extra}, headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def test_import_echoes_the_rules(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    items = await import_template(client, su_headers, "blog")
    for item in items:
        r = await client.get(f"/api/collections/{item['name']}", headers=su_headers)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["id"] == item["id"] and got["type"] == item["type"]
        for rule in ("listRule", "viewRule", "createRule", "updateRule", "deleteRule"):
            assert got[rule] == item[rule], rule
    # importing the same template again changes nothing and still succeeds
    await import_template(client, su_headers, "blog")


async def test_authors_sign_up_and_edit_only_themselves(client: httpx.AsyncClient, blog: dict) -> None:
    a1, h1, a2, h2 = blog["a1"], blog["h1"], blog["a2"], blog["h2"]
    # public profiles: guests list authors
    assert ids(await client.get(AUTHORS)) == sorted([a1, a2])
    assert (await client.patch(f"{AUTHORS}/{a1}", json={"name": "x"})).status_code == 404
    assert (await client.patch(f"{AUTHORS}/{a1}", json={"name": "x"}, headers=h2)).status_code == 404
    r = await client.patch(f"{AUTHORS}/{a1}", json={"bio": "hello"}, headers=h1)
    assert r.status_code == 200 and r.json()["bio"] == "hello", r.text
    assert (await client.delete(f"{AUTHORS}/{a1}", headers=h2)).status_code == 404
    assert (await client.delete(f"{AUTHORS}/{a2}", headers=h2)).status_code == 204


async def test_post_create_requires_self_as_author(client: httpx.AsyncClient, blog: dict,
                                                    su_headers: dict[str, str]) -> None:
    a1, h1, a2 = blog["a1"], blog["h1"], blog["a2"]
    assert (await client.post(POSTS, json={"title": "t", "author": a1})).status_code == 400  # guest
    r = await client.post(POSTS, json={"title": "t", "author": a2}, headers=h1)  # impersonation
    assert r.status_code == 400 and r.json()["message"] == "Failed to create record."
    assert (await client.post(POSTS, json={"title": "t"}, headers=h1)).status_code == 400  # no author
    # an auth record of another collection cannot post, even naming itself
    r = await client.post("/api/collections/users/records",
                          json={"email": "u@example.com", "password": "password123", "passwordConfirm": "password123"})
    assert r.status_code == 200, r.text
    uid = r.json()["id"]
    r = await client.post("/api/collections/users/auth-with-password",
                          json={"identity": "u@example.com", "password": "password123"})
    hu = {"Authorization": r.json()["token"]}
    assert (await client.post(POSTS, json={"title": "t", "author": uid}, headers=hu)).status_code == 400
    r = await client.post(POSTS, json={"title": "Hi", "author": a1, "categories": ["tech", "news"]}, headers=h1)
    assert r.status_code == 200 and r.json()["categories"] == ["tech", "news"], r.text
    # superusers bypass the rule
    assert (await client.post(POSTS, json={"title": "t", "author": a2}, headers=su_headers)).status_code == 200


async def test_published_posts_are_public_drafts_private(client: httpx.AsyncClient, blog: dict) -> None:
    a1, h1, a2, h2 = blog["a1"], blog["h1"], blog["a2"], blog["h2"]
    pub = await _post(client, h1, a1, published=True, categories=["tech"])
    draft = await _post(client, h1, a1, categories=["life"])
    other_draft = await _post(client, h2, a2)
    assert ids(await client.get(POSTS)) == [pub]
    assert ids(await client.get(POSTS, headers=h2)) == sorted([pub, other_draft])
    assert ids(await client.get(POSTS, headers=h1)) == sorted([pub, draft])
    assert (await client.get(f"{POSTS}/{draft}")).status_code == 404
    assert (await client.get(f"{POSTS}/{draft}", headers=h2)).status_code == 404
    assert (await client.get(f"{POSTS}/{draft}", headers=h1)).status_code == 200
    assert (await client.get(f"{POSTS}/{pub}")).status_code == 200
    # a client filter narrows within the rule, never widens it
    assert ids(await client.get(POSTS, params={"filter": "categories:each ?= 'life'"}, headers=h2)) == []
    assert ids(await client.get(POSTS, params={"filter": "categories:each ?= 'life'"}, headers=h1)) == [draft]
    assert ids(await client.get(POSTS, params={"filter": "published = false"})) == []


async def test_post_update_and_delete_only_by_author(client: httpx.AsyncClient, blog: dict) -> None:
    a1, h1, a2, h2 = blog["a1"], blog["h1"], blog["a2"], blog["h2"]
    pub = await _post(client, h1, a1, published=True)
    assert (await client.patch(f"{POSTS}/{pub}", json={"title": "x"})).status_code == 404
    assert (await client.patch(f"{POSTS}/{pub}", json={"title": "x"}, headers=h2)).status_code == 404
    r = await client.patch(f"{POSTS}/{pub}", json={"title": "new", "author": a1}, headers=h1)
    assert r.status_code == 200 and r.json()["title"] == "new", r.text
    # the author cannot hand the post to somebody else
    assert (await client.patch(f"{POSTS}/{pub}", json={"author": a2}, headers=h1)).status_code == 404
    assert (await client.delete(f"{POSTS}/{pub}")).status_code == 404
    assert (await client.delete(f"{POSTS}/{pub}", headers=h2)).status_code == 404
    assert (await client.delete(f"{POSTS}/{pub}", headers=h1)).status_code == 204


async def test_comments_follow_their_post(client: httpx.AsyncClient, blog: dict) -> None:
    a1, h1, a2, h2 = blog["a1"], blog["h1"], blog["a2"], blog["h2"]
    pub = await _post(client, h1, a1, published=True)
    draft = await _post(client, h1, a1)

    async def comment(headers: dict[str, str] | None, post: str, author: str) -> httpx.Response:
        return await client.post(COMMENTS, json={"content": "c", "post": post, "author": author}, headers=headers)

    assert (await comment(None, pub, a2)).status_code == 400  # guest
    assert (await comment(h2, pub, a1)).status_code == 400  # as somebody else
    assert (await comment(h2, draft, a2)).status_code == 400  # post not readable by a2
    r = await comment(h2, pub, a2)
    assert r.status_code == 200, r.text
    c_pub = r.json()["id"]
    r = await comment(h1, draft, a1)  # own draft is readable by its author
    assert r.status_code == 200, r.text
    c_draft = r.json()["id"]

    assert ids(await client.get(COMMENTS)) == [c_pub]
    assert ids(await client.get(COMMENTS, headers=h2)) == [c_pub]
    assert ids(await client.get(COMMENTS, headers=h1)) == sorted([c_pub, c_draft])
    assert (await client.get(f"{COMMENTS}/{c_draft}", headers=h2)).status_code == 404
    # unpublishing the post hides its comments from everyone but the post's author
    assert (await client.patch(f"{POSTS}/{pub}", json={"published": False}, headers=h1)).status_code == 200
    assert ids(await client.get(COMMENTS)) == []
    assert ids(await client.get(COMMENTS, headers=h2)) == []
    assert (await client.get(f"{COMMENTS}/{c_pub}", headers=h1)).status_code == 200
    assert (await client.patch(f"{POSTS}/{pub}", json={"published": True}, headers=h1)).status_code == 200

    # edit: only the comment's author, and it cannot be moved or re-attributed
    assert (await client.patch(f"{COMMENTS}/{c_pub}", json={"content": "x"}, headers=h1)).status_code == 404
    r = await client.patch(f"{COMMENTS}/{c_pub}", json={"content": "edited"}, headers=h2)
    assert r.status_code == 200 and r.json()["content"] == "edited", r.text
    other = await _post(client, h2, a2, published=True)
    assert (await client.patch(f"{COMMENTS}/{c_pub}", json={"post": other}, headers=h2)).status_code == 404
    assert (await client.patch(f"{COMMENTS}/{c_pub}", json={"author": a1}, headers=h2)).status_code == 404

    # delete: the comment's author or the post's author (moderation), nobody else
    c_other = (await comment(h1, other, a1)).json()["id"]
    assert (await client.delete(f"{COMMENTS}/{c_other}")).status_code == 404
    assert (await client.delete(f"{COMMENTS}/{c_draft}", headers=h2)).status_code == 404
    assert (await client.delete(f"{COMMENTS}/{c_pub}", headers=h1)).status_code == 204  # moderation
    assert (await client.delete(f"{COMMENTS}/{c_other}", headers=h1)).status_code == 204  # own comment


async def test_deleting_a_post_cascades_to_its_comments(client: httpx.AsyncClient, blog: dict,
                                                         su_headers: dict[str, str]) -> None:
    a1, h1, a2, h2 = blog["a1"], blog["h1"], blog["a2"], blog["h2"]
    pub = await _post(client, h1, a1, published=True)
    r = await client.post(COMMENTS, json={"content": "c", "post": pub, "author": a2}, headers=h2)
    assert r.status_code == 200, r.text
    assert (await client.delete(f"{POSTS}/{pub}", headers=h1)).status_code == 204
    assert ids(await client.get(COMMENTS, headers=su_headers)) == []

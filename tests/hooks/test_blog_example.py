"""examples/blog_hooks: comment mails through a real SMTP server (aiosmtpd), exact comment counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keepbase import App
from tests.auth.conftest import Mailbox, running_mailbox, text_of

HOOKS = Path(__file__).resolve().parents[2] / "examples" / "blog_hooks" / "hooks"
POSTS = "/api/collections/posts/records"
COMMENTS = "/api/collections/comments/records"


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    with running_mailbox() as box:
        yield box


async def author(client: httpx.AsyncClient, email: str) -> tuple[str, dict[str, str]]:
    r = await client.post("/api/collections/authors/records",
                          json={"email": email, "password": "secret12345", "passwordConfirm": "secret12345"})
    assert r.status_code == 200, r.text
    r = await client.post("/api/collections/authors/auth-with-password",
                          json={"identity": email, "password": "secret12345"})
    assert r.status_code == 200, r.text
    return r.json()["record"]["id"], {"Authorization": r.json()["token"]}


async def comment_count(client: httpx.AsyncClient, post: str) -> Any:
    return (await client.get(f"{POSTS}/{post}")).json()["comment_count"]


async def test_blog_hooks(app: App, client: httpx.AsyncClient, su_headers: dict[str, str], smtp: Mailbox) -> None:
    assert app.load_hooks(HOOKS) == ["blog.py"]
    app.settings.patch({"smtp": {"enabled": True, "host": "127.0.0.1", "port": smtp.port, "tls": False},
                        "batch": {"enabled": True}})
    alice, alice_h = await author(client, "alice@example.com")
    bob, bob_h = await author(client, "bob@example.com")
    r = await client.post(POSTS, headers=alice_h, json={"title": "Hello", "author": alice, "published": True,
                                                        "comment_count": 50})
    assert r.status_code == 200, r.text
    post = r.json()["id"]
    assert r.json()["comment_count"] == 0

    r = await client.post(COMMENTS, headers=bob_h, json={"content": "Nice <post>!", "post": post, "author": bob})
    assert r.status_code == 200, r.text
    bobs = r.json()["id"]
    assert await comment_count(client, post) == 1
    [mail] = smtp.wait(1)
    assert mail["To"] == "alice@example.com" and mail["Subject"] == "New comment on “Hello”"
    assert "Nice <post>!" in text_of(mail)

    r = await client.post(COMMENTS, headers=alice_h, json={"content": "Thanks", "post": post, "author": alice})
    assert r.status_code == 200
    assert await comment_count(client, post) == 2

    # the count is not writable by clients
    r = await client.patch(f"{POSTS}/{post}", headers=alice_h, json={"comment_count": 99, "title": "Hello!"})
    assert r.status_code == 200 and r.json()["comment_count"] == 2

    assert (await client.delete(f"{COMMENTS}/{bobs}", headers=bob_h)).status_code == 204
    assert await comment_count(client, post) == 1

    # a failing batch leaves neither comments, nor counts, nor mails behind
    r = await client.post("/api/batch", headers=bob_h, json={"requests": [
        {"method": "POST", "url": COMMENTS, "body": {"content": "one", "post": post, "author": bob}},
        {"method": "POST", "url": COMMENTS, "body": {"content": "two", "post": post, "author": bob}},
        {"method": "POST", "url": COMMENTS, "body": {"content": "", "post": post, "author": bob}}]})
    assert r.status_code == 400
    assert await comment_count(client, post) == 1
    r = await client.post("/api/batch", headers=bob_h, json={"requests": [
        {"method": "POST", "url": COMMENTS, "body": {"content": "one", "post": post, "author": bob}},
        {"method": "POST", "url": COMMENTS, "body": {"content": "two", "post": post, "author": bob}}]})
    assert r.status_code == 200, r.text
    assert await comment_count(client, post) == 3
    assert len(smtp.wait(3)) == 3  # bob's first comment + the two committed batch comments
    assert len(smtp.messages) == 3

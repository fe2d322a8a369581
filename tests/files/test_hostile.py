"""Hostile uploads: every one is refused or neutralised, and none leaves a stray file behind."""

from __future__ import annotations

import re

import httpx
import pytest

from keepbase.app import App
from tests.conftest import make_collection

from .conftest import bomb_png, png, stored_files
from .helpers import OPEN, create, posts

SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)">'
       b'<script>fetch("/api/collections/_superusers/records")</script></svg>')
HTML = b"<!DOCTYPE html><html><body><script>alert(document.domain)</script></body></html>"


def _under(app: App, rec: dict[str, str]) -> list[str]:
    prefix = f"{rec['collectionId']}/{rec['id']}/"
    return [p for p in stored_files(app) if p.startswith(prefix)]


@pytest.mark.parametrize("name", [
    "../../../../etc/passwd", "../data.db", "/etc/passwd", "/abs/evil.png", "..\\..\\windows\\win.ini",
    "a\x00.png", "evil.png\x00.html", "．．／．．／x.png", "ｅｖｉｌ.png", "\u202egnp.exe", "....//....//x",
    ".htaccess", "~/.ssh/id_rsa", "C:\\boot.ini",
])
async def test_traversal_names_are_stored_inside_the_record_folder(
        client: httpx.AsyncClient, su_headers: dict[str, str], app: App, name: str) -> None:
    await posts(client, su_headers)
    r = await create(client, [("doc", (name, b"payload", "text/plain"))])
    assert r.status_code == 200, r.text
    rec = r.json()
    stored = rec["doc"]
    assert re.fullmatch(r"[a-z0-9_]+_[a-z0-9]{10}(\.[A-Za-z0-9_.*+=#-]*)?", stored), stored
    assert _under(app, rec) == [f"{rec['collectionId']}/{rec['id']}/{stored}"]
    assert stored_files(app) == _under(app, rec)
    r = await client.get(f"/api/files/posts/{rec['id']}/{stored}")
    assert r.status_code == 200 and r.content == b"payload"


async def test_client_sent_names_cannot_point_outside(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                      app: App) -> None:
    await posts(client, su_headers)
    rec = (await create(client, [("doc", ("ok.txt", b"ok", "text/plain"))])).json()
    for name in ["../../data.db", "/etc/passwd", f"../{rec['id']}/{rec['doc']}", "..", "."]:
        r = await client.patch(f"/api/collections/posts/records/{rec['id']}", json={"doc": name})
        assert r.status_code == 400 and r.json()["data"]["doc"]["code"] == "validation_invalid_file"
        r = await client.patch(f"/api/collections/posts/records/{rec['id']}", json={"doc-": name})
        assert r.status_code == 200
    assert r.json()["doc"] == rec["doc"]
    assert stored_files(app) == _under(app, rec)


async def test_bytes_disagreeing_with_extension(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                app: App) -> None:
    await make_collection(client, su_headers, name="pics", type="base", **OPEN, fields=[
        {"name": "img", "type": "file", "mimeTypes": ["image/png", "image/jpeg"]},
        {"name": "any", "type": "file"}])
    r = await create(client, [("img", ("photo.png", HTML, "image/png"))], coll="pics", data={})
    assert r.status_code == 400 and r.json()["data"]["img"]["code"] == "validation_invalid_mime_type"
    assert stored_files(app) == []
    # without a mime list it is stored, but served as what it is: HTML, as a sandboxed attachment
    r = await create(client, [("any", ("photo.png", HTML, "image/png"))], coll="pics", data={})
    rec = r.json()
    r = await client.get(f"/api/files/pics/{rec['id']}/{rec['any']}")
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("name", "body", "ctype"), [
    ("drawing.svg", SVG, "image/svg+xml"), ("drawing.png", SVG, "image/svg+xml"),
    ("page.html", HTML, "text/html; charset=utf-8"), ("feed.xml", b'<?xml version="1.0"?><x/>', "text/xml; charset=utf-8"),
])
async def test_active_content_is_served_safely(client: httpx.AsyncClient, su_headers: dict[str, str],
                                               name: str, body: bytes, ctype: str) -> None:
    await posts(client, su_headers)
    rec = (await create(client, [("doc", (name, body, "image/png"))])).json()
    for q in ("", "?thumb=100x100"):
        r = await client.get(f"/api/files/posts/{rec['id']}/{rec['doc']}{q}")
        assert r.status_code == 200 and r.content == body
        assert r.headers["content-type"] == ctype
        assert r.headers["content-disposition"].startswith("attachment;")
        assert r.headers["content-security-policy"].endswith("sandbox")
        assert r.headers["x-content-type-options"] == "nosniff"


async def test_decompression_bomb_is_refused(client: httpx.AsyncClient, su_headers: dict[str, str],
                                             app: App) -> None:
    await posts(client, su_headers)
    for data in (bomb_png(), bomb_png(8000, 8000)):
        assert len(data) < 20_000
        r = await create(client, [("images", ("bomb.png", data, "image/png"))])
        assert r.status_code == 400, r.text
        assert r.json()["data"]["images"]["code"] == "validation_image_too_large"
    assert stored_files(app) == []


async def test_oversize_body_is_413(client: httpx.AsyncClient, su_headers: dict[str, str], app: App) -> None:
    await make_collection(client, su_headers, name="tiny", type="base", **OPEN, fields=[
        {"name": "f", "type": "file", "maxSize": 1000}])
    limit = app.config.max_body_size + 1000
    big = b"\x00" * (limit + 1)
    r = await create(client, [("f", ("big.bin", big, "application/octet-stream"))], coll="tiny", data={})
    assert r.status_code == 413
    assert r.json() == {"data": {}, "message": "Request entity too large.", "status": 413}

    # without Content-Length: refused while streaming, before the whole body is read
    sent = 0

    async def chunks():  # type: ignore[no-untyped-def]
        nonlocal sent
        yield b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\n\r\n"
        for _ in range(200):
            sent += 1024 * 1024
            yield b"\x00" * (1024 * 1024)
        yield b"\r\n--B--\r\n"

    r = await client.post("/api/collections/tiny/records", content=chunks(),
                          headers={"Content-Type": "multipart/form-data; boundary=B"})
    assert r.status_code == 413
    assert sent < limit + 2 * 1024 * 1024
    assert stored_files(app) == []


@pytest.mark.parametrize("kind", ["files", "fields"])
async def test_thousands_of_parts_are_400(client: httpx.AsyncClient, su_headers: dict[str, str], app: App,
                                          kind: str) -> None:
    await posts(client, su_headers)
    if kind == "files":
        r = await create(client, [("images", (f"{i}.txt", b"x", "text/plain")) for i in range(3000)])
    else:
        r = await client.post("/api/collections/posts/records", files=[("title", (None, b"x")) for _ in range(3000)])
    assert r.status_code == 400
    assert stored_files(app) == []


async def test_malformed_multipart_is_400(client: httpx.AsyncClient, su_headers: dict[str, str], app: App) -> None:
    await posts(client, su_headers)
    for body, ctype in [(b"garbage", "multipart/form-data; boundary=B"), (b"--B\r\n", "multipart/form-data"),
                        (b"--B\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\n\r\nabc",
                         "multipart/form-data; boundary=B")]:
        r = await client.post("/api/collections/posts/records", content=body, headers={"Content-Type": ctype})
        assert r.status_code in (200, 400), body  # never a 500
    assert all("/" in p for p in stored_files(app))
    assert not [p for p in stored_files(app) if p.rsplit("/", 1)[1].startswith(".tmp_")]


async def test_empty_file_input_is_ignored(client: httpx.AsyncClient, su_headers: dict[str, str], app: App) -> None:
    await posts(client, su_headers)
    r = await create(client, [("doc", ("", b"", "application/octet-stream"))])
    assert r.status_code == 200, r.text
    assert r.json()["doc"] == "" and stored_files(app) == []


async def test_many_uploads_beyond_max_select_store_nothing(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                            app: App) -> None:
    await posts(client, su_headers)
    r = await create(client, [("images", ("many.png", png(), "image/png"))] * 10)
    assert r.json()["data"]["images"]["code"] == "validation_too_many_files"
    assert stored_files(app) == []

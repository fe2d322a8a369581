"""GET /api/files/...: headers, thumbs (generated once, cached), ranges, protected files."""

from __future__ import annotations

import io
from email.utils import formatdate

import httpx
import pytest
from PIL import Image

from keepbase.app import App
from tests.conftest import SU_EMAIL, make_collection

from .conftest import png, stored_files
from .helpers import create, posts


async def _post(client: httpx.AsyncClient, su: dict[str, str]) -> dict[str, str]:
    await posts(client, su)
    r = await create(client, [("images", ("My Photo (1).png", png(300, 200), "image/png")),
                              ("doc", ("doc.txt", b"hello world", "text/plain"))])
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_headers(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    rec = await _post(client, su_headers)
    name = rec["images"][0]
    r = await client.get(f"/api/files/posts/{rec['id']}/{name}")
    assert r.status_code == 200 and r.content == png(300, 200)
    h = r.headers
    assert h["content-type"] == "image/png"
    assert h["content-disposition"] == f'inline; filename="{name}"'
    assert h["content-security-policy"] == "default-src 'none'; media-src 'self'; style-src 'unsafe-inline'; sandbox"
    assert h["cache-control"] == "max-age=2592000, stale-while-revalidate=86400"
    assert h["accept-ranges"] == "bytes" and h["x-content-type-options"] == "nosniff"
    assert "x-frame-options" not in h and h["x-xss-protection"] == "1; mode=block"
    assert h["last-modified"].endswith("GMT")
    # text is an attachment; ?download=1 forces attachment for anything
    r = await client.get(f"/api/files/posts/{rec['id']}/{rec['doc']}")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-disposition"] == f'attachment; filename="{rec["doc"]}"'
    for flag in ("1", "true", "t"):
        r = await client.get(f"/api/files/posts/{rec['id']}/{name}?download={flag}")
        assert r.headers["content-disposition"].startswith("attachment;")
    # other API routes keep X-Frame-Options
    r = await client.get("/api/health")
    assert r.headers["x-frame-options"] == "SAMEORIGIN"


async def test_ranges_and_conditional(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    rec = await _post(client, su_headers)
    url = f"/api/files/posts/{rec['id']}/{rec['doc']}"
    r = await client.get(url, headers={"Range": "bytes=0-4"})
    assert r.status_code == 206 and r.content == b"hello"
    assert r.headers["content-range"] == "bytes 0-4/11"
    r = await client.get(url, headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == b"world"
    r = await client.get(url, headers={"Range": "bytes=50-"})
    assert r.status_code == 416
    future = formatdate(2_000_000_000, usegmt=True)
    r = await client.get(url, headers={"If-Modified-Since": future})
    assert r.status_code == 304 and r.content == b""


async def test_not_found(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    rec = await _post(client, su_headers)
    missing = "The requested resource wasn't found."
    for url in [f"/api/files/nope/{rec['id']}/{rec['doc']}", f"/api/files/posts/nope/{rec['doc']}",
                f"/api/files/posts/{rec['id']}/other_abcdefghij.txt", f"/api/files/posts/{rec['id']}/..",
                f"/api/files/posts/{rec['id']}/%2e%2e%2f%2e%2e%2fdata.db", f"/api/files/posts/..%2f../{rec['doc']}"]:
        r = await client.get(url)
        assert r.status_code == 404, url
        assert r.json()["message"] in (missing, "File not found.", "Missing or invalid collection context.")


async def test_thumbs(client: httpx.AsyncClient, su_headers: dict[str, str], app: App,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    rec = await _post(client, su_headers)
    name = rec["images"][0]
    url = f"/api/files/posts/{rec['id']}/{name}"
    import keepbase.store.file_downloads as fd

    calls: list[str] = []
    real = fd.make_thumb

    def counting(data: bytes, size: str) -> bytes:
        calls.append(size)
        return real(data, size)

    monkeypatch.setattr(fd, "make_thumb", counting)
    for size, expected in [("100x100", (100, 100)), ("50x0", (50, 33)), ("20x20f", (20, 13))]:
        for _ in range(2):
            r = await client.get(f"{url}?thumb={size}")
            assert r.status_code == 200
            assert Image.open(io.BytesIO(r.content)).size == expected
            assert r.headers["content-disposition"] == f'inline; filename="{size}_{name}"'
    assert calls == ["100x100", "50x0", "20x20f"]  # each generated once, then served from the cache
    assert f"{rec['collectionId']}/{rec['id']}/thumbs_{name}/50x0_{name}" in stored_files(app)
    # sizes not allowed by the field, bad sizes and non-images: the original, no new file
    before = stored_files(app)
    for q in ["10x10", "abc", "0x0", "100x100x"]:
        r = await client.get(f"{url}?thumb={q}")
        assert r.status_code == 200 and r.content == png(300, 200), q
    r = await client.get(f"/api/files/posts/{rec['id']}/{rec['doc']}?thumb=100x100")
    assert r.content == b"hello world"
    assert stored_files(app) == before


async def test_protected_files_and_file_token(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    users = "users"
    r = await client.post(f"/api/collections/{users}/records", json={
        "email": "u1@example.com", "password": "pass123456", "passwordConfirm": "pass123456"})
    assert r.status_code == 200, r.text
    u1 = r.json()
    await client.post(f"/api/collections/{users}/records", json={
        "email": "u2@example.com", "password": "pass123456", "passwordConfirm": "pass123456"})

    async def login(email: str, password: str = "pass123456", coll: str = users) -> str:
        r = await client.post(f"/api/collections/{coll}/auth-with-password",
                              json={"identity": email, "password": password})
        assert r.status_code == 200, r.text
        return str(r.json()["token"])

    await make_collection(client, su_headers, name="secret", type="base", listRule="", createRule="",
                          viewRule="owner = @request.auth.id", fields=[
                              {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_"},
                              {"name": "f", "type": "file", "protected": True}])
    r = await create(client, [("f", ("secret.txt", b"top secret", "text/plain"))], data={"owner": u1["id"]},
                     coll="secret")
    assert r.status_code == 200, r.text
    rec = r.json()
    url = f"/api/files/secret/{rec['id']}/{rec['f']}"

    # guest token request → 401
    r = await client.post("/api/files/token")
    assert r.status_code == 401
    assert r.json()["message"] == "The request requires valid record authorization token."

    t1, t2 = await login("u1@example.com"), await login("u2@example.com")
    r = await client.post("/api/files/token", headers={"Authorization": t1})
    assert r.status_code == 200
    ft1 = r.json()["token"]
    import jwt

    claims = jwt.decode(ft1, options={"verify_signature": False})
    assert sorted(claims) == ["collectionId", "exp", "id", "type"] and claims["type"] == "file"
    ft2 = (await client.post("/api/files/token", headers={"Authorization": t2})).json()["token"]

    assert (await client.get(url)).status_code == 404  # no token
    assert (await client.get(url, headers={"Authorization": t1})).status_code == 404  # header is not used
    assert (await client.get(f"{url}?token={t1}")).status_code == 404  # an auth token is not a file token
    assert (await client.get(f"{url}?token={ft2}")).status_code == 404  # other user
    r = await client.get(f"{url}?token={ft1}")
    assert r.status_code == 200 and r.content == b"top secret"
    tampered = ft1[:-2] + ("AA" if not ft1.endswith("AA") else "BB")
    assert (await client.get(f"{url}?token={tampered}")).status_code == 404

    # viewRule null → only a superuser file token
    r = await client.patch("/api/collections/secret", json={"viewRule": None}, headers=su_headers)
    assert r.status_code == 200
    assert (await client.get(f"{url}?token={ft1}")).status_code == 404
    su_token = await login(SU_EMAIL, "adminpass123", "_superusers")
    ft_su = (await client.post("/api/files/token", headers={"Authorization": su_token})).json()["token"]
    assert (await client.get(f"{url}?token={ft_su}")).status_code == 200
    # viewRule "" → anyone, even without a token
    await client.patch("/api/collections/secret", json={"viewRule": ""}, headers=su_headers)
    assert (await client.get(url)).status_code == 200

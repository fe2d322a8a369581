"""The whole upload → download → replace → delete flow with S3 enabled in the runtime settings
(a real S3-compatible server: moto in a subprocess)."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from keepbase.app import App
from keepbase.files.s3 import S3Storage

from .conftest import new_bucket, png, s3_settings, stored_files
from .helpers import create, posts, update


async def test_s3_roundtrip(client: httpx.AsyncClient, su_headers: dict[str, str], app: App, s3_endpoint: str) -> None:
    settings = s3_settings(s3_endpoint, new_bucket(s3_endpoint))
    r = await client.patch("/api/settings", json={"s3": settings}, headers=su_headers)
    assert r.status_code == 200, r.text
    assert isinstance(app.storage(), S3Storage)
    await posts(client, su_headers)
    rec = (await create(client, [("images", ("pic.png", png(), "image/png")),
                                 ("doc", ("doc.txt", b"hello s3", "text/plain"))])).json()
    bucket = S3Storage(settings)
    prefix = f"{rec['collectionId']}/{rec['id']}"
    assert bucket.list(prefix) == sorted(f"{prefix}/{n}" for n in [*rec["images"], rec["doc"]])
    assert stored_files(app) == []  # nothing on the local disk

    r = await client.get(f"/api/files/posts/{rec['id']}/{rec['doc']}", headers={"Range": "bytes=6-7"})
    assert r.status_code == 206 and r.content == b"s3"
    r = await client.get(f"/api/files/posts/{rec['id']}/{rec['images'][0]}?thumb=50x0")
    assert Image.open(io.BytesIO(r.content)).size == (50, 33)
    assert f"{prefix}/thumbs_{rec['images'][0]}/50x0_{rec['images'][0]}" in bucket.list(prefix)

    r = await update(client, rec["id"], [("doc", ("new.txt", b"new", "text/plain"))])
    assert r.status_code == 200
    assert f"{prefix}/{rec['doc']}" not in bucket.list(prefix)
    r = await client.delete(f"/api/collections/posts/records/{rec['id']}")
    assert r.status_code == 204
    assert bucket.list(prefix) == []

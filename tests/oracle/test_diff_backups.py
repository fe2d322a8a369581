"""Differential tests for /api/backups, keepbase vs a real PocketBase 0.40: status codes, messages,
validation data, list shape and download headers. Sizes, timestamps and random name parts are
normalised away; restores are not sent to PocketBase (it restarts its process). Every backup a
scenario makes on the shared PocketBase is deleted by the scenario itself."""

from __future__ import annotations

import io
import re
import zipfile
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

pytestmark = ORACLE_MARKS


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hello.txt", "hello")
    return buf.getvalue()


ZIP = _zip()


def _normalise(s: str) -> str:
    s = re.sub(r"_[a-z0-9]{10}(\.|\")", r"_<rand>\1", s)       # "doc_<rand10>.txt" in messages
    s = re.sub(r"_\d{14}\.zip", "_<ts>.zip", s)                # default backup names
    return re.sub(r"Raw error: \n.*", "Raw error: <raw>", s, flags=re.S)  # driver text, local paths


def _ft() -> Step:
    return Step("POST", "/api/files/token", save={"ft": "token"}, status_only=True, label="superuser file token")


SCENARIOS = [
    Scenario("backups_create_list_download_delete", [
        Step("GET", "/api/backups", auth=GUEST, label="guest list"),
        Step("POST", "/api/backups", json={"name": "Bad Name.zip"}, label="name format"),
        Step("POST", "/api/backups", json={"name": "a" * 147 + ".zip"}, label="name too long"),
        Step("POST", "/api/backups", json={"name": "no_extension"}, label="name without .zip"),
        Step("POST", "/api/backups", json={"name": 5}, label="name not a string"),
        Step("POST", "/api/backups", content=b"x", headers={"Content-Type": "text/plain"}, label="text body"),
        Step("POST", "/api/backups", json={"name": "kbo_main.zip"}, label="create"),
        Step("POST", "/api/backups", json={"name": "kbo_main.zip"}, label="name exists"),
        Step("POST", "/api/backups", json={}, label="create with the default name"),
        Step("GET", "/api/backups?fields=key,modified", save={"dflt": "1.key"}, label="list (by key)"),
        _ft(),
        Step("GET", "/api/backups/kbo_main.zip?token={ft}", status_only=True, label="download"),
        Step("GET", "/api/backups/kbo_main.zip", label="download without token"),
        Step("GET", "/api/backups/kbo_main.zip?token={su_token}", label="download with an auth token"),
        Step("GET", "/api/backups/kbo_nope.zip?token={ft}", label="download missing"),
        Step("POST", "/api/backups/kbo_nope.zip/restore", label="restore missing"),
        Step("DELETE", "/api/backups/{dflt}", label="delete default-named"),
        Step("DELETE", "/api/backups/kbo_main.zip", label="delete"),
        Step("DELETE", "/api/backups/kbo_main.zip", label="delete again"),
        Step("GET", "/api/backups?fields=key", label="list after deletes"),
    ], normalise=_normalise),
    Scenario("backups_upload", [
        Step("POST", "/api/backups/upload", files=[("file", ("doc.txt", b"hello", "text/plain"))], label="not a zip"),
        Step("POST", "/api/backups/upload", files=[("file", ("fake.zip", b"hello", "application/zip"))],
             label="zip name, text content"),
        Step("POST", "/api/backups/upload", files=[("other", ("x.zip", ZIP, "application/zip"))], label="no file"),
        Step("POST", "/api/backups/upload", json={}, label="json body"),
        Step("POST", "/api/backups/upload", files=[("file", ("kbo_up.zip", ZIP, "application/zip"))], label="upload"),
        Step("POST", "/api/backups/upload", files=[("file", ("kbo_up.zip", ZIP, "application/zip"))],
             label="upload again"),
        Step("GET", "/api/backups?fields=key", label="listed"),
        Step("DELETE", "/api/backups/kbo_up.zip", label="delete"),
    ], normalise=_normalise),
]


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_backups_same_as_pocketbase(sc: Scenario, engine: str, client: httpx.AsyncClient,
                                          su_headers: dict[str, str], pocketbase: PocketBase,
                                          pocketbase_runs: dict[str, Any]) -> None:
    await assert_same_as_pocketbase(sc, pocketbase, pocketbase_runs, client, su_headers)


HEADERS = ("content-type", "content-disposition", "accept-ranges", "cache-control", "content-security-policy",
           "x-frame-options", "x-content-type-options")


def _download_headers(http: Any, su_token: str, name: str) -> Any:
    """Create ``name``, download it (whole and a range), delete it; the headers that matter."""
    auth = {"Authorization": su_token}
    assert http.post("/api/backups", json={"name": name}, headers=auth).status_code == 204
    try:
        token = http.post("/api/files/token", headers=auth).json()["token"]
        whole = http.get(f"/api/backups/{name}", params={"token": token})
        part = http.get(f"/api/backups/{name}", params={"token": token}, headers={"Range": "bytes=0-3"})
    finally:
        assert http.delete(f"/api/backups/{name}", headers=auth).status_code == 204
    return ({h: whole.headers.get(h) for h in HEADERS}, whole.status_code, whole.content[:4],
            part.status_code, part.content, part.headers.get("content-range", "").split("/")[0])


async def test_backup_download_headers(client: httpx.AsyncClient, su_headers: dict[str, str],
                                       pocketbase: PocketBase) -> None:
    pb = _download_headers(pocketbase.http, pocketbase.su_token, "kbo_headers.zip")
    auth = su_headers
    assert (await client.post("/api/backups", json={"name": "kbo_headers.zip"}, headers=auth)).status_code == 204
    token = (await client.post("/api/files/token", headers=auth)).json()["token"]
    whole = await client.get("/api/backups/kbo_headers.zip", params={"token": token})
    part = await client.get("/api/backups/kbo_headers.zip", params={"token": token}, headers={"Range": "bytes=0-3"})
    assert (await client.delete("/api/backups/kbo_headers.zip", headers=auth)).status_code == 204
    kb = ({h: whole.headers.get(h) for h in HEADERS}, whole.status_code, whole.content[:4],
          part.status_code, part.content, part.headers.get("content-range", "").split("/")[0])
    assert kb == pb

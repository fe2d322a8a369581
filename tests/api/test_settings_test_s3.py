"""POST /api/settings/test/s3 against a real S3-compatible server (moto), on both engines.
The messages were checked on PocketBase 0.40.6 (S3 off, missing bucket, bad key, refused)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from keepbase.api.settings_test import check_s3
from keepbase.app import App
from tests.files.conftest import new_bucket, s3_endpoint, s3_settings  # noqa: F401 - s3_endpoint is a fixture

FAILED = "Failed to test the S3 filesystem. Raw error: \n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def strict_s3_endpoint() -> Iterator[str]:
    """A moto server that checks credentials (INITIAL_NO_AUTH_ACTION_COUNT=0): no key is valid."""
    moto = shutil.which("moto_server")
    if moto is None:
        pytest.skip("moto_server is not installed")
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.skip("moto_server did not start")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _objects(endpoint: str, bucket: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


async def _configure(client: httpx.AsyncClient, su: dict[str, str], filesystem: str, s3: dict[str, Any]) -> None:
    body = {"s3": s3} if filesystem == "storage" else {"backups": {"s3": s3}}
    r = await client.patch("/api/settings", headers=su, json=body)
    assert r.status_code == 200, r.text


async def _test(client: httpx.AsyncClient, su: dict[str, str], filesystem: str) -> httpx.Response:
    return await client.post("/api/settings/test/s3", headers=su, json={"filesystem": filesystem})


async def test_validation_and_access(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    r = await client.post("/api/settings/test/s3", json={"filesystem": "storage"})
    assert r.status_code == 401
    assert r.json()["message"] == "The request requires valid record authorization token."
    r = await client.post("/api/settings/test/s3", headers=su_headers, json={})
    assert r.json() == {"status": 400, "message": "Failed to test the S3 filesystem.",
                        "data": {"filesystem": {"code": "validation_required", "message": "Cannot be blank."}}}
    r = await client.post("/api/settings/test/s3", headers=su_headers, json={"filesystem": "x"})
    assert r.json()["data"] == {"filesystem": {"code": "validation_in_invalid", "message": "Must be a valid value."}}
    for bad in ({"filesystem": 5}, b"{bad"):
        kwargs: dict[str, Any] = {"content": bad} if isinstance(bad, bytes) else {"json": bad}
        r = await client.post("/api/settings/test/s3", headers=su_headers, **kwargs)
        assert r.json() == {"data": {}, "message": "An error occurred while loading the submitted data.",
                            "status": 400}


async def test_user_is_forbidden(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    r = await client.post("/api/collections/users/records", headers=su_headers, json={
        "email": "u@example.com", "password": "userpass123", "passwordConfirm": "userpass123"})
    assert r.status_code == 200
    token = (await client.post("/api/collections/users/auth-with-password",
                               json={"identity": "u@example.com", "password": "userpass123"})).json()["token"]
    r = await client.post("/api/settings/test/s3", headers={"Authorization": token}, json={"filesystem": "storage"})
    assert r.status_code == 403


@pytest.mark.parametrize("filesystem", ["storage", "backups"])
async def test_disabled(client: httpx.AsyncClient, su_headers: dict[str, str], filesystem: str) -> None:
    r = await _test(client, su_headers, filesystem)
    assert r.json() == {"data": {}, "status": 400, "message": FAILED + "S3 storage filesystem is not enabled."}


@pytest.mark.parametrize("filesystem", ["storage", "backups"])
async def test_success_leaves_nothing_behind(app: App, client: httpx.AsyncClient, su_headers: dict[str, str],
                                            s3_endpoint: str, filesystem: str) -> None:  # noqa: F811
    bucket = new_bucket(s3_endpoint)
    await _configure(client, su_headers, filesystem, s3_settings(s3_endpoint, bucket))
    r = await _test(client, su_headers, filesystem)
    assert r.status_code == 204, r.text
    assert _objects(s3_endpoint, bucket) == []  # the test file was uploaded, then deleted
    other = "backups" if filesystem == "storage" else "storage"
    r = await _test(client, su_headers, other)  # only the tested filesystem is enabled
    assert r.json()["message"] == FAILED + "S3 storage filesystem is not enabled."


async def test_missing_bucket(client: httpx.AsyncClient, su_headers: dict[str, str],
                              s3_endpoint: str) -> None:  # noqa: F811
    await _configure(client, su_headers, "storage", s3_settings(s3_endpoint, "kb-no-such-bucket"))
    r = await _test(client, su_headers, "storage")
    assert r.status_code == 400
    message = r.json()["message"]
    assert message.startswith(FAILED + "failed to upload a test file: [key: pb_settings_test_")
    assert message.endswith("/test.txt] 404 NoSuchBucket: The specified bucket does not exist.")


async def test_wrong_credentials(client: httpx.AsyncClient, su_headers: dict[str, str],
                                 strict_s3_endpoint: str) -> None:
    await _configure(client, su_headers, "backups", s3_settings(strict_s3_endpoint, "any-bucket"))
    r = await _test(client, su_headers, "backups")
    assert r.status_code == 400
    assert r.json()["message"].endswith(
        "/test.txt] 403 InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records.")


async def test_unreachable_endpoint(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    endpoint = f"http://127.0.0.1:{_free_port()}"  # nothing listens
    await _configure(client, su_headers, "storage", s3_settings(endpoint, "b"))
    started = time.monotonic()
    r = await _test(client, su_headers, "storage")
    assert time.monotonic() - started < 10
    message = r.json()["message"]
    assert r.status_code == 400 and message.startswith(FAILED + "failed to upload a test file: [key: ")
    assert f'Could not connect to the endpoint URL: "{endpoint}/b/pb_settings_test_' in message


def test_silent_endpoint_times_out() -> None:
    """A server that accepts the connection and never answers: the check gives up (timeout, one retry)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        problem = check_s3(s3_settings(endpoint, "b"), timeout=0.5)
        elapsed = time.monotonic() - started
    assert problem.startswith("failed to upload a test file: [key: pb_settings_test_")
    assert "Read timeout on endpoint URL" in problem
    assert elapsed < 5

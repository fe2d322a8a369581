"""POST /api/settings/test/email and /api/settings/test/s3 (superusers only).

The S3 test does what PocketBase's does: upload ``pb_settings_test_<5>/test.txt`` to the
configured bucket, then delete that prefix (which lists and deletes, so all three permissions
are checked). Failures are 400 ``Failed to test the S3 filesystem. Raw error: \\n<step>: <cause>``.
Unlike PocketBase, each S3 call gives up after ``S3_TEST_TIMEOUT`` seconds and one retry, so a
black-holed endpoint answers 400 instead of holding the request for minutes.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import REQUIRED, BadRequestError, FieldError, ValidationError
from ..core.ids import random_string
from .deps import app_of, read_body, require_superuser, run
from .responses import no_content

LOAD_ERROR = "An error occurred while loading the submitted data."
S3_TEST_FAILED = "Failed to test the S3 filesystem."
S3_TEST_TIMEOUT = 10.0
FILESYSTEMS = ("storage", "backups")


async def send_test_email(request: Request) -> Response:
    await require_superuser(request)
    app = app_of(request)
    body, _ = await read_body(request, app.config.max_body_size, invalid_message=LOAD_ERROR)
    await run(request, app.accounts.send_test_email, body)
    return no_content()


async def s3_test(request: Request) -> Response:
    await require_superuser(request)
    app = app_of(request)
    body, _ = await read_body(request, app.config.max_body_size, invalid_message=LOAD_ERROR)
    filesystem = body.get("filesystem")
    if filesystem is not None and not isinstance(filesystem, str):  # Go binds into a string field
        raise BadRequestError(LOAD_ERROR)
    if not filesystem:
        raise ValidationError(S3_TEST_FAILED, {"filesystem": REQUIRED})
    if filesystem not in FILESYSTEMS:
        raise ValidationError(S3_TEST_FAILED, {"filesystem": FieldError("validation_in_invalid",
                                                                        "Must be a valid value.")})
    settings = app.settings.get()
    s3 = dict((settings.get("backups") or {}).get("s3") or {}) if filesystem == "backups" else \
        dict(settings.get("s3") or {})
    problem = await run(request, check_s3, s3)
    if problem:
        raise BadRequestError(f"{S3_TEST_FAILED} Raw error: \n{problem}")
    return no_content()


def check_s3(s3: dict[str, Any], timeout: float = S3_TEST_TIMEOUT) -> str:
    """Upload then delete a test file with the S3 settings ``s3``; "" on success, else what failed."""
    if not s3.get("enabled"):
        return "S3 storage filesystem is not enabled"
    from ..files.s3 import S3Storage

    try:
        storage = S3Storage(s3, timeout=timeout, retries=1)
    except Exception as exc:  # botocore rejects e.g. a malformed endpoint URL here
        return f"failed to initialize the S3 filesystem: {exc}"
    prefix = "pb_settings_test_" + random_string(5)
    key = prefix + "/test.txt"
    try:
        try:
            storage.put_bytes(key, b"test")
        except Exception as exc:
            return f"failed to upload a test file: [key: {key}] {_s3_error(exc)}"
        try:
            storage.delete_prefix(prefix)
        except Exception as exc:
            return f"failed to delete a test file: [key: {key}] {_s3_error(exc)}"
    finally:
        storage.client.close()
    return ""


def _s3_error(exc: Exception) -> str:
    """``404 NoSuchBucket: The specified bucket does not exist`` for an S3 error reply (as
    PocketBase words it, without the raw XML), the botocore message for anything else."""
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    if error.get("Code"):
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode", "")
        return f"{status} {error['Code']}: {error.get('Message') or ''}".strip()
    return str(exc) or type(exc).__name__


ROUTES = [
    Route("/api/settings/test/email", send_test_email, methods=["POST"]),
    Route("/api/settings/test/s3", s3_test, methods=["POST"]),
]

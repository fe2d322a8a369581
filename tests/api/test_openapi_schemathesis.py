"""Schemathesis against a running ``keepbase serve`` with the blog and shop templates (SQLite and
PostgreSQL): requests generated from /api/openapi.json get no 500, and every answer matches the
document (status code, content type, body schema).

Bounded on purpose: a fixed list of operations (read-only or rule-guarded; nothing that could
drop data or hang on a stream) with a few examples each, so one engine takes seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from keepbase.cli.templates import load_template
from tests.conftest import ENGINES, SU_EMAIL, SU_PASSWORD
from tests.server_process import ServerProcess, run_cli

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 4
# guests: the templates' records (reads, and writes their rules refuse), auth, health
GUEST_OPERATIONS = [
    "posts.list", "posts.view", "posts.create", "posts.update", "comments.list", "products.list",
    "products.view", "orders.list", "orders.create", "authors.create", "authors.authMethods",
    "authors.auth-with-password", "customers.request-otp", "health",
]
# superusers also see hidden fields and the admin reads
SUPERUSER_OPERATIONS = ["posts.list", "orders.view", "collections.list", "collections.view", "logs.list",
                        "crons.list", "settings.get", "backups.list"]


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp(f"openapi_{request.param}")
    db_args: list[str] = []
    db_url = ""
    if request.param == "postgres":
        from tests.pg_server import create_database, drop_database

        db_url = create_database(request.getfixturevalue("pg_base_url"))
        db_args = ["--db", db_url]
    data = ["--dir", str(tmp / "data"), *db_args]
    code, out = run_cli("new", "--template", "blog", *data)
    assert code == 0, out
    code, out = run_cli("superuser", "upsert", SU_EMAIL, SU_PASSWORD, *data)
    assert code == 0, out
    proc = ServerProcess.start(tmp, *data).wait_ready()
    try:
        _seed(proc.url)
        yield proc
    finally:
        proc.stop()
        if db_url:
            drop_database(db_url)


def _seed(url: str) -> None:
    """The shop template (through the import API: one CLI start less) and a few records, so lists
    and views answer with real records for the schema checks."""
    su = {"Authorization": _superuser_token(url)}
    with httpx.Client(base_url=url, headers=su, timeout=10) as c:
        r = c.put("/api/collections/import", json={"collections": load_template("shop"), "deleteMissing": False})
        assert r.status_code == 204, r.text
        author = c.post("/api/collections/authors/records", json={
            "email": "a1@example.com", "emailVisibility": True, "password": "pass123456",
            "passwordConfirm": "pass123456", "name": "Ann"}).json()
        post = c.post("/api/collections/posts/records", json={
            "title": "Hello", "content": "<p>Hi</p>", "author": author["id"], "categories": ["news", "tech"],
            "published": True}).json()
        r = c.post("/api/collections/comments/records", json={"content": "Nice", "post": post["id"],
                                                              "author": author["id"]})
        assert r.status_code == 200, r.text
        for name, price in (("Book", 12.5), ("Lamp", 30)):
            r = c.post("/api/collections/products/records", json={"name": name, "category": "home",
                                                                  "price": price, "active": True})
            assert r.status_code == 200, r.text


def _superuser_token(url: str) -> str:
    r = httpx.post(f"{url}/api/collections/_superusers/auth-with-password",
                   json={"identity": SU_EMAIL, "password": SU_PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _fuzz(url: str, headers: dict[str, str], operation_ids: list[str]) -> int:
    """Run the chosen operations of the caller's own document; the number of operations run."""
    doc: dict[str, Any] = httpx.get(f"{url}/api/openapi.json", headers=headers, timeout=10).json()
    schema = schemathesis.openapi.from_dict(doc).include(operation_id=operation_ids)
    ran = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # an operation schemathesis cannot read fails here
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def run(case: Case[Any]) -> None:
            case.call_and_validate(base_url=url, headers=headers, checks=CHECKS, timeout=10)

        run()
        ran += 1
    return ran


def test_guest_requests_match_the_document(server: ServerProcess) -> None:
    assert _fuzz(server.url, {}, GUEST_OPERATIONS) == len(GUEST_OPERATIONS)


def test_superuser_requests_match_the_document(server: ServerProcess) -> None:
    headers = {"Authorization": _superuser_token(server.url)}
    assert _fuzz(server.url, headers, SUPERUSER_OPERATIONS) == len(SUPERUSER_OPERATIONS)

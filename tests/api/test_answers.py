"""No request ever loses its answer: list parameters as PocketBase reads them, and the envelope for
any failure (issue 9). Expected values were checked on the PocketBase 0.40 binary."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError
from starlette.types import Receive, Scope, Send

from keepbase.api.errors import EnvelopeGuard, error_for
from keepbase.api.routes import HeadersMiddleware
from keepbase.store.records import page_offset
from tests.conftest import make_collection

GENERIC = "Something went wrong while processing your request."
BIG = "99999999999999999999999"
INT64_MAX = "9223372036854775807"
RECORDS = "/api/collections/posts/records"


async def _posts(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    await make_collection(client, su, name="posts", listRule="", fields=[{"name": "title", "type": "text"}])
    for title in "abc":
        r = await client.post(RECORDS, json={"title": title}, headers=su)
        assert r.status_code == 200, r.text


def _generic_400(r: httpx.Response) -> None:
    assert r.status_code == 400, r.text
    assert r.json() == {"data": {}, "message": GENERIC, "status": 400}


# (query, page, perPage, items on the page) as PocketBase 0.40 answers them for 3 records
PAGES: list[tuple[str, int, int, int]] = [
    (f"page={INT64_MAX}", int(INT64_MAX), 30, 3),  # (page-1)*30 wraps below zero: the first page again
    ("page=307445734561825861", 307445734561825861, 30, 0),  # just below the wrap: past the data
    ("page=307445734561825862", 307445734561825862, 30, 3),  # just above: wraps
    ("page=1000000", 1000000, 30, 0),
    ("page=-5", 1, 30, 3), ("page=0", 1, 30, 3), ("page=-0", 1, 30, 3), ("page=", 1, 30, 3),
    ("page=%2B2&perPage=2", 2, 2, 1), ("page=00002&perPage=2", 2, 2, 1),
    ("page=-9223372036854775808", 1, 30, 3),
    (f"perPage={INT64_MAX}", 1, 1000, 3), ("perPage=1001", 1, 1000, 3), ("perPage=-1", 1, 30, 3),
    ("perPage=0", 1, 30, 3), ("perPage=-9223372036854775808", 1, 30, 3),
    ("page=2&perPage=9223372036854775807", 2, 1000, 0),
]
REFUSED = [f"page={BIG}", "page=9223372036854775808", "page=-9223372036854775809", f"perPage={BIG}",
           "page=abc", "page=1.5", "page=%202", "page=2%20", "page=+2", "page=0x10", "page=1e3", "page=1_0",
           "page=%EF%BC%92", "perPage=1.5", "perPage=abc", f"skipTotal=1&page={BIG}", "skipTotal=2",
           "skipTotal=yes", "skipTotal=tRue"]


@pytest.mark.parametrize(("query", "page", "per_page", "count"), PAGES, ids=[p[0] for p in PAGES])
async def test_record_pages_as_pocketbase(client: httpx.AsyncClient, su_headers: dict[str, str], query: str,
                                          page: int, per_page: int, count: int) -> None:
    await _posts(client, su_headers)
    r = await client.get(f"{RECORDS}?{query}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["page"], body["perPage"], len(body["items"]), body["totalItems"]) == (page, per_page, count, 3)
    r = await client.get(f"{RECORDS}?{query}&skipTotal=1")
    assert r.status_code == 200 and len(r.json()["items"]) == count


@pytest.mark.parametrize("query", REFUSED)
async def test_refused_list_params_are_the_generic_400(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                       query: str) -> None:
    await _posts(client, su_headers)
    for path in (RECORDS, "/api/collections", "/api/logs"):
        _generic_400(await client.get(f"{path}?{query}", headers=su_headers))


async def test_huge_pages_of_collections_and_logs(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _posts(client, su_headers)
    total = len((await client.get("/api/collections?perPage=1000", headers=su_headers)).json()["items"])
    r = await client.get(f"/api/collections?page={INT64_MAX}", headers=su_headers)
    assert r.status_code == 200 and len(r.json()["items"]) == total  # wrapped, as PocketBase
    r = await client.get("/api/collections?page=1000000", headers=su_headers)
    assert r.status_code == 200 and r.json()["items"] == [] and r.json()["page"] == 1000000
    for query in (f"page={INT64_MAX}&perPage=1", "page=1000000", "page=307445734561825862"):
        r = await client.get(f"/api/logs?{query}", headers=su_headers)
        assert r.status_code == 200, (query, r.text)
        assert r.json()["page"] == int(query.split("&")[0].split("=")[1])


def test_page_offset_is_go_int64_arithmetic() -> None:
    assert page_offset(1, 30) == 0 and page_offset(3, 30) == 60
    assert page_offset(2**63 - 1, 30) == 0  # wraps to -60: read as 0
    assert page_offset(2**62, 30) == 2**63 - 30
    assert page_offset(2**63 - 1, 1) == 2**63 - 2


# --- the envelope for failures --------------------------------------------------------------------------


def test_error_for_tells_bugs_from_query_and_user_errors() -> None:
    try:
        page_offset("1", 30)  # type: ignore[arg-type]  # a TypeError raised inside keepbase: a bug
    except TypeError as exc:
        assert error_for(exc).status == 400  # the traceback starts here, in this test: user code
        assert exc.__traceback__ is not None
        # caught inside keepbase (as the guard catches it), the traceback holds keepbase only
        assert error_for(exc.with_traceback(exc.__traceback__.tb_next)).status == 500
    try:
        raise KeyError("raised by user code, as a hook would")
    except KeyError as exc:
        assert error_for(exc).status == 400
    assert error_for(OperationalError("SELECT 1", {}, Exception("locked"))).status == 400


async def _call(app: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.get("/api/x", headers={"Origin": "http://o"})


async def test_a_bug_in_a_middleware_is_the_500_envelope() -> None:
    # HeadersMiddleware given no app fails inside keepbase's own code: a bug, never a traceback
    r = await _call(EnvelopeGuard(HeadersMiddleware(None)))  # type: ignore[arg-type]
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"data": {}, "message": GENERIC, "status": 500}
    assert "Traceback" not in r.text and "NoneType" not in r.text


async def test_a_user_app_failing_before_its_headers_is_the_400_envelope() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("secret detail")

    r = await _call(EnvelopeGuard(broken))
    assert r.status_code == 400 and r.json() == {"data": {}, "message": GENERIC, "status": 400}
    assert "secret" not in r.text


async def test_a_stream_failing_after_its_headers_is_cut_short_not_completed() -> None:
    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"12345", "more_body": True})
        raise OSError("disk gone mid-file")

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    # the guard returns (no exception reaches the server) and sends nothing more: the server then
    # closes the connection, so the client sees a truncated body, never a completed wrong one
    await EnvelopeGuard(streaming)({"type": "http", "method": "GET", "path": "/api/files/x", "headers": []},
                                   receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[-1]["more_body"] is True


async def test_a_wrapping_page_is_no_error(client: httpx.AsyncClient, su_headers: dict[str, str],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    await _posts(client, su_headers)
    r = await client.get(f"{RECORDS}?page={INT64_MAX}")
    assert r.status_code == 200
    assert not [rec for rec in caplog.records if rec.name == "keepbase.api"]  # a fixed bug logs nothing

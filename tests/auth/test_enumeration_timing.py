"""Account enumeration by timing (issue 10 §3).

The "send me a mail" requests answer at the same moment whether or not the email has an account
(and whether or not it is cooling down): ``auth.timing.response_floor`` pads them, and
request-otp issues the OTP off the answer's path. The proof is statistical: ``SAMPLES`` timings
per arm (existing vs unknown email), interleaved, each request from its own loopback address
(the ASGI scope's client) so the per-IP limits stay out of the way, must pass a two-sample
Kolmogorov–Smirnov test (p > 0.01) with medians within 2 ms. Requests run ``CONCURRENCY`` at a
time to keep the test short; both arms share that load.

Even with no difference at all, a KS test at p > 0.01 fails 1 run in 100 by construction, so a
failed sample is followed by one fresh sample (new accounts, emails and addresses) and the test
fails only if both do; a real difference of a few ms fails every sample.

The statistical runs are on SQLite (the padding is in the HTTP handlers, the same for both
engines); on PostgreSQL a short run checks that both arms are padded, as a full one does not fit
in the test's 30 s together with SQLite's.

Password sign-in is not padded: its two failing paths must each run one Argon2id verification.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import time
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from keepbase.app import App
from keepbase.auth.timing import ACCOUNT_REQUEST_FLOOR
from keepbase.core.types import AuthInfo, RequestInfo
from keepbase.security import passwords

USERS = "/api/collections/users"
SAMPLES = 60  # per arm
ACCOUNTS = 15  # emails per arm, each asked SAMPLES / ACCOUNTS = 4 times (the per-email limit is 5 in 600 s)
ATTEMPTS = 2  # fresh samples before failing (see above)
CONCURRENCY = 8
MAX_MEDIAN_DIFF = 0.002
MIN_P = 0.01


def ks_2samp(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """The two-sample Kolmogorov–Smirnov statistic D and its asymptotic p-value (Stephens'
    small-sample correction, as Numerical Recipes' ``probks``)."""
    xs, ys = sorted(a), sorted(b)
    n, m = len(xs), len(ys)
    i = j = 0
    d = 0.0
    while i < n and j < m:
        x = min(xs[i], ys[j])
        while i < n and xs[i] <= x:
            i += 1
        while j < m and ys[j] <= x:
            j += 1
        d = max(d, abs(i / n - j / m))
    ne = math.sqrt(n * m / (n + m))
    lam = (ne + 0.12 + 0.11 / ne) * d
    if lam < 0.3:  # the series converges to 1 here (and slowly)
        return d, 1.0
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, min(1.0, max(0.0, p))


def test_ks_2samp_matches_known_values() -> None:
    same = [float(i) for i in range(60)]
    assert ks_2samp(same, same) == (0.0, 1.0)
    d, p = ks_2samp(same, [x + 30 for x in same])
    assert d == 0.5 and 1e-7 < p < 1e-6  # scipy.stats.ks_2samp(method="asymp"): 1.8e-7
    d, p = ks_2samp(same, [x + 100 for x in same])
    assert d == 1.0 and p < 1e-20


def _add_users(app: App, count: int) -> list[str]:
    """``count`` unverified users sharing one password hash (one Argon2id hash, not ``count``)."""
    c = app.collections.get("users")
    su = app.collections.get("_superusers")
    first = app.records.create_record(c, {"email": "t0@example.com", "password": "pass123456",
                                          "passwordConfirm": "pass123456"},
                                      RequestInfo(auth=AuthInfo(su.id, su.name, {"id": ""})))
    table = app.collections.records_table(c)
    with app.db.read() as conn:
        row = dict(conn.execute(select(table).where(table.c.id == first["id"])).one()._mapping)
    emails = [f"t{i}@example.com" for i in range(count)]
    with app.db.write() as conn:
        for i in range(1, count):
            conn.execute(insert(table).values({**row, "id": f"timing{i:09d}", "email": emails[i],
                                               "tokenKey": f"timingkey{i:021d}"}))
    return emails


async def _timings(app: App, path: str, known: list[str], attempt: int = 0,
                   samples: int = SAMPLES) -> tuple[list[float], list[float]]:
    """Interleaved (existing, unknown) request pairs, each request from its own address."""
    unknown = [f"nobody{attempt}-{i}@example.com" for i in range(len(known))]
    jobs = []
    for i in range(samples):
        pair = [(True, known[i % len(known)]), (False, unknown[i % len(unknown)])]
        random.Random(i).shuffle(pair)
        jobs += pair
    results: dict[bool, list[float]] = {True: [], False: []}
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(k: int, exists: bool, email: str) -> None:
        ip = f"127.{attempt}.{k // 250}.{k % 250 + 2}"
        transport = httpx.ASGITransport(app=app.asgi, client=(ip, 40000 + k))
        async with gate, httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            start = time.perf_counter()
            r = await client.post(f"{USERS}/{path}", json={"email": email})
            elapsed = time.perf_counter() - start
        assert r.status_code in (200, 204), r.text
        results[exists].append(elapsed)

    await asyncio.gather(*[one(k, exists, email) for k, (exists, email) in enumerate(jobs)])
    return results[True], results[False]


def _summary(xs: list[float]) -> str:
    q = statistics.quantiles(xs, n=20)
    return f"min {min(xs) * 1e3:.1f} p5 {q[0] * 1e3:.1f} median {statistics.median(xs) * 1e3:.1f} " \
           f"p95 {q[-1] * 1e3:.1f} max {max(xs) * 1e3:.1f} ms"


def _difference(existing: list[float], unknown: list[float]) -> str:
    """What tells the arms apart ("" when nothing does)."""
    report = f"existing {_summary(existing)}; unknown {_summary(unknown)}"
    d, p = ks_2samp(existing, unknown)
    median_diff = abs(statistics.median(existing) - statistics.median(unknown))
    if min(existing + unknown) < ACCOUNT_REQUEST_FLOOR:
        return f"an answer came before the floor; {report}"
    if p <= MIN_P or median_diff >= MAX_MEDIAN_DIFF:
        return f"KS D={d:.3f} p={p:.4f}, medians {median_diff * 1e3:.2f} ms apart; {report}"
    return ""


async def _check_same_time(app: App, path: str, known: list[str]) -> int:
    """The number of samples taken (1, or 2 after a failed first one); fails when all fail."""
    problems = []
    for attempt in range(ATTEMPTS):
        emails = known[attempt * ACCOUNTS:(attempt + 1) * ACCOUNTS]
        problem = _difference(*await _timings(app, path, emails, attempt))
        if not problem:
            return attempt + 1
        problems.append(f"{path}, sample {attempt + 1}: {problem}")
    pytest.fail("\n".join(problems))


async def _wait_for(count: list[int], expected: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while count[0] < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert count[0] == expected


def _count_calls(monkeypatch: pytest.MonkeyPatch, obj: Any, name: str) -> list[int]:
    calls = [0]
    real = getattr(obj, name)

    def counting(*args: Any) -> Any:
        calls[0] += 1
        return real(*args)

    monkeypatch.setattr(obj, name, counting)
    return calls


async def _enable_otp(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    r = await client.patch(USERS, json={"otp": {"enabled": True}}, headers=su_headers)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_request_otp_takes_the_same_time(app: App, client: httpx.AsyncClient, su_headers: dict[str, str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    await _enable_otp(client, su_headers)
    known = await asyncio.to_thread(_add_users, app, ACCOUNTS * ATTEMPTS)
    issued = _count_calls(monkeypatch, app.otp, "create_otp")
    samples = await _check_same_time(app, "request-otp", known)
    await _wait_for(issued, SAMPLES * samples)  # each known email did get an OTP (off the answer's path)


@pytest.mark.parametrize("engine", ["sqlite"])
@pytest.mark.parametrize("path", ["request-password-reset", "request-verification"])
async def test_mail_link_requests_take_the_same_time(app: App, path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    known = await asyncio.to_thread(_add_users, app, ACCOUNTS * ATTEMPTS)
    sent = _count_calls(monkeypatch, app.accounts, "_send_later")
    samples = await _check_same_time(app, path, known)
    assert sent[0] == ACCOUNTS * samples  # one mail per account; its 3 other requests took the cooldown path


@pytest.mark.parametrize("engine", ["postgres"])
async def test_padded_on_postgres(app: App, client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await _enable_otp(client, su_headers)
    known = await asyncio.to_thread(_add_users, app, 4)
    for path in ("request-otp", "request-password-reset"):
        existing, unknown = await _timings(app, path, known, samples=8)
        assert min(existing + unknown) >= ACCOUNT_REQUEST_FLOOR, f"{path}: {_summary(existing + unknown)}"


@pytest.mark.parametrize("engine", ["sqlite"])  # no database work worth repeating on PostgreSQL
async def test_password_sign_in_verifies_one_hash_either_way(app: App, client: httpx.AsyncClient,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown identity and wrong password: one Argon2id verification each, and the same answer."""
    (email,) = await asyncio.to_thread(_add_users, app, 1)
    calls: list[str] = []

    class Counting:  # PasswordHasher has slots: wrap it instead of patching its method
        def __init__(self, real: Any) -> None:
            self.real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

        def verify(self, stored: str | bytes, plain: str | bytes) -> bool:
            calls.append(str(stored)[:9])
            return bool(self.real.verify(stored, plain))

    monkeypatch.setattr(passwords, "_HASHER", Counting(passwords._HASHER))
    answers = []
    for identity in (email, "nobody@example.com"):
        calls.clear()
        r = await client.post(f"{USERS}/auth-with-password", json={"identity": identity, "password": "wrong-pass"})
        assert calls == ["$argon2id"], identity
        answers.append((r.status_code, r.json()))
    assert answers[0] == answers[1] and answers[0][0] == 400

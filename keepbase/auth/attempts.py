"""Per-account limits on failed sign-in attempts (keepbase addition, beyond PocketBase).

The rate limits in front of the routes count per client address, so one account attacked from
many addresses would have every guess evaluated. Here each sign-in *method* of each account has
its own counter, whatever the address: after ``maxFailures`` failed attempts within
``duration`` seconds, further attempts of that method for that account are refused with
``429 Too Many Requests.`` until ``duration`` seconds have passed since the last counted
failure; a success forgets the failures.

* Methods are counted apart (``password``, ``otp``, ``totp``), so guessing the password of an
  account never locks its owner out of OTP, OAuth2 (never counted here) or TOTP.
* Password attempts are keyed by the submitted identity (trimmed, lower-cased), looked up or
  not: an identity without an account is refused exactly like one with an account, so the
  refusal says nothing about which accounts exist. OTP and TOTP attempts are keyed by the record
  the OTP / MFA session belongs to.
* The counters live in the app's rate-limit store (memory, PostgreSQL or Redis), under
  ``acct:<method>:<collection id>:<digest of the account>`` (no identity is stored in clear).
* ``maxFailures`` and ``duration`` come from the auth collection's ``accountLimit`` option
  (0 or absent: the defaults below).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..core.errors import ApiError, TooManyRequestsError
from ..store.models import Collection

log = logging.getLogger("keepbase.auth")

DEFAULT_MAX_FAILURES = 10
DEFAULT_DURATION = 300  # seconds


def account_limit(c: Collection) -> tuple[int, int]:
    """(maxFailures, duration) of collection ``c``."""
    opt: Any = c.options.get("accountLimit") or {}
    if not isinstance(opt, dict):
        opt = {}
    return int(opt.get("maxFailures") or DEFAULT_MAX_FAILURES), int(opt.get("duration") or DEFAULT_DURATION)


def attempt_key(c: Collection, method: str, account: str) -> str:
    digest = hashlib.sha256(account.strip().lower().encode()).hexdigest()[:32]
    # fixed-length digest: no key is a prefix of another, so ``reset(key)`` forgets exactly one
    return f"acct:{method}:{c.id}:{digest}"


@contextmanager
def counted_attempt(limiter: Any, c: Collection, method: str, account: str) -> Iterator[None]:
    """Guard one sign-in attempt of ``method`` for ``account``.

    Refuses (429) when the account's failures of that method are used up; otherwise runs the
    block. A 400 from the block (wrong password, invalid OTP or code) is a counted failure;
    success resets the counter; any other outcome (forbidden, a server error) does not count.
    Without a ``limiter`` (a service called outside an app) nothing is counted."""
    if limiter is None:
        yield
        return
    key = attempt_key(c, method, account)
    max_failures, duration = account_limit(c)
    if limiter.consume(key, max_failures, duration):
        raise TooManyRequestsError()
    try:
        yield
    except ApiError as exc:
        if exc.status != 400:
            _give_back(limiter, key)
        raise
    except BaseException:
        _give_back(limiter, key)
        raise
    try:
        limiter.reset(key)
    except Exception:  # the sign-in stands; the failures simply age out
        log.exception("could not reset the sign-in attempts of %s", key)


def _give_back(limiter: Any, key: str) -> None:
    try:
        limiter.release(key)
    except Exception:
        log.exception("could not release a sign-in attempt of %s", key)

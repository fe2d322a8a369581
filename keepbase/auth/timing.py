"""Equal response times for the requests that must not tell whether an account exists.

``request-otp``, ``request-password-reset`` and ``request-verification`` do different work for
an existing account, an unknown one and one cooling down (an unknown email writes an audit row;
a cooling-down one queues no mail). Their handlers run inside ``response_floor()``, which holds
the answer back until ``ACCOUNT_REQUEST_FLOOR`` seconds after the handler started, so every path
answers at the same moment. Padding, rather than matching the work, is what stays equal on a
loaded machine: CPU contention stretches real work unevenly but does not shorten a sleep. The
floor is well above those paths' usual time, even on a busy 2-core machine (docs/security.md);
a request slower than the floor answers when it is done, so only such outliers can differ.
request-otp's one slow step, bcrypt-hashing the new code, runs off the answer's path
(``OTPService.request_otp``).

Password sign-in is not padded: both of its failing paths (unknown identity, wrong password)
run one Argon2id verification (``security.passwords.verify_dummy`` for an unknown identity),
which dominates its time.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

#: seconds before request-otp / request-password-reset / request-verification answer (docs/security.md)
ACCOUNT_REQUEST_FLOOR = 0.3


@asynccontextmanager
async def response_floor(seconds: float | None = None) -> AsyncIterator[None]:
    """Let the block finish no sooner than ``seconds`` (``ACCOUNT_REQUEST_FLOOR``) after it started,
    errors included (one may come after the account lookup). A cancelled request is not held back."""
    deadline = time.monotonic() + (ACCOUNT_REQUEST_FLOOR if seconds is None else seconds)
    cancelled = False
    try:
        yield
    except anyio.get_cancelled_exc_class():
        cancelled = True
        raise
    finally:
        if not cancelled:
            await anyio.sleep(max(0.0, deadline - time.monotonic()))

"""Sign-up on an ``enumerationSafe`` auth collection: a taken address answers like a free one.

PocketBase answers a duplicate sign-up with ``validation_not_unique`` on ``email``, which tells
anyone whether an address has an account. With the collection option ``enumerationSafe`` (keepbase's
opt-in, see auth.account), when that is the *only* thing wrong with a guest's or user's sign-up, the
same create runs again with a throwaway address inside a transaction that is rolled back: the caller
gets the record a success would have given (the same shape, work and time; a fresh id that exists
nowhere), nothing is stored, no after-commit hook or realtime event fires, and the address's owner
gets a notice by mail instead. Superusers still see the real error.
"""

from __future__ import annotations

import secrets
from typing import Any

from ..core.errors import ValidationError
from ..core.types import RequestInfo
from ..store.models import Collection
from ..store.records import RecordService
from .account import AccountService, taken_address_notice


class _Decoy(Exception):
    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__("decoy")
        self.record = record


def _email_taken(exc: ValidationError) -> bool:
    return getattr(exc.data.get("email"), "code", "") == "validation_not_unique"


def create_record_enumeration_safe(records: RecordService, accounts: AccountService, c: Collection,
                                   body: dict[str, Any], info: RequestInfo, from_form: bool,
                                   ip: str = "") -> dict[str, Any]:
    """``records.create_record``, but on an ``enumerationSafe`` collection a taken email answers
    like a success (see the module docstring)."""
    try:
        return records.create_record(c, body, info, from_form)
    except ValidationError as exc:
        superuser = info.auth is not None and info.auth.is_superuser
        if not (c.is_auth and c.options.get("enumerationSafe") and not superuser and _email_taken(exc)):
            raise
        if set(exc.data) != {"email"}:  # other errors too: answer those, as for a free address
            raise ValidationError(exc.message, {k: v for k, v in exc.data.items() if k != "email"}) from None
        original = exc
    email = str(body.get("email", ""))
    decoy = dict(body, email=f"{secrets.token_hex(12)}@example.invalid")
    try:
        with records.db.write():  # one transaction, always rolled back
            raise _Decoy(records.create_record(c, decoy, info, from_form))
    except _Decoy as made:
        record = made.record
    except Exception:
        raise original from None  # the decoy failed for another reason: answer as PocketBase does
    if "email" in record:
        record["email"] = email
    accounts.send_notice(taken_address_notice(accounts.settings(), email, "sign up with"), "sign-up notice", ip)
    return record

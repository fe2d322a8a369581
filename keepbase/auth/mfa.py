"""Multi-factor sign-in as PocketBase does it, with keepbase's TOTP as one more method.

When the first method succeeds for a record that needs MFA, a row is stored in ``_mfas``
(``method`` = password | oauth2 | otp) and the client gets ``401 {"mfaId": ...}``. A second,
*different* method presenting that ``mfaId`` completes the sign-in; the row is consumed by one
conditional DELETE, so a session completes at most once even under parallel requests.

A record needs MFA when the collection's ``mfa.enabled`` is on and ``mfa.rule`` matches (an
empty rule matches every record) — or, beyond PocketBase, when the record has TOTP enabled.
In that second case one of the two methods must be ``totp``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select

from ..core.clock import now, now_str, parse_datetime
from ..core.errors import BadRequestError
from ..core.ids import new_record_id
from ..core.types import RequestInfo
from ..store.collections import CollectionStore
from ..store.db import Database
from ..store.models import Collection
from ..store.record_input import row_values
from .attempts import counted_attempt
from .auth_rule import check_auth_rule, record_matches
from .totp import TOTPService

METHODS = ("password", "oauth2", "otp", "totp")
INVALID_OR_EXPIRED = "Invalid or expired MFA session."
INVALID = "Invalid MFA session."
DIFFERENT_METHOD = "A different authentication method is required."
FAILED = "Failed to authenticate."


class MFAService:
    def __init__(self, db: Database, collections: CollectionStore, totp: TOTPService) -> None:
        self.db = db
        self.collections = collections
        self.totp = totp

    def _table(self) -> Any:
        return self.collections.records_table(self.collections.get("_mfas"))

    @staticmethod
    def duration(c: Collection) -> int:
        return int(c.options.get("mfa", {}).get("duration") or 600)

    def required(self, c: Collection, record_id: str, info: RequestInfo) -> tuple[bool, bool]:
        """(MFA needed, TOTP enabled for the record)."""
        totp_on = self.totp.is_enabled(c, record_id)
        mfa = c.options.get("mfa", {})
        if mfa.get("enabled"):
            rule = str(mfa.get("rule") or "")
            if not rule or record_matches(self.db, self.collections, c, record_id, rule, info):
                return True, totp_on
        return totp_on, totp_on

    def effectively_enabled(self, c: Collection, record_id: str) -> bool:
        return bool(c.options.get("mfa", {}).get("enabled")) or self.totp.is_enabled(c, record_id)

    def check(self, c: Collection, record: dict[str, Any], method: str, mfa_id: str, info: RequestInfo) -> str:
        """Run the MFA step of a successful ``method``: a new mfaId to answer with, or "" to sign in."""
        if not method:
            return ""
        record_id = str(record["id"])
        needed, totp_on = self.required(c, record_id, info)
        if not needed:
            return ""
        if not mfa_id:
            return self.begin(c, record_id, method)
        self.complete(c, record_id, mfa_id, method, totp_on)
        return ""

    def begin(self, c: Collection, record_id: str, method: str) -> str:
        mfa_id = new_record_id()
        ts = now_str()
        with self.db.write() as conn:
            conn.execute(insert(self._table()).values(id=mfa_id, collectionRef=c.id, recordRef=record_id,
                                                      method=method, created=ts, updated=ts))
        return mfa_id

    def find_session(self, c: Collection, mfa_id: str) -> dict[str, Any]:
        """The live ``_mfas`` row ``mfa_id`` of collection ``c``; 400 if unknown or expired."""
        table = self._table()
        with self.db.read() as conn:
            row = conn.execute(select(table).where(table.c.id == mfa_id)).first()
        if row is None:
            raise BadRequestError(INVALID_OR_EXPIRED)
        created = parse_datetime(str(row.created))
        if created is None or created + timedelta(seconds=self.duration(c)) < now():
            with self.db.write() as conn:
                conn.execute(delete(table).where(table.c.id == mfa_id))
            raise BadRequestError(INVALID_OR_EXPIRED)
        if row.collectionRef != c.id:
            raise BadRequestError(INVALID)
        return dict(row._mapping)

    def complete(self, c: Collection, record_id: str, mfa_id: str, method: str, totp_on: bool) -> None:
        session = self.find_session(c, mfa_id)
        if session["recordRef"] != record_id:
            raise BadRequestError(INVALID)
        if session["method"] == method or (totp_on and "totp" not in (method, session["method"])):
            raise BadRequestError(DIFFERENT_METHOD)
        table = self._table()
        with self.db.write() as conn:
            res = conn.execute(delete(table).where(table.c.id == mfa_id, table.c.recordRef == record_id,
                                                   table.c.method == session["method"]))
        if res.rowcount != 1:  # another request completed (or expired) it first
            raise BadRequestError(INVALID_OR_EXPIRED)

    def authenticate_totp(self, c: Collection, mfa_id: str, code: str) -> dict[str, Any]:
        """The record of the pending session ``mfa_id`` if ``code`` is its TOTP or a recovery code.

        The session itself is completed (consumed) by ``check`` with method ``totp`` afterwards."""
        session = self.find_session(c, mfa_id)
        table = self.collections.records_table(c)
        with self.db.read() as conn:
            row = conn.execute(select(table).where(table.c.id == session["recordRef"])).first()
        with counted_attempt(self.totp.limiter, c, "totp", str(session["recordRef"])):
            if row is None or not self.totp.verify_code(c, str(session["recordRef"]), code):
                raise BadRequestError(FAILED)
        record = row_values(c, row)
        check_auth_rule(self.db, self.collections, c, record, "totp")
        return record

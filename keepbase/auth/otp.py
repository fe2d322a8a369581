"""One-time passwords by email, as PocketBase's request-otp / auth-with-otp.

* ``request_otp`` always answers with an id — a random, unusable one for unknown emails — so
  the endpoint does not tell which emails have accounts. For a known email the OTP is hashed,
  stored and mailed on a worker thread (``MAX_PENDING_ISSUES`` at most), so the answer does not
  wait for ~100 ms of bcrypt that an unknown email would not cost (timing: ``auth.timing``); if
  sending fails the OTP is deleted.
* The password is ``otp.length`` random digits, stored bcrypt-hashed in ``_otps``.
* ``auth_with_otp``: at most 5 attempts per record per 180 s (PocketBase's built-in limit,
  whatever the settings say), then the OTP is consumed by one conditional DELETE: of many
  parallel uses with the right password exactly one signs in.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import bcrypt
from sqlalchemy import delete, insert, select

from ..core.clock import now, now_str, parse_datetime
from ..core.errors import (
    REQUIRED,
    BadRequestError,
    FieldError,
    ForbiddenError,
    TooManyRequestsError,
    ValidationError,
)
from ..core.ids import new_record_id, random_string
from ..core.types import AuthInfo, RequestInfo
from ..mail import Mailer, MailQueue
from ..security.passwords import verify_password
from ..security.rate_limiter import RateLimiter
from ..store.collections import CollectionStore
from ..store.db import Database
from ..store.models import Collection
from ..store.record_input import row_values
from ..store.records import RecordService
from .attempts import counted_attempt
from .auth_rule import check_auth_rule
from .mails import otp_message
from .mfa import MFAService

log = logging.getLogger("keepbase.auth")

DISABLED = "The collection is not configured to allow OTP authentication."
INVALID = "Invalid or expired OTP."
TOO_MANY = "Too many attempts, please try again later with a new OTP."
VALIDATE_ERROR = "An error occurred while validating the submitted data."
MAX_ATTEMPTS, ATTEMPTS_WINDOW = 5, 180  # PocketBase's built-in limit per record
MAX_LIVE_OTPS = 9  # beyond this many unexpired OTPs the newest is reused and nothing is sent
MAX_PENDING_ISSUES = 1000  # OTPs waiting to be hashed, stored and mailed; beyond, one is dropped (logged)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def hash_otp(password: str) -> str:
    """bcrypt (cost 10), as PocketBase stores OTPs. An OTP lives minutes, not years: Argon2id's
    64 MiB per verification would only make parallel sign-ins slow, not the OTP safer."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode()


class OTPService:
    def __init__(self, db: Database, collections: CollectionStore, records: RecordService, mailer: Mailer,
                 settings: Callable[[], dict[str, Any]], limiter: RateLimiter, mfa: MFAService) -> None:
        self.db = db
        self.collections = collections
        self.records = records
        self.mailer = mailer
        self.settings = settings
        self.limiter = limiter
        self.mfa = mfa
        self.mail_queue: MailQueue | None = None  # create_app shares the auth mail queue (bounded, retried)
        self._issuer = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2),
                                          thread_name_prefix="keepbase-otp")  # threads start on first use
        self._pending = 0  # OTPs submitted to _issuer and not issued yet
        self._pending_changed = threading.Condition()

    def close(self, timeout: float) -> bool:
        """Let the OTPs being issued reach the mail queue (within ``timeout`` s): call before the
        mail queue closes. True when none was left."""
        with self._pending_changed:
            done = self._pending_changed.wait_for(lambda: self._pending == 0, timeout)
        self._issuer.shutdown(wait=False)
        return done

    def _table(self) -> Any:
        return self.collections.records_table(self.collections.get("_otps"))

    @staticmethod
    def enabled_or_403(c: Collection) -> dict[str, Any]:
        opts: dict[str, Any] = c.options.get("otp", {})
        if not opts.get("enabled"):
            raise ForbiddenError(DISABLED)
        return opts

    # --- request-otp ---
    def request_otp(self, c: Collection, email: Any) -> str:
        opts = self.enabled_or_403(c)
        if not email or not isinstance(email, str):
            raise ValidationError(VALIDATE_ERROR, {"email": REQUIRED})
        if len(email) > 255 or not _EMAIL_RE.match(email):
            raise ValidationError(VALIDATE_ERROR, {"email": FieldError("validation_is_email",
                                                                       "Must be a valid email address.")})
        table = self.collections.records_table(c)
        with self.db.read() as conn:
            row = conn.execute(select(table).where(table.c.email == email).limit(1)).first()
        if row is None:
            return new_record_id()  # looks like a real id; never usable
        record = row_values(c, row)
        reuse = self._newest_if_too_many(c, record["id"], int(opts.get("duration") or 180))
        if reuse:
            log.warning("too many OTP requests for record %s; reusing the last issued", record["id"])
            return reuse
        otp_id = new_record_id()
        with self._pending_changed:
            if self._pending >= MAX_PENDING_ISSUES:
                log.warning("too many OTPs waiting to be issued; dropping OTP %s", otp_id)
                return otp_id  # as a full mail queue drops the mail: the caller asks again
            self._pending += 1
        try:
            self._issuer.submit(self._issue, c, record, email, otp_id)
        except RuntimeError:  # closed: shutting down
            self._issued()
            log.warning("shutting down; dropping OTP %s", otp_id)
        return otp_id

    def _issue(self, c: Collection, record: dict[str, Any], email: str, otp_id: str) -> None:
        try:
            _, password = self.create_otp(c, record, email, otp_id)
            if self.mail_queue is None:
                self._send(c, record, otp_id, password)
            elif not self.mail_queue.submit(otp_message(self.settings(), c, record, otp_id, password), what="OTP",
                                            on_failure=lambda _exc: self._delete_otp(otp_id)):
                self._delete_otp(otp_id)  # dropped (queue full): an OTP nobody received is useless
        except Exception:
            log.exception("failed to issue OTP %s", otp_id)
        finally:
            self._issued()

    def _issued(self) -> None:
        with self._pending_changed:
            self._pending -= 1
            self._pending_changed.notify_all()

    def _newest_if_too_many(self, c: Collection, record_id: str, duration: int) -> str:
        t = self._table()
        since = now() - timedelta(seconds=duration)
        with self.db.read() as conn:
            rows = conn.execute(select(t.c.id, t.c.created).where(t.c.collectionRef == c.id, t.c.recordRef == record_id)
                                .order_by(t.c.created.desc())).all()
        live = [r for r in rows if (parse_datetime(str(r.created)) or since) > since]
        return str(rows[0].id) if len(live) > MAX_LIVE_OTPS else ""

    def create_otp(self, c: Collection, record: dict[str, Any], sent_to: str, otp_id: str = "") -> tuple[str, str]:
        """Store a new OTP for ``record``: (otpId, plain password)."""
        length = int(c.options.get("otp", {}).get("length") or 8)
        password = "".join(secrets.choice("0123456789") for _ in range(length))
        otp_id = otp_id or new_record_id()
        ts = now_str()
        with self.db.write() as conn:
            conn.execute(insert(self._table()).values(
                id=otp_id, collectionRef=c.id, recordRef=record["id"], password=hash_otp(password),
                sentTo=sent_to, created=ts, updated=ts))
        return otp_id, password

    def _send(self, c: Collection, record: dict[str, Any], otp_id: str, password: str) -> None:
        try:
            self.mailer.send(otp_message(self.settings(), c, record, otp_id, password))
        except Exception:
            log.exception("failed to send the OTP email; deleting OTP %s", otp_id)
            self._delete_otp(otp_id)

    def _delete_otp(self, otp_id: str) -> None:
        try:
            with self.db.write() as conn:
                conn.execute(delete(self._table()).where(self._table().c.id == otp_id))
        except Exception:
            log.exception("failed to delete OTP %s", otp_id)

    # --- auth-with-otp ---
    def authenticate(self, c: Collection, otp_id: Any, password: Any) -> dict[str, Any]:
        """The stored values of the record the OTP signs in (after consuming the OTP)."""
        opts = self.enabled_or_403(c)
        errors: dict[str, Any] = {}
        if not otp_id or not isinstance(otp_id, str) or len(otp_id) > 255:
            errors["otpId"] = REQUIRED
        if not password or not isinstance(password, str) or len(password) > 71:
            errors["password"] = REQUIRED
        if errors:
            raise ValidationError(VALIDATE_ERROR, errors)
        assert isinstance(otp_id, str) and isinstance(password, str)
        t = self._table()
        with self.db.read() as conn:
            otp = conn.execute(select(t).where(t.c.id == otp_id)).first()
        if otp is None or otp.collectionRef != c.id:
            raise BadRequestError(INVALID)
        created = parse_datetime(str(otp.created))
        if created is None or created + timedelta(seconds=int(opts.get("duration") or 180)) < now():
            raise BadRequestError(INVALID)
        table = self.collections.records_table(c)
        with self.db.read() as conn:
            row = conn.execute(select(table).where(table.c.id == otp.recordRef)).first()
        if row is None:
            raise BadRequestError(INVALID)
        with counted_attempt(self.limiter, c, "otp", str(otp.recordRef)):  # keepbase's, configurable
            if self.limiter.consume(f"otp:{c.id}:{otp.recordRef}", MAX_ATTEMPTS, ATTEMPTS_WINDOW):
                raise TooManyRequestsError(TOO_MANY)
            if not verify_password(str(otp.password), password):
                raise BadRequestError(INVALID)
        with self.db.write() as conn:  # single use: only the request whose DELETE hit the row goes on
            if conn.execute(delete(t).where(t.c.id == otp_id)).rowcount != 1:
                raise BadRequestError(INVALID)
        record = row_values(c, row)
        sent_to = str(otp.sentTo or "")
        if not record.get("verified") and sent_to and sent_to == record.get("email"):
            record = self._mark_verified(c, record)
        check_auth_rule(self.db, self.collections, c, record, "otp")
        return record

    def _mark_verified(self, c: Collection, record: dict[str, Any]) -> dict[str, Any]:
        """The OTP proved the email: mark it verified. Without MFA the password (possibly set by
        whoever registered the address first) is replaced by a random one, rotating tokenKey."""
        body: dict[str, Any] = {"verified": True}
        if not self.mfa.effectively_enabled(c, str(record["id"])):
            pw = random_string(30)
            body.update(password=pw, passwordConfirm=pw)
        su = RequestInfo(auth=AuthInfo("pbc_3142635823", "_superusers", {"id": ""}), context="otp")
        try:
            self.records.update_record(c, str(record["id"]), body, su)
        except Exception:
            log.exception("failed to update the verified state of record %s after OTP", record["id"])
            return record
        table = self.collections.records_table(c)
        with self.db.read() as conn:
            row = conn.execute(select(table).where(table.c.id == record["id"])).first()
        return record if row is None else row_values(c, row)


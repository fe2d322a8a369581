"""TOTP second factor (keepbase addition; RFC 6238 via pyotp) with single-use recovery codes.

State lives in two keepbase tables, not collections, so the records API never exposes it:

* ``_kbTotp`` — one row per auth record: base32 ``secret``, ``enabled`` (0 while enrolment is
  pending), ``lastStep`` (the last accepted 30 s time step);
* ``_kbTotpRecovery`` — SHA-256 of each unused recovery code (random, ~52 bits each, so a fast
  hash is enough; it lets a code be consumed by one conditional DELETE).

Security notes:

* A code for the current step or one step either side is accepted (clock skew).
* Replay: a code is accepted only by ``UPDATE ... SET lastStep = :step WHERE lastStep < :step``
  and only if that changed one row, so a code (or an older one) can't be used twice, even by
  parallel requests.
* A recovery code is consumed by ``DELETE ... WHERE codeHash = :hash``; only the request whose
  DELETE removed the row succeeds.
* Secrets are stored as is: encrypting them with the keyring is left for when it exists.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from typing import Any

import pyotp
from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, delete, func, insert, select, update

from ..core.clock import now_str
from ..core.errors import BadRequestError, StartupError, TooManyRequestsError
from ..core.ids import random_string
from ..security.keyring import PREFIX, Keyring, key_id_of
from ..security.rate_limiter import RateLimiter
from ..store.db import Database
from ..store.models import Collection
from ..store.schema import text_type

STEP = 30
DIGITS = 6
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l
_CODE_RE = re.compile(r"^\d{6}$")

ALREADY_ENABLED = "TOTP is already enabled for this account."
NOT_ENROLLED = "Start the TOTP enrolment first."
TOO_MANY = "Too many attempts, please try again later."
MAX_ATTEMPTS, ATTEMPTS_WINDOW = 5, 180  # per record, like PocketBase's OTP limit


def _tables() -> tuple[MetaData, Table, Table]:
    md = MetaData()
    totp = Table(
        "_kbTotp", md,
        Column("collectionRef", text_type(), primary_key=True),
        Column("recordRef", text_type(), primary_key=True),
        Column("secret", text_type(), nullable=False),
        Column("enabled", Integer, nullable=False, server_default="0"),
        Column("lastStep", BigInteger, nullable=False, server_default="0"),
        Column("created", text_type(), nullable=False, server_default=""),
        Column("updated", text_type(), nullable=False, server_default=""),
    )
    recovery = Table(
        "_kbTotpRecovery", md,
        Column("collectionRef", text_type(), primary_key=True),
        Column("recordRef", text_type(), primary_key=True),
        Column("codeHash", text_type(), primary_key=True),
        Column("created", text_type(), nullable=False, server_default=""),
    )
    return md, totp, recovery


def _hash_code(code: str) -> str:
    return hashlib.sha256(normalize_recovery_code(code).encode()).hexdigest()


def normalize_recovery_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).lower()


def new_recovery_code() -> str:
    raw = random_string(10, _RECOVERY_ALPHABET)
    return raw[:5] + "-" + raw[5:]


class TOTPService:
    """Enrol, confirm, verify and disable TOTP for auth records. ``clock`` is replaceable in tests."""

    def __init__(self, db: Database, limiter: RateLimiter, clock: Callable[[], float] = time.time,
                 keyring: Keyring | None = None) -> None:
        self.db = db
        self.limiter = limiter
        self.clock = clock
        #: with a keyring, secrets are stored sealed (AES-GCM, bound to their record; docs/security.md)
        self.keyring = keyring
        self._md, self.table, self.recovery = _tables()
        with db.write() as conn:
            self._md.create_all(conn, checkfirst=True)
        self._seal_stored()

    # --- secrets at rest ---
    @staticmethod
    def _aad(collection_id: str, record_id: str) -> bytes:
        return f"totp|{collection_id}|{record_id}".encode()

    def _seal(self, collection_id: str, record_id: str, secret: str) -> str:
        if self.keyring is None:
            return secret
        return self.keyring.encrypt(secret.encode(), self._aad(collection_id, record_id))

    def _open(self, row: Any) -> str:
        """The base32 secret of a ``_kbTotp`` row (sealed or, stored before a key was set, plain)."""
        stored = str(row.secret)
        if key_id_of(stored) is None:
            return stored
        if self.keyring is None:
            raise StartupError("TOTP secrets are stored encrypted but no encryption key is configured: "
                               "set KEEPBASE_ENCRYPTION_KEYS (docs/security.md)")
        return self.keyring.decrypt(stored, self._aad(row.collectionRef, row.recordRef)).decode()

    def _seal_stored(self) -> None:
        """Seal secrets stored in clear (before a key was configured) or under an older key; a sealed
        secret whose key is missing stops start-up with one line."""
        if self.keyring is None:
            with self.db.read() as conn:
                sealed = conn.execute(select(self.table.c.recordRef).where(
                    self.table.c.secret.startswith(PREFIX, autoescape=True)).limit(1)).first()
            if sealed is not None:
                raise StartupError("TOTP secrets are stored encrypted but no encryption key is configured: "
                                   "set KEEPBASE_ENCRYPTION_KEYS (docs/security.md)")
            return
        with self.db.write() as conn:
            for row in conn.execute(select(self.table)).all():
                kid = key_id_of(str(row.secret))
                if kid == self.keyring.primary.id:
                    continue
                if kid is not None and not self.keyring.has(kid):
                    raise StartupError(f"TOTP secrets are sealed with the encryption key {kid!r}, which is not in "
                                       "KEEPBASE_ENCRYPTION_KEYS; add it back (docs/security.md)")
                sealed = self._seal(row.collectionRef, row.recordRef, self._open(row))
                conn.execute(update(self.table).where(self.table.c.collectionRef == row.collectionRef,
                                                      self.table.c.recordRef == row.recordRef)
                             .values(secret=sealed))

    def _key(self, t: Table, c: Collection, record_id: str) -> Any:
        return (t.c.collectionRef == c.id) & (t.c.recordRef == record_id)

    def _row(self, c: Collection, record_id: str) -> Any:
        with self.db.read() as conn:
            return conn.execute(select(self.table).where(self._key(self.table, c, record_id))).first()

    def is_enabled(self, c: Collection, record_id: str) -> bool:
        row = self._row(c, record_id)
        return row is not None and bool(row.enabled)

    def status(self, c: Collection, record_id: str) -> dict[str, Any]:
        row = self._row(c, record_id)
        with self.db.read() as conn:
            left = conn.execute(select(func.count()).select_from(self.recovery)
                                .where(self._key(self.recovery, c, record_id))).scalar_one()
        return {"enabled": row is not None and bool(row.enabled), "recoveryCodes": int(left)}

    def enroll(self, c: Collection, record_id: str, account: str, issuer: str) -> dict[str, str]:
        """A new pending secret and its ``otpauth://`` URI (replaces an unconfirmed one)."""
        secret = pyotp.random_base32()
        now = now_str()
        with self.db.write() as conn:
            row = conn.execute(select(self.table.c.enabled).where(self._key(self.table, c, record_id))).first()
            if row is not None and row.enabled:
                raise BadRequestError(ALREADY_ENABLED)
            conn.execute(delete(self.table).where(self._key(self.table, c, record_id), self.table.c.enabled == 0))
            conn.execute(insert(self.table).values(collectionRef=c.id, recordRef=record_id,
                                                   secret=self._seal(c.id, record_id, secret),
                                                   enabled=0, lastStep=0, created=now, updated=now))
        uri = pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)
        return {"secret": secret, "uri": uri}

    def confirm(self, c: Collection, record_id: str, code: str) -> list[str] | None:
        """Enable TOTP if ``code`` is valid for the pending secret: the new recovery codes, else None."""
        row = self._row(c, record_id)
        if row is None:
            raise BadRequestError(NOT_ENROLLED)
        if row.enabled:
            raise BadRequestError(ALREADY_ENABLED)
        step = self._matching_step(self._open(row), code)
        if step is None:
            return None
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        now = now_str()
        with self.db.write() as conn:
            res = conn.execute(update(self.table).where(
                self._key(self.table, c, record_id), self.table.c.enabled == 0, self.table.c.secret == row.secret,
            ).values(enabled=1, lastStep=step, updated=now))
            if res.rowcount != 1:
                return None
            conn.execute(delete(self.recovery).where(self._key(self.recovery, c, record_id)))
            conn.execute(insert(self.recovery), [
                {"collectionRef": c.id, "recordRef": record_id, "codeHash": _hash_code(x), "created": now}
                for x in codes])
        return codes

    def _matching_step(self, secret: str, code: str) -> int | None:
        code = code.strip()
        if not _CODE_RE.match(code):
            return None
        totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
        now_step = int(self.clock()) // STEP
        found = None
        for step in (now_step - 1, now_step, now_step + 1):  # look at all three: constant work
            if hmac.compare_digest(totp.generate_otp(step), code):
                found = step
        return found

    def verify_code(self, c: Collection, record_id: str, code: str) -> bool:
        """A TOTP code (accepted once per time step, ±1 step) or a recovery code (once).

        At most 5 attempts per record per 180 s (429 beyond), whatever the rate limit settings."""
        if self.limiter.consume(f"totp:{c.id}:{record_id}", MAX_ATTEMPTS, ATTEMPTS_WINDOW):
            raise TooManyRequestsError(TOO_MANY)
        if not _CODE_RE.match(code.strip()):
            return self.use_recovery_code(c, record_id, code)
        row = self._row(c, record_id)
        if row is None or not row.enabled:
            return False
        step = self._matching_step(self._open(row), code)
        if step is None:
            return False
        with self.db.write() as conn:
            res = conn.execute(update(self.table).where(
                self._key(self.table, c, record_id), self.table.c.enabled == 1, self.table.c.lastStep < step,
            ).values(lastStep=step, updated=now_str()))
        return res.rowcount == 1

    def use_recovery_code(self, c: Collection, record_id: str, code: str) -> bool:
        if not self.is_enabled(c, record_id):
            return False
        with self.db.write() as conn:
            res = conn.execute(delete(self.recovery).where(
                self._key(self.recovery, c, record_id), self.recovery.c.codeHash == _hash_code(code)))
        return res.rowcount == 1

    def disable(self, c: Collection, record_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(self.recovery).where(self._key(self.recovery, c, record_id)))
            conn.execute(delete(self.table).where(self._key(self.table, c, record_id)))

    def on_record_deleted(self, e: Any) -> None:
        """``record_after_delete`` handler: a deleted auth record takes its TOTP state with it."""
        if getattr(e.collection, "is_auth", False):
            self.disable(e.collection, str(e.record.get("id", "")))
        e.next()

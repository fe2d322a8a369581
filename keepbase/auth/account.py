"""Account flows: verification, password reset, email change, impersonation, test mails.

Each confirm step consumes its token atomically: the record is updated with
``WHERE id = :id AND tokenKey = :key_the_token_was_signed_with`` and the same UPDATE writes a
new tokenKey (password reset, email change) or flips ``verified`` (verification). Of any
number of concurrent confirms with one token exactly one UPDATE matches a row; the others see
a dead key and fail as "invalid token". Nothing is cached about tokens: the key is the state.

The request steps answer the same way whether or not the email belongs to a record (no
account enumeration): the mail goes through the background ``MailQueue`` (bounded, fair per
client IP and recipient, retried on transient errors; see ``keepbase/mail/queue.py``), and an
audit row is written on both paths so the work done per request is alike.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..core.clock import now_str
from ..core.errors import REQUIRED, BadRequestError, FieldError, NotFoundError, ValidationError
from ..core.events import Hooks, RecordEvent
from ..core.ids import random_string
from ..core.types import AuthInfo, RequestInfo
from ..mail.queue import DEFAULT_MAX_SIZE, MailQueue
from ..mail.sender import Mailer, MailError, Message
from ..security.jwt_tokens import unverified_claims
from ..security.passwords import hash_password, verify_password
from ..store.audit import AuditEntry, AuditLog
from ..store.collections import CollectionStore
from ..store.db import Database, after_commit
from ..store.fields import SaveContext, get_type
from ..store.fields.base import Invalid
from ..store.models import Collection
from ..store.record_input import row_values, to_db
from . import mails
from .tokens import find_auth_record_by_token, new_auth_token

log = logging.getLogger("keepbase.auth")

VALIDATE_ERROR = "An error occurred while validating the submitted data."
RESEND_SECONDS = 120
INVALID_TOKEN = FieldError("validation_invalid_token", "Invalid or expired token.")
COLLECTION_MISMATCH = FieldError("validation_token_collection_mismatch",
                                 "The provided token is for different auth collection.")
_EMAIL_RE = re.compile(r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                       r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
MAIL_FLUSH_SECONDS = 10.0  # how long close() gives queued mails by default
TEST_TEMPLATES = ("verification", "password-reset", "email-change", "otp", "login-alert")


def _length_error(lo: int, hi: int) -> FieldError:
    return FieldError("validation_length_out_of_range", f"The length must be between {lo} and {hi}.",
                      {"max": hi, "min": lo})


def email_error(value: Any) -> FieldError | None:
    """``Required, Length(1, 255), is.EmailFormat`` as PocketBase's forms check an email."""
    if not value:
        return REQUIRED
    if len(value) > 255:
        return _length_error(1, 255)
    if not _EMAIL_RE.match(value):
        return FieldError("validation_is_email", "Must be a valid email address.")
    return None


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):  # PocketBase binds into a string field: anything else fails to load
        raise BadRequestError("An error occurred while loading the submitted data.")
    return value


class AccountService:
    def __init__(self, db: Database, collections: CollectionStore, settings: Callable[[], dict[str, Any]],
                 mailer: Mailer, audit: AuditLog, hooks: Hooks, *, mail_queue_size: int = DEFAULT_MAX_SIZE) -> None:
        self.db = db
        self.collections = collections
        self.settings = settings
        self.mailer = mailer
        self.audit = audit
        self.hooks = hooks
        self._resend: dict[str, float] = {}
        self._lock = threading.Lock()
        self.mail_queue = MailQueue(mailer.send, max_size=mail_queue_size)
        hooks.record_update.bind(self._audit_token_key_change, id="keepbase_audit_token_revocation")

    def close(self, timeout: float = MAIL_FLUSH_SECONDS) -> bool:
        """Send the queued mails (within ``timeout`` seconds) and stop; True when none was left."""
        return self.mail_queue.close(timeout)

    def queue_size(self) -> int:
        """Mails waiting to be sent (queued, waiting for a retry, or being sent)."""
        return len(self.mail_queue)

    # --- helpers ---
    def _find_by_email(self, c: Collection, email: str) -> dict[str, Any] | None:
        table = self.collections.records_table(c)
        with self.db.read() as conn:
            row = conn.execute(select(table).where(table.c.email == email).limit(1)).first()
        return None if row is None else row_values(c, row)

    def _throttled(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            for k in [k for k, until in self._resend.items() if until <= now]:
                del self._resend[k]
            return key in self._resend

    def _throttle(self, key: str, seconds: float = RESEND_SECONDS) -> None:
        with self._lock:
            self._resend[key] = time.monotonic() + seconds

    def _unthrottle(self, key: str) -> None:
        with self._lock:
            self._resend.pop(key, None)

    def _send_later(self, message: Message, what: str, ip: str) -> None:
        self.mail_queue.submit(message, client=ip, what=what)

    def send_notice(self, message: Message, what: str, ip: str) -> None:
        """Queue a notice mail (bounded, retried; see mail.queue)."""
        self._send_later(message, what, ip)

    def _save(self, c: Collection, old: dict[str, Any], changes: dict[str, Any], info: RequestInfo,
              entry: AuditEntry, *, only_unverified: bool = False) -> bool:
        """Apply ``changes`` iff the record still has the tokenKey the token was signed with.

        Runs the record update hooks like any other update; returns False when no row matched
        (the token was consumed, or the key rotated, in the meantime)."""
        table = self.collections.records_table(c)
        try:
            self._save_in_tx(c, table, old, changes, info, entry, only_unverified)
        except _Consumed:
            return False  # rolled back: nothing a hook did in the meantime stays either
        return True

    def _save_in_tx(self, c: Collection, table: Any, old: dict[str, Any], changes: dict[str, Any],
                    info: RequestInfo, entry: AuditEntry, only_unverified: bool) -> None:
        with self.db.write() as conn:
            values = {**old, **changes}
            for f in c.fields:
                if f.type == "autodate" and f.options.get("onUpdate"):
                    values[f.name] = now_str()

            def default(e: RecordEvent) -> None:
                row = {f.name: to_db(f, e.record[f.name]) for f in c.fields
                       if f.name != "id" and e.record.get(f.name) != old.get(f.name)}
                stmt = update(table).where(table.c.id == old["id"], table.c.tokenKey == old["tokenKey"])
                if only_unverified:
                    stmt = stmt.where(table.c.verified == 0)
                if conn.execute(stmt.values(row)).rowcount != 1:
                    raise _Consumed()

            event = RecordEvent(collection=c, record=values, old=old, info=info, action="update", connection=conn)
            self.hooks.record_update.trigger(event, default)
            self.audit.write(entry, conn)
            after = RecordEvent(collection=c, record=dict(values), old=old, info=info, action="update")
            after_commit(conn, lambda: self.hooks.record_after_update.trigger_safely(after), change=after)

    def _audit_token_key_change(self, e: RecordEvent) -> None:
        """Every path that rotates a tokenKey (password or email change) revokes all tokens: log it."""
        e.next()
        old = e.old or {}
        if not e.collection.is_auth or not old or e.record.get("tokenKey") == old.get("tokenKey"):
            return
        info = e.info if isinstance(e.info, RequestInfo) else RequestInfo()
        actor = info.auth
        reasons = [k for k in ("password", "email") if e.record.get(k) != old.get(k)]
        self.audit.write(AuditEntry(
            "tokens_revoked", e.collection.id, str(old.get("id", "")), ip=getattr(info, "ip", ""),
            actor_collection_id=actor.collection_id if actor else "", actor_id=actor.id if actor else "",
            data={"changed": reasons}), e.connection)

    # --- verification ---
    def request_verification(self, c: Collection, body: dict[str, Any], ip: str) -> None:
        if c.name == "_superusers":
            raise BadRequestError("All superusers are verified by default.")
        email = _string(body, "email")
        err = email_error(email)
        if err:
            raise ValidationError(VALIDATE_ERROR, {"email": err})
        record = self._find_by_email(c, email)
        entry = AuditEntry("request_verification", c.id, record["id"] if record else "", ip=ip)
        if record is None:
            self.audit.write(AuditEntry(entry.action, c.id, success=False, ip=ip, data={"reason": "unknown email"}))
            return
        key = f"verification:{c.id}:{record['id']}"
        if record.get("verified") or self._throttled(key):
            return
        self._throttle(key)
        self.audit.write(entry)
        self._send_later(mails.verification_message(self.settings(), c, record), "verification", ip)

    def confirm_verification(self, c: Collection, body: dict[str, Any], ip: str) -> None:
        if c.name == "_superusers":
            raise BadRequestError("All superusers are verified by default.")
        token = _string(body, "token")
        if not token:
            raise ValidationError(VALIDATE_ERROR, {"token": REQUIRED})
        email = (unverified_claims(token) or {}).get("email")
        if not email or not isinstance(email, str):
            raise ValidationError(VALIDATE_ERROR, {"token": FieldError(
                "validation_invalid_token_claims", "Missing email token claim.")})
        found = find_auth_record_by_token(self.db, self.collections, token, "verification")
        if found is None:
            raise ValidationError(VALIDATE_ERROR, {"token": INVALID_TOKEN})
        tc, record, _claims = found
        if tc.id != c.id:
            raise ValidationError(VALIDATE_ERROR, {"token": COLLECTION_MISMATCH})
        if record.get("email") != email:
            raise ValidationError(VALIDATE_ERROR, {"token": FieldError(
                "validation_token_email_mismatch", "The record email doesn't match with the requested token claims.")})
        if record.get("verified"):
            return
        info = RequestInfo(method="POST", ip=ip)
        self._save(c, record, {"verified": True}, info,
                   AuditEntry("confirm_verification", c.id, record["id"], ip=ip), only_unverified=True)

    # --- password reset ---
    def request_password_reset(self, c: Collection, body: dict[str, Any], ip: str) -> None:
        if not c.options.get("passwordAuth", {}).get("enabled"):
            raise BadRequestError("The collection is not configured to allow password authentication.")
        email = _string(body, "email")
        err = email_error(email)
        if err:
            raise ValidationError(VALIDATE_ERROR, {"email": err})
        record = self._find_by_email(c, email)
        if record is None:
            self.audit.write(AuditEntry("request_password_reset", c.id, success=False, ip=ip,
                                        data={"reason": "unknown email"}))
            return
        key = f"passwordReset:{c.id}:{record['id']}"
        if self._throttled(key):
            return
        self._throttle(key)
        self.audit.write(AuditEntry("request_password_reset", c.id, record["id"], ip=ip))
        self._send_later(mails.password_reset_message(self.settings(), c, record), "password reset", ip)

    def confirm_password_reset(self, c: Collection, body: dict[str, Any], ip: str) -> None:
        token, password = _string(body, "token"), _string(body, "password")
        confirm = _string(body, "passwordConfirm")
        errors: dict[str, Any] = {}
        found = None
        if not token:
            errors["token"] = REQUIRED
        else:
            found = find_auth_record_by_token(self.db, self.collections, token, "passwordReset")
            if found is None:
                errors["token"] = INVALID_TOKEN
            elif found[0].id != c.id:
                errors["token"] = COLLECTION_MISMATCH
        pf = c.get_field("password")
        lo = max(1, int(pf.options.get("min") or 0)) if pf else 1
        if not password:
            errors["password"] = REQUIRED
        elif not lo <= len(password) <= 255:
            errors["password"] = _length_error(lo, 255)
        if not confirm:
            errors["passwordConfirm"] = REQUIRED
        elif confirm != password:
            errors["passwordConfirm"] = FieldError("validation_values_mismatch", "Values don't match.")
        if errors or found is None:
            raise ValidationError(VALIDATE_ERROR, errors)
        _tc, record, claims = found
        handler = get_type("password")
        if pf is not None and handler is not None:
            try:
                handler.validate(pf, password, SaveContext(is_create=False))
            except Invalid as exc:
                raise BadRequestError("Failed to set new password.") from exc
        changes: dict[str, Any] = {"password": hash_password(password), "tokenKey": random_string(50)}
        if not record.get("verified") and record.get("email") == claims.get("email"):
            changes["verified"] = True
        info = RequestInfo(method="POST", ip=ip)
        if not self._save(c, record, changes, info, AuditEntry("confirm_password_reset", c.id, record["id"], ip=ip)):
            self.audit.write(AuditEntry("confirm_password_reset", c.id, record["id"], success=False, ip=ip,
                                        data={"reason": "token already used"}))
            raise ValidationError(VALIDATE_ERROR, {"token": INVALID_TOKEN})
        self._unthrottle(f"passwordReset:{c.id}:{record['id']}")

    # --- email change ---
    def request_email_change(self, c: Collection, auth: AuthInfo, body: dict[str, Any], ip: str) -> None:
        if c.name == "_superusers":
            raise BadRequestError("All superusers can change their emails directly.")
        new_email = _string(body, "newEmail")
        err = email_error(new_email)
        record = dict(auth.record)
        if err is None and new_email == record.get("email"):
            err = FieldError("validation_not_in_invalid", "Must not be in list.")
        taken = False
        if err is None:
            other = self._find_by_email(c, new_email)
            if other is not None and other["id"] != record["id"]:
                taken = True
                if not c.options.get("enumerationSafe"):
                    err = FieldError("validation_invalid_new_email", "Invalid new email address.")
        if err:
            raise ValidationError(VALIDATE_ERROR, {"newEmail": err})
        # enumerationSafe: a taken address answers like a free one; its owner is told instead
        message = (taken_address_notice(self.settings(), new_email, "change an account's email to")
                   if taken else mails.email_change_message(self.settings(), c, record, new_email))
        try:
            self.mailer.send(message)
        except MailError as exc:
            log.error("failed to send the email change email: %s", exc)
            raise BadRequestError("Failed to request email change.") from exc
        self.audit.write(AuditEntry("request_email_change", c.id, record["id"], ip=ip,
                                    actor_collection_id=c.id, actor_id=record["id"]))

    def confirm_email_change(self, c: Collection, body: dict[str, Any], ip: str) -> None:
        if c.name == "_superusers":
            raise BadRequestError("All superusers can change their emails directly.")
        token, password = _string(body, "token"), _string(body, "password")
        errors: dict[str, Any] = {}
        found = None
        new_email = ""
        if not token:
            errors["token"] = REQUIRED
        else:
            new_email = str((unverified_claims(token) or {}).get("newEmail") or "")
            if not new_email:
                errors["token"] = FieldError("validation_invalid_token_payload",
                                             "Invalid token payload - newEmail must be set.")
            else:
                # The signature is checked before the "already registered" lookup (PocketBase does it
                # the other way round), so a forged token cannot probe which emails exist.
                found = find_auth_record_by_token(self.db, self.collections, token, "emailChange")
                if found is None:
                    errors["token"] = INVALID_TOKEN
                elif found[0].id != c.id:
                    errors["token"] = COLLECTION_MISMATCH
                elif self._find_by_email(c, new_email) is not None:
                    errors["token"] = FieldError("validation_invalid_token_email",
                                                 "The new email address is already registered: " + new_email)
        if not password:
            errors["password"] = REQUIRED
        elif len(password) > 100:
            errors["password"] = _length_error(1, 100)
        elif found is None or not verify_password(str(found[1].get("password") or ""), password):
            errors["password"] = FieldError("validation_invalid_password", "Missing or invalid auth record password.")
        if errors or found is None:
            raise ValidationError(VALIDATE_ERROR, errors)
        record = found[1]
        changes = {"email": new_email, "verified": True, "tokenKey": random_string(50)}
        info = RequestInfo(method="POST", ip=ip)
        entry = AuditEntry("confirm_email_change", c.id, record["id"], ip=ip)
        try:
            saved = self._save(c, record, changes, info, entry)
        except IntegrityError as exc:  # the address was taken between the check and the write
            raise BadRequestError("Failed to confirm email change.") from exc
        if not saved:
            raise ValidationError(VALIDATE_ERROR, {"token": INVALID_TOKEN})

    # --- impersonation and sign-in audit ---
    def impersonate(self, c: Collection, record_id: str, duration: int, actor: AuthInfo,
                    ip: str) -> tuple[dict[str, Any], str]:
        table = self.collections.records_table(c)
        with self.db.read() as conn:
            row = conn.execute(select(table).where(table.c.id == record_id)).first()
        if row is None:
            raise NotFoundError()
        record = row_values(c, row)
        token = new_auth_token(c, record, refreshable=False, duration=duration or None)
        self.audit.write(AuditEntry("impersonate", c.id, record["id"], ip=ip, actor_collection_id=actor.collection_id,
                                    actor_id=actor.id, data={"duration": duration}))
        return record, token

    def audit_sign_in(self, c: Collection, method: str, record: dict[str, Any] | None, ip: str,
                      identity: str = "", reason: str = "") -> None:
        """One row per sign-in attempt. On failure the record is looked up by identity so the
        row names the targeted account; the identity text itself is kept only when it is an
        email (a password typed into the wrong box must never land in the log)."""
        record_id = str(record["id"]) if record else ""
        data: dict[str, Any] = {"method": method}
        if record is None and identity:
            record_id = self._find_identity(c, identity)
            if _EMAIL_RE.match(identity) and len(identity) <= 255:
                data["identity"] = identity
        if reason:
            data["reason"] = reason
        self.audit.write(AuditEntry("auth_with_" + method, c.id, record_id, success=record is not None, ip=ip,
                                    data=data))

    def _find_identity(self, c: Collection, identity: str) -> str:
        table = self.collections.records_table(c)
        with self.db.read() as conn:
            for name in c.options.get("passwordAuth", {}).get("identityFields") or []:
                if c.get_field(name) is not None:
                    row = conn.execute(select(table.c.id).where(table.c[name] == identity).limit(1)).first()
                    if row is not None:
                        return str(row[0])
        return ""

    # --- POST /api/settings/test/email ---
    def send_test_email(self, body: dict[str, Any]) -> None:
        name, email, template = _string(body, "collection"), _string(body, "email"), _string(body, "template")
        errors: dict[str, Any] = {}
        if len(name) > 255:
            errors["collection"] = _length_error(1, 255)
        err = email_error(email)
        if err:
            errors["email"] = err
        if not template:
            errors["template"] = REQUIRED
        elif template not in TEST_TEMPLATES:
            errors["template"] = FieldError("validation_in_invalid", "Must be a valid value.")
        if errors:
            raise ValidationError("Failed to send the test email.", errors)
        c = self.collections.find(name or "_superusers")
        if c is None:
            raise BadRequestError("Failed to send the test email. Raw error: \nsql: no rows in result set")
        record: dict[str, Any] = {f.name: f"__pb_test_{f.name}__" for f in c.fields if not f.hidden}
        record.update(tokenKey=random_string(50), email=email)
        s = self.settings()
        builders: dict[str, Callable[[], Message]] = {
            "verification": lambda: mails.verification_message(s, c, record),
            "password-reset": lambda: mails.password_reset_message(s, c, record),
            "email-change": lambda: mails.email_change_message(s, c, record, email),
            "otp": lambda: mails.otp_message(s, c, record, "_PB_TEST_OTP_ID_", "123456"),
            "login-alert": lambda: mails.auth_alert_message(s, c, record, now_str() + " - 127.0.0.1 My Test Browser"),
        }
        try:
            self.mailer.send(builders[template]())
        except MailError as exc:
            raise BadRequestError("Failed to send the test email. Raw error: \n" + str(exc)) from exc


class _Consumed(Exception):
    """The conditional UPDATE matched no row: the token's key is already gone."""


def taken_address_notice(settings: dict[str, Any], to: str, attempt: str) -> Message:
    """The mail an ``enumerationSafe`` collection sends to the owner of an address someone tried
    to use again (``attempt``: "sign up with", "change an account's email to")."""
    app_name = str(settings.get("meta", {}).get("appName", "")) or "the app"
    text = (f"Someone tried to {attempt} your email address at {app_name}. Your account was not changed. "
            "If it was you, sign in or reset your password instead; otherwise you can ignore this mail.")
    return Message(to=[to], subject=f"Someone tried to use your address at {app_name}",
                   html=f"<p>{html.escape(text)}</p>", text=text)


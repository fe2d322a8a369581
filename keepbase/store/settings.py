"""Runtime settings: data in the database (``_params`` row ``settings``), not Config.

Defaults match a fresh PocketBase install. Secrets (``smtp.password``, ``s3.secret``,
``backups.s3.secret``) are write-only: stored, never returned. ``KEEPBASE_SMTP_*`` environment
variables (HOST, PORT, USERNAME, PASSWORD, TLS, ENABLED) override the stored SMTP settings.

With an encryption keyring (``KEEPBASE_ENCRYPTION_KEYS``, docs/security.md) the secrets are also
stored sealed: each non-empty secret is ``kb1.<key id>.<...>`` (AES-256-GCM, the secret's path as
associated data, so a sealed value moved to another path does not open). They are opened when the
settings are loaded and sealed afresh under the first key on every save, and at start-up a stored
secret in clear (or under an older key) is sealed under the first key. Sealed secrets without their
key stop start-up with one line (``StartupError``).
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from sqlalchemy import insert, select, update

from ..core.clock import now_str
from ..core.config import Config, encryption_key_entries
from ..core.cron import Schedule
from ..core.errors import REQUIRED, FieldError, StartupError, ValidationError
from ..security.keyring import Keyring, KeyringError, key_id_of
from .db import Database

SECRET_PATHS = (("smtp", "password"), ("s3", "secret"), ("backups", "s3", "secret"))
_S3 = {"enabled": False, "bucket": "", "region": "", "endpoint": "", "accessKey": "", "secret": "",
       "forcePathStyle": False}
DEFAULTS: dict[str, Any] = {
    "superuserIPs": [],
    "smtp": {"enabled": False, "port": 587, "host": "smtp.example.com", "username": "", "password": "",
             "authMethod": "", "tls": False, "localName": ""},
    "backups": {"cron": "", "cronMaxKeep": 3, "s3": dict(_S3)},
    "s3": dict(_S3),
    "meta": {"accentColor": "#1055c9", "appName": "Acme", "appURL": "http://localhost:8090",
             "senderName": "Support", "senderAddress": "support@example.com", "hideControls": False},
    "rateLimits": {"rules": [
        {"label": "*:auth", "audience": "", "duration": 3, "maxRequests": 2},
        {"label": "*:create", "audience": "", "duration": 5, "maxRequests": 20},
        {"label": "/api/batch", "audience": "", "duration": 1, "maxRequests": 3},
        {"label": "/api/", "audience": "", "duration": 10, "maxRequests": 300}],
        "excludedIPs": [], "enabled": False},
    "trustedProxy": {"headers": [], "useLeftmostIP": False},
    "batch": {"enabled": False, "maxRequests": 50, "timeout": 3, "maxBodySize": 0},
    "logs": {"maxDataSize": 0, "maxDays": 5, "minLevel": 0, "logIP": True, "logAuthId": False},
}
_LABEL_RE = re.compile(r"^(\w+ \/[\w\/-]*|\/[\w\/-]*|\w+:\w+|\*:\w+|\w+)$")
_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
SAVE_ERROR = "An error occurred while saving the new settings."


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: objects merge key by key, everything else (arrays included) replaces."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def public_view(settings: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(settings)
    for path in SECRET_PATHS:
        node = out
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    return out


def _validate(s: dict[str, Any]) -> None:
    errors: dict[str, Any] = {}
    meta = s.get("meta", {})
    me: dict[str, Any] = {}
    if not meta.get("appName"):
        me["appName"] = REQUIRED
    if not isinstance(meta.get("appURL"), str) or not _URL_RE.match(meta.get("appURL", "")):
        me["appURL"] = FieldError("validation_is_url", "Must be a valid URL.")
    if me:
        errors["meta"] = me
    backups = _validate_backups(s.get("backups") or {})
    if backups:
        errors["backups"] = backups
    smtp = s.get("smtp", {})
    if smtp.get("enabled") and not smtp.get("host"):
        errors["smtp"] = {"host": REQUIRED}
    logs = s.get("logs", {})
    if not isinstance(logs.get("maxDays"), int) or logs.get("maxDays", 0) < 0:
        errors["logs"] = {"maxDays": FieldError("validation_min_greater_equal_than_required",
                                                "Must be no less than 0.", {"threshold": 0})}
    ips: dict[str, Any] = {}
    for i, ip in enumerate(s.get("superuserIPs") or []):
        try:
            ipaddress.ip_network(str(ip), strict=False)
        except ValueError:
            ips[str(i)] = FieldError("validation_invlaid_ip_or_subnet", "Invalid IP or CIDR subnet.")
    if ips:
        errors["superuserIPs"] = ips
    rules: dict[str, Any] = {}
    seen: set[tuple[str, str]] = set()
    for i, rule in enumerate((s.get("rateLimits") or {}).get("rules") or []):
        re_: dict[str, Any] = {}
        if not isinstance(rule, dict):
            rules[str(i)] = FieldError("validation_invalid_value", "Invalid value.")
            continue
        if not isinstance(rule.get("label"), str) or not _LABEL_RE.match(rule.get("label", "")):
            re_["label"] = FieldError("validation_match_invalid", "Must be in a valid format.")
        if rule.get("audience", "") not in ("", "@guest", "@auth"):
            re_["audience"] = FieldError("validation_in_invalid", "Must be a valid value.")
        for key in ("duration", "maxRequests"):
            if not isinstance(rule.get(key), int) or rule.get(key, 0) <= 0:
                re_[key] = REQUIRED
        key2 = (str(rule.get("label")), str(rule.get("audience", "")))
        if key2 in seen:
            re_["label"] = FieldError("validation_conflicting_rate_limit_rule",
                                      "Rate limit rule configuration with label and audience already exists.")
        seen.add(key2)
        if re_:
            rules[str(i)] = re_
    if rules:
        errors["rateLimits"] = {"rules": rules}
    if errors:
        raise ValidationError(SAVE_ERROR, errors)


def _validate_backups(backups: dict[str, Any]) -> dict[str, Any]:
    """``backups.cron`` must parse; with a schedule, ``cronMaxKeep`` must be at least 1."""
    errors: dict[str, Any] = {}
    cron = backups.get("cron") or ""
    if cron:
        try:
            Schedule.parse(str(cron))
        except ValueError:
            errors["cron"] = FieldError("validation_invalid_cron", "Invalid cron expression - must be a valid "
                                        "macro or to have exactly 5 space separated segments.")
        keep = backups.get("cronMaxKeep")
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            errors["cronMaxKeep"] = REQUIRED
    return errors


def _secrets(settings: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """(path, the object holding the secret) for each secret present in ``settings``."""
    for path in SECRET_PATHS:
        node: Any = settings
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(path[-1]), str) and node[path[-1]]:
            yield path, node


ENV_KEY_ID = "encryptionEnv"


def settings_keyring(cfg: Config, keyring: Keyring | None) -> Keyring | None:
    """The keyring of the settings' secrets: the key in the variable ``cfg.encryption_env`` names
    (PocketBase's ``--encryptionEnv``: 32 characters, used as they are) first when given, then the
    keys of encrypted fields. ``StartupError`` (one line, never the key) when that variable is unset
    or not 32 bytes."""
    if not cfg.encryption_env:
        return keyring
    value = os.environ.get(cfg.encryption_env)
    if value is None:
        raise StartupError(f"--encryptionEnv names the environment variable {cfg.encryption_env}, which is not set")
    key = value.encode()
    if len(key) != 32:
        raise StartupError(f"the environment variable {cfg.encryption_env} (--encryptionEnv) must hold a "
                           f"32-character key, not {len(key)} bytes")
    others = [e for e in encryption_key_entries(cfg) if e[0] != ENV_KEY_ID] if keyring is not None else []
    return Keyring([(ENV_KEY_ID, key, None), *others])


def _aad(path: tuple[str, ...]) -> bytes:
    return b"keepbase settings " + ".".join(path).encode()


class SettingsStore:
    KEY = "settings"

    def __init__(self, db: Database, params_table: Any, keyring: Keyring | None = None) -> None:
        self.db = db
        self.table = params_table
        self.keyring = keyring
        self._lock = threading.Lock()
        self._cache: dict[str, Any] | None = None
        #: called after a successful ``patch`` (e.g. to reschedule the auto-backup job)
        self.on_change: list[Callable[[], None]] = []

    def check_keys(self) -> None:
        """At start-up: refuse sealed secrets whose key is not configured (``StartupError``), and
        with a keyring, seal the secrets stored in clear or under a key other than the first."""
        with self.db.write() as conn:
            row = conn.execute(select(self.table.c.value).where(self.table.c.id == self.KEY)).first()
            stored = orjson.loads(row[0]) if row and row[0] else {}
            opened = self._open(stored)
            keyring = self.keyring
            if keyring is None or all(key_id_of(n[p[-1]]) == keyring.primary.id for p, n in _secrets(stored)):
                return
            conn.execute(update(self.table).where(self.table.c.id == self.KEY)
                         .values(value=orjson.dumps(self._seal(opened)).decode(), updated=now_str()))
        self.invalidate()

    def _open(self, stored: dict[str, Any]) -> dict[str, Any]:
        """``stored`` with its sealed secrets opened (a copy when there are any)."""
        sealed = [(p, n) for p, n in _secrets(stored) if key_id_of(n[p[-1]]) is not None]
        if not sealed:
            return stored
        out = copy.deepcopy(stored)
        for path, node in _secrets(out):
            value = node[path[-1]]
            kid = key_id_of(value)
            if kid is None:
                continue
            where = f"the stored settings' {'.'.join(path)}"
            fix = "pass --encryptionEnv VAR (KEEPBASE_ENCRYPTION_ENV) naming the variable that holds its key" \
                if kid == ENV_KEY_ID else "configure that key in KEEPBASE_ENCRYPTION_KEYS (or _FILE)"
            if self.keyring is None:
                raise StartupError(f"{where} is encrypted (key {kid!r}) but no key is configured; {fix}")
            try:
                node[path[-1]] = self.keyring.decrypt(value, _aad(path)).decode()
            except KeyringError as exc:
                raise StartupError(f"{where} cannot be decrypted: {exc}; {fix}") from exc
        return out

    def _seal(self, settings: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``settings`` (secrets in clear) with its secrets sealed under the first key."""
        if self.keyring is None:
            return settings
        out = copy.deepcopy(settings)
        for path, node in _secrets(out):
            node[path[-1]] = self.keyring.encrypt(node[path[-1]].encode(), _aad(path))
        return out

    def get(self) -> dict[str, Any]:
        """The effective settings (secrets included: for internal use only)."""
        cached = self._cache
        if cached is None:
            with self.db.read() as conn:
                row = conn.execute(select(self.table.c.value).where(self.table.c.id == self.KEY)).first()
            stored = self._open(orjson.loads(row[0]) if row and row[0] else {})
            # the environment is read when the cache fills, not on every call: every request
            # reads the settings, and scanning os.environ would cost more than the request
            cached = _env_overrides(merge(DEFAULTS, stored))
            self._cache = cached
        return cached

    def invalidate(self) -> None:
        self._cache = None

    def patch(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self.db.write() as conn:
            row = conn.execute(select(self.table.c.value).where(self.table.c.id == self.KEY)).first()
            stored = self._open(orjson.loads(row[0]) if row and row[0] else {})
            new = merge(merge(DEFAULTS, stored), changes)
            _validate(new)
            value = orjson.dumps(self._seal(new)).decode()
            if row is None:
                conn.execute(insert(self.table).values(id=self.KEY, value=value, created=now_str(),
                                                       updated=now_str()))
            else:
                conn.execute(update(self.table).where(self.table.c.id == self.KEY)
                             .values(value=value, updated=now_str()))
        self.invalidate()
        for fn in list(self.on_change):
            fn()
        return self.get()


def _env_overrides(settings: dict[str, Any]) -> dict[str, Any]:
    env = {k[len("KEEPBASE_SMTP_"):].lower(): v for k, v in os.environ.items() if k.startswith("KEEPBASE_SMTP_")}
    if not env:
        return settings
    out = copy.deepcopy(settings)
    smtp = out["smtp"]
    for key, value in env.items():
        if key == "port":
            smtp["port"] = int(value)
        elif key in ("tls", "enabled"):
            smtp[key] = value.lower() in ("1", "true", "yes", "on")
        elif key in ("host", "username", "password", "authmethod", "localname"):
            smtp[{"authmethod": "authMethod", "localname": "localName"}.get(key, key)] = value
    if "host" in env and "enabled" not in env:
        smtp["enabled"] = True
    return out

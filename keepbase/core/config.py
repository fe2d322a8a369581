"""The Config dataclass and its loader.

Every setting is declared once below (type, default, help). CLI flags and ``KEEPBASE_*``
environment names are derived from this list. Sources, later overriding earlier:
defaults → environment → flags. The result is frozen and passed down explicitly.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ENV_PREFIX = "KEEPBASE_"


class ConfigError(ValueError):
    """A missing or invalid configuration value; the message names the key."""


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Config:
    http: str = _opt("127.0.0.1:8090", "Address HOST:PORT the server listens on.")
    dir: str = _opt("kb_data", "Data folder (SQLite database, files, logs).")
    db: str = _opt("", "PostgreSQL URL (postgresql://...); empty means SQLite in the data folder.")
    sqlite_sync: str = _opt(
        "full",
        "SQLite synchronous mode: 'full' (acknowledged writes survive power loss) or 'normal' "
        "(faster, as PocketBase runs; a power cut may lose the last commits).",
    )
    pg_pool_size: int = _opt(10, "PostgreSQL connection pool size per process.")
    sqlite_readers: int = _opt(8, "Number of pooled SQLite reader connections.")
    statement_timeout_ms: int = _opt(10000, "Statement timeout for queries (both engines), in ms.")
    max_body_size: int = _opt(32 * 1024 * 1024, "Default request body limit in bytes (413 above it).")
    dev: bool = _opt(False, "Development mode: log SQL and errors verbosely.")
    realtime_max_clients: int = _opt(10000, "Most realtime (SSE) connections one node accepts (503 above it).")
    realtime_queue_size: int = _opt(
        512, "Messages buffered per realtime client; a client that falls this far behind is disconnected.")
    realtime_ping_interval: int = _opt(
        25, "Seconds between SSE keep-alive comments on an idle realtime stream (0 disables them).")
    realtime_idle_timeout: int = _opt(300, "Seconds without a delivered message before a realtime stream closes.")
    redis_url: str = _opt(
        "", "Redis URL (redis://, rediss:// or unix://): carries realtime events between nodes and holds the "
        "rate-limit counters, instead of PostgreSQL (or process memory on SQLite). Empty: no Redis.")
    shutdown_timeout: int = _opt(
        10, "Seconds in-flight requests get to finish after SIGTERM or Ctrl-C before the server stops anyway.")
    log_format: str = _opt("text", "Access log and server log format on stdout/stderr: 'text' or 'json'.")
    access_log: bool = _opt(True, "Write one access-log line per request on stdout.")
    metrics_token: str = _opt(
        "", "Bearer token that may read /api/metrics (Prometheus); superusers always may. Empty: superusers only.")
    redis_prefix: str = _opt(
        "keepbase", "Prefix of keepbase's Redis channel and keys; the database's own id follows it, so "
        "deployments on different databases never share events or counters.")
    mail_queue_size: int = _opt(
        1000, "Most auth mails (verification, password reset) waiting to be sent; more are dropped with a log line.")
    encryption_keys: str = _opt(
        "", "Keys of encrypted fields: comma-separated ID:KEY entries, KEY 32 bytes in standard base64 (an "
        "optional third part ID:KEY:INDEXKEY gives the blind-index key instead of deriving it). The first "
        "encrypts; the others still decrypt. Keep it secret (docs/security.md).")
    encryption_keys_file: str = _opt(
        "", "A file holding the encryption_keys value (instead of the environment). Keep it secret.")
    encryption_env: str = _opt(
        "", "The name of an environment variable holding a 32-character key that encrypts the secrets of the "
        "settings stored in the database (PocketBase's --encryptionEnv); the encryption_keys also do.")

    @property
    def host(self) -> str:
        return self.http.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.http.rsplit(":", 1)[1])

    @property
    def is_postgres(self) -> bool:
        return bool(self.db)

    def with_values(self, **values: Any) -> Config:
        return dataclasses.replace(self, **values)


def config_fields() -> list[dataclasses.Field[Any]]:
    return list(dataclasses.fields(Config))


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _coerce(name: str, ftype: Any, raw: Any) -> Any:
    tname = ftype if isinstance(ftype, str) else getattr(ftype, "__name__", str(ftype))
    try:
        if tname == "bool":
            if isinstance(raw, bool):
                return raw
            low = str(raw).strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if tname == "int":
            return int(raw)
        return str(raw)
    except ValueError as exc:
        raise ConfigError(f"invalid value for {name} ({env_name(name)}): {raw!r}") from exc


# the smallest value each integer setting accepts (a setting missing here accepts any integer)
_MINIMUM = {
    "pg_pool_size": 1, "sqlite_readers": 1, "statement_timeout_ms": 0, "max_body_size": 1,
    "realtime_max_clients": 1, "realtime_queue_size": 1, "realtime_ping_interval": 0,
    "realtime_idle_timeout": 1, "shutdown_timeout": 0, "mail_queue_size": 1,
}


def _bad(name: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"invalid value for {name} ({env_name(name)}): {value!r}, expected {expected}")


def _validate(cfg: Config) -> Config:
    host, sep, port = cfg.http.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host.strip("[]"):
        raise _bad("http", cfg.http, "HOST:PORT with a port from 0 to 65535")
    if cfg.sqlite_sync not in ("full", "normal"):
        raise _bad("sqlite_sync", cfg.sqlite_sync, "full or normal")
    if cfg.log_format not in ("text", "json"):
        raise _bad("log_format", cfg.log_format, "text or json")
    if not cfg.dir.strip():
        raise _bad("dir", cfg.dir, "a folder path")
    for name, low in _MINIMUM.items():
        if getattr(cfg, name) < low:
            raise _bad(name, getattr(cfg, name), f"an integer >= {low}")
    if cfg.db and not cfg.db.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        raise ConfigError(f"invalid value for db ({env_name('db')}): only postgresql:// URLs are supported")
    if cfg.redis_url and not cfg.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"invalid value for redis_url ({env_name('redis_url')}): expected a redis://, "
                          "rediss:// or unix:// URL")
    encryption_key_entries(cfg)
    return cfg


KeyEntry = tuple[str, bytes, bytes | None]  # (key id, 32-byte key, explicit 32-byte blind-index key)
_KEY_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def encryption_key_entries(cfg: Config) -> list[KeyEntry]:
    """The entries of ``encryption_keys`` (or of the file ``encryption_keys_file`` names), checked.
    A bad entry is a one-line ConfigError naming the setting, the entry and the key id; never the key."""
    import base64
    import binascii

    name = "encryption_keys"
    text = cfg.encryption_keys
    if cfg.encryption_keys_file:
        if cfg.encryption_keys:
            raise ConfigError(f"set only one of {env_name(name)} and {env_name('encryption_keys_file')}")
        name = "encryption_keys_file"
        try:
            text = open(cfg.encryption_keys_file, encoding="utf-8").read()  # noqa: SIM115
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"invalid value for {name} ({env_name(name)}): cannot read "
                              f"{cfg.encryption_keys_file!r}: {getattr(exc, 'strerror', None) or exc}") from None
    entries: list[KeyEntry] = []
    for n, raw in enumerate((p.strip() for p in text.replace("\n", ",").split(",")), 1):
        if not raw:
            continue
        where = f"invalid value for {name} ({env_name(name)}): entry {n}"
        parts = raw.split(":")
        kid = parts[0].strip()
        if len(parts) not in (2, 3) or not kid or len(kid) > 32 or not set(kid) <= _KEY_ID_CHARS:
            raise ConfigError(f"{where}: expected ID:KEY with an ID of 1-32 letters, digits, '_' or '-'")
        keys: list[bytes] = []
        for label, part in zip(("key", "blind-index key"), parts[1:], strict=False):
            try:
                key = base64.b64decode(part.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError(f"{where} (id {kid!r}): the {label} is not valid standard base64") from None
            if len(key) != 32:
                raise ConfigError(f"{where} (id {kid!r}): the {label} must be 32 bytes, not {len(key)}")
            keys.append(key)
        if any(e[0] == kid for e in entries):
            raise ConfigError(f"{where}: the key id {kid!r} is used twice")
        entries.append((kid, keys[0], keys[1] if len(keys) > 1 else None))
    return entries


def load_config(
    flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Build a Config from defaults, then ``KEEPBASE_*`` environment, then explicit flags."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in config_fields():
        if env_name(f.name) in env:
            values[f.name] = _coerce(f.name, f.type, env[env_name(f.name)])
    for key, raw in (flags or {}).items():
        if raw is None:
            continue
        ftype = next((f.type for f in config_fields() if f.name == key), None)
        if ftype is None:
            raise ConfigError(f"unknown configuration key {key!r}")
        values[key] = _coerce(key, ftype, raw)
    return _validate(Config(**values))

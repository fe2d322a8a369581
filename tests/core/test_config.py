"""Config: declared once, defaults → KEEPBASE_* environment → flags, errors name the key."""

from __future__ import annotations

import dataclasses

import pytest

from keepbase.core.config import Config, ConfigError, config_fields, env_name, load_config


def test_defaults_without_env_or_flags() -> None:
    cfg = load_config({}, {})
    assert cfg == Config()
    assert cfg.http == "127.0.0.1:8090"
    assert cfg.dir == "kb_data"
    assert cfg.db == ""
    assert cfg.sqlite_sync == "full"
    assert cfg.max_body_size == 32 * 1024 * 1024
    assert cfg.dev is False
    assert cfg.host == "127.0.0.1" and cfg.port == 8090
    assert cfg.is_postgres is False


def test_config_is_frozen() -> None:
    cfg = load_config({}, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.dir = "elsewhere"  # type: ignore[misc]


def test_every_field_is_documented_and_has_an_env_name() -> None:
    fields = config_fields()
    assert len(fields) >= 8
    for f in fields:
        assert f.metadata.get("help"), f"Config.{f.name} has no help text"
        assert env_name(f.name) == "KEEPBASE_" + f.name.upper()


def test_env_overrides_defaults() -> None:
    env = {
        "KEEPBASE_HTTP": "0.0.0.0:9000",
        "KEEPBASE_DIR": "/tmp/somewhere",
        "KEEPBASE_SQLITE_SYNC": "normal",
        "KEEPBASE_PG_POOL_SIZE": "3",
        "KEEPBASE_MAX_BODY_SIZE": "1024",
        "KEEPBASE_DEV": "true",
        "KEEPBASE_DB": "postgresql://u:p@localhost/db",
    }
    cfg = load_config({}, env)
    assert cfg.http == "0.0.0.0:9000" and cfg.port == 9000
    assert cfg.dir == "/tmp/somewhere"
    assert cfg.sqlite_sync == "normal"
    assert cfg.pg_pool_size == 3 and isinstance(cfg.pg_pool_size, int)
    assert cfg.max_body_size == 1024
    assert cfg.dev is True
    assert cfg.is_postgres


def test_unrelated_env_is_ignored() -> None:
    cfg = load_config({}, {"DIR": "x", "KEEPBASE": "y", "keepbase_dir": "z", "KEEPBASE_NOPE": "1"})
    assert cfg == Config()


@pytest.mark.parametrize(("raw", "expected"), [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True), ("on", True),
    ("0", False), ("false", False), ("no", False), ("off", False), ("", False),
])
def test_bool_env_values(raw: str, expected: bool) -> None:
    assert load_config({}, {"KEEPBASE_DEV": raw}).dev is expected


def test_flags_override_env() -> None:
    env = {"KEEPBASE_DIR": "/from/env", "KEEPBASE_SQLITE_SYNC": "normal", "KEEPBASE_DEV": "1"}
    cfg = load_config({"dir": "/from/flag", "sqlite_sync": "full", "dev": False}, env)
    assert cfg.dir == "/from/flag"
    assert cfg.sqlite_sync == "full"
    assert cfg.dev is False


def test_none_flags_do_not_override() -> None:
    """Click passes None for options that were not given: the env value must survive."""
    cfg = load_config({"dir": None, "http": None}, {"KEEPBASE_DIR": "/from/env"})
    assert cfg.dir == "/from/env"
    assert cfg.http == "127.0.0.1:8090"


def test_flags_are_coerced() -> None:
    cfg = load_config({"pg_pool_size": "7", "dev": "yes"}, {})
    assert cfg.pg_pool_size == 7
    assert cfg.dev is True


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEPBASE_STATEMENT_TIMEOUT_MS", "1234")
    assert load_config().statement_timeout_ms == 1234


@pytest.mark.parametrize(("env", "key"), [
    ({"KEEPBASE_PG_POOL_SIZE": "many"}, "pg_pool_size"),
    ({"KEEPBASE_SQLITE_READERS": "1.5"}, "sqlite_readers"),
    ({"KEEPBASE_MAX_BODY_SIZE": "32MB"}, "max_body_size"),
    ({"KEEPBASE_DEV": "maybe"}, "dev"),
    ({"KEEPBASE_SQLITE_SYNC": "off"}, "sqlite_sync"),
    ({"KEEPBASE_HTTP": "localhost"}, "http"),
    ({"KEEPBASE_HTTP": "localhost:port"}, "http"),
    ({"KEEPBASE_DB": "mysql://x/y"}, "db"),
])
def test_invalid_env_value_names_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({}, env)
    assert key in str(info.value)


def test_invalid_flag_value_names_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"statement_timeout_ms": "soon"}, {})
    assert "statement_timeout_ms" in str(info.value)


def test_unknown_flag_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"no_such_key": 1}, {})
    assert "no_such_key" in str(info.value)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_postgres_url_forms_accepted() -> None:
    for url in ("postgresql://a/b", "postgres://a/b", "postgresql+psycopg://a/b"):
        assert load_config({"db": url}, {}).db == url

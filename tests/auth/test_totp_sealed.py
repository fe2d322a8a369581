"""TOTP secrets at rest: sealed when an encryption key is configured (bound to their record), opened
for verification, sealed at start-up when stored in clear, and a start without the key is one line."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from keepbase.app import App, create_app
from keepbase.core.errors import StartupError
from keepbase.security.keyring import KeyringError
from tests.auth.test_totp import T0, enable_totp, password_step, signed_in_user, totp_step

KEY = "k1:" + base64.b64encode(b"\x01" * 32).decode()


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"encryption_keys": KEY}


def _stored(app: App) -> list[Any]:
    with app.db.read() as conn:
        return list(conn.execute(select(app.totp.table)).all())


async def test_secrets_are_sealed_and_still_verify(app: App, client: httpx.AsyncClient) -> None:
    _rid, headers = await signed_in_user(client)
    totp, _codes = await enable_totp(app, client, headers)
    [row] = _stored(app)
    assert row.secret.startswith("kb1.k1.") and totp.secret not in row.secret
    app.totp.clock = lambda: T0 + 30
    r = await totp_step(client, await password_step(client), totp.at(T0 + 30))
    assert r.status_code == 200, r.text
    # a sealed secret copied onto another record does not open there
    other = dict(row._mapping, recordRef="someoneelse0000")
    with app.db.write() as conn:
        conn.execute(app.totp.table.insert().values(**other))
    [copy] = [r for r in _stored(app) if r.recordRef == "someoneelse0000"]
    with pytest.raises(KeyringError, match="fails authentication"):
        app.totp._open(copy)


async def test_clear_secrets_are_sealed_at_start_and_a_start_without_the_key_fails(
        app: App, client: httpx.AsyncClient) -> None:
    _rid, headers = await signed_in_user(client)
    totp, _codes = await enable_totp(app, client, headers)
    with app.db.write() as conn:  # as stored before a key was configured
        conn.execute(update(app.totp.table).values(secret=totp.secret))
    config = app.config
    app.close()
    again = create_app(config)
    try:
        [row] = _stored(again)
        assert row.secret.startswith("kb1.k1.")
        assert again.totp._open(row) == totp.secret
    finally:
        again.close()
    with pytest.raises(StartupError, match="no encryption key is configured"):
        create_app(config.with_values(encryption_keys=""))

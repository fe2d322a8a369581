"""Settings secrets sealed with the encryption keys (docs/security.md), on SQLite and PostgreSQL:
the raw ``_params`` row holds no plaintext secret; GET /api/settings never returns one; after a
restart with the key, mail still goes out with the SMTP password; a secret stored in clear is
sealed at start-up; without the key, start-up stops with one line."""

from __future__ import annotations

import base64
import dataclasses
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select, update

from keepbase.app import App, create_app
from keepbase.core.errors import StartupError
from tests.auth.conftest import Mailbox
from tests.conftest import SU_EMAIL, SU_PASSWORD

K1 = base64.b64encode(bytes(range(32))).decode()
K2 = base64.b64encode(bytes(range(40, 72))).decode()
SMTP_PASSWORD, S3_SECRET, BACKUPS_SECRET = "smtp-Pw-51937", "s3-Secret-80412", "bk-Secret-66210"


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"encryption_keys": f"k1:{K1}"}


class _Logins:
    def __init__(self) -> None:
        self.seen: list[tuple[bytes, bytes]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.seen.append((data.login, data.password))
        return AuthResult(success=data.password == SMTP_PASSWORD.encode())


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, _Logins]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    box, logins = Mailbox(port), _Logins()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=logins, auth_require_tls=False)
    controller.start()
    try:
        yield box, logins
    finally:
        controller.stop()


def _raw(app: App) -> str:
    t = app.collections.params
    with app.db.read() as conn:
        return str(conn.execute(select(t.c.value).where(t.c.id == "settings")).scalar_one())


async def _su(client: httpx.AsyncClient) -> dict[str, str]:
    r = await client.post("/api/collections/_superusers/auth-with-password",
                          json={"identity": SU_EMAIL, "password": SU_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": r.json()["token"]}


async def test_secrets_sealed_hidden_and_used_after_restart(app: App, client: httpx.AsyncClient,
                                                            su_headers: dict[str, str],
                                                            smtp: tuple[Mailbox, _Logins]) -> None:
    box, logins = smtp
    r = await client.patch("/api/settings", headers=su_headers, json={
        "smtp": {"enabled": True, "host": "127.0.0.1", "port": box.port, "username": "mailer",
                 "password": SMTP_PASSWORD, "tls": False},
        "s3": {"accessKey": "AK", "secret": S3_SECRET}, "backups": {"s3": {"secret": BACKUPS_SECRET}}})
    assert r.status_code == 200, r.text
    r2 = await client.get("/api/settings", headers=su_headers)
    for answer in (r.text, r2.text):
        assert not any(s in answer for s in (SMTP_PASSWORD, S3_SECRET, BACKUPS_SECRET))
    assert "password" not in r2.json()["smtp"] and "secret" not in r2.json()["s3"]
    raw = _raw(app)
    assert not any(s in raw for s in (SMTP_PASSWORD, S3_SECRET, BACKUPS_SECRET))
    stored = orjson.loads(raw)
    assert all(v.startswith("kb1.k1.") for v in (stored["smtp"]["password"], stored["s3"]["secret"],
                                                  stored["backups"]["s3"]["secret"]))
    # an unrelated change keeps the (write-only) secrets
    r = await client.patch("/api/settings", headers=su_headers, json={"meta": {"appName": "Renamed"}})
    assert r.status_code == 200 and app.settings.get()["smtp"]["password"] == SMTP_PASSWORD

    again = create_app(app.config)  # a restart with the key
    try:
        assert again.settings.get()["s3"]["secret"] == S3_SECRET
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=again.asgi), base_url="http://t") as c2:
            r = await c2.post("/api/settings/test/email", headers=await _su(c2),
                              json={"email": "to@example.com", "template": "verification"})
            assert r.status_code == 204, r.text
        box.wait(1)
        assert logins.seen == [(b"mailer", SMTP_PASSWORD.encode())]
    finally:
        again.close()


def test_clear_secrets_are_sealed_at_start_and_the_key_is_required(app: App) -> None:
    t = app.collections.params
    app.settings.patch({"smtp": {"password": SMTP_PASSWORD}})
    value = orjson.loads(_raw(app))
    value["smtp"]["password"] = SMTP_PASSWORD  # as a keepbase without keys stored it
    value["s3"]["secret"] = orjson.loads(_raw(app))["smtp"]["password"]  # a sealed value moved elsewhere
    with app.db.write() as conn:
        conn.execute(update(t).where(t.c.id == "settings").values(value=orjson.dumps(value).decode()))
    with pytest.raises(StartupError, match=r"s3\.secret cannot be decrypted"):
        create_app(app.config)
    value["s3"]["secret"] = ""
    with app.db.write() as conn:
        conn.execute(update(t).where(t.c.id == "settings").values(value=orjson.dumps(value).decode()))
    # a new first key: the clear secret and the one under k1 are both sealed under k2 at start-up
    rotated = create_app(dataclasses.replace(app.config, encryption_keys=f"k2:{K2},k1:{K1}"))
    try:
        assert rotated.settings.get()["smtp"]["password"] == SMTP_PASSWORD
    finally:
        rotated.close()
    raw = _raw(app)
    assert SMTP_PASSWORD not in raw and orjson.loads(raw)["smtp"]["password"].startswith("kb1.k2.")
    with pytest.raises(StartupError) as exc:
        create_app(dataclasses.replace(app.config, encryption_keys=""))
    assert "\n" not in str(exc.value) and "smtp.password is encrypted (key 'k2')" in str(exc.value)
    assert "configure that key in KEEPBASE_ENCRYPTION_KEYS" in str(exc.value)


def test_encryption_env_key_as_pocketbase(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--encryptionEnv VAR``: the 32 characters in VAR seal the settings' secrets (first, before
    the field keys), and alone suffice to open them after a restart."""
    app.settings.patch({"s3": {"secret": S3_SECRET}})  # sealed under k1
    monkeypatch.setenv("KB_TEST_SETTINGS_KEY", "0123456789abcdef0123456789ABCDEF")
    for keys in (f"k1:{K1}", ""):  # the second start has only the --encryptionEnv key
        kb = create_app(dataclasses.replace(app.config, encryption_env="KB_TEST_SETTINGS_KEY", encryption_keys=keys))
        try:
            assert kb.settings.get()["s3"]["secret"] == S3_SECRET
        finally:
            kb.close()
        stored = orjson.loads(_raw(app))["s3"]["secret"]
        assert stored.startswith("kb1.encryptionEnv.") and S3_SECRET not in _raw(app)
    monkeypatch.setenv("KB_TEST_SETTINGS_KEY", "too-short")
    with pytest.raises(StartupError, match="must hold a 32-character key, not 9 bytes"):
        create_app(dataclasses.replace(app.config, encryption_env="KB_TEST_SETTINGS_KEY"))
    with pytest.raises(StartupError, match=r"s3\.secret is encrypted \(key 'encryptionEnv'\).*--encryptionEnv VAR"):
        create_app(dataclasses.replace(app.config, encryption_keys=""))


CLIENT_SECRET = "oauth-Client-Secret-31415"


def _collection_options_raw(app: App, name: str) -> str:
    t = app.collections.table
    with app.db.read() as conn:
        return str(conn.execute(select(t.c.options).where(t.c.name == name)).scalar_one())


async def test_oauth2_client_secrets_sealed_in_collection_options(app: App, client: httpx.AsyncClient,
                                                                   su_headers: dict[str, str]) -> None:
    r = await client.patch("/api/collections/users", headers=su_headers, json={"oauth2": {
        "enabled": True, "providers": [{"name": "gitlab", "clientId": "cid-1", "clientSecret": CLIENT_SECRET}]}})
    assert r.status_code == 200, r.text
    r2 = await client.get("/api/collections/users", headers=su_headers)
    assert CLIENT_SECRET not in r.text + r2.text and r2.json()["oauth2"]["providers"][0]["clientId"] == "cid-1"
    raw = _collection_options_raw(app, "users")
    assert CLIENT_SECRET not in raw
    assert orjson.loads(raw)["oauth2"]["providers"][0]["clientSecret"].startswith("kb1.k1.")
    # an unrelated change keeps it sealed; in memory (for the provider) it is in clear
    r = await client.patch("/api/collections/users", headers=su_headers, json={"listRule": ""})
    assert r.status_code == 200 and CLIENT_SECRET not in _collection_options_raw(app, "users")
    assert app.collections.get("users").options["oauth2"]["providers"][0]["clientSecret"] == CLIENT_SECRET
    # stored in clear (an older keepbase, or before keys): sealed at the next start, opened after it
    t = app.collections.table
    options = orjson.loads(raw)
    options["oauth2"]["providers"][0]["clientSecret"] = CLIENT_SECRET
    with app.db.write() as conn:
        conn.execute(update(t).where(t.c.name == "users").values(options=orjson.dumps(options).decode()))
    again = create_app(app.config)
    try:
        assert again.collections.get("users").options["oauth2"]["providers"][0]["clientSecret"] == CLIENT_SECRET
    finally:
        again.close()
    assert CLIENT_SECRET not in _collection_options_raw(app, "users")
    with pytest.raises(StartupError, match="client secret of 'gitlab' in collection 'users' is encrypted"):
        create_app(dataclasses.replace(app.config, encryption_keys=""))

"""Key rotation: the ``keys_rotate`` operation on both engines (batches, resumable, idempotent, then
the old key removed), ``keepbase keys rotate`` run directly, and online through a running server's
writer (SQLite, control socket)."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from keepbase.app import App, create_app
from keepbase.cli import main
from keepbase.cli.operations import OPERATIONS
from keepbase.core.config import Config
from keepbase.core.types import AuthInfo, RequestInfo
from keepbase.store.records import ListParams
from tests.server_process import ServerProcess, run_cli

K1 = base64.b64encode(bytes(range(32))).decode()
K2 = base64.b64encode(bytes(range(50, 82))).decode()


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"encryption_keys": f"k1:{K1}"}


def _su(app: App) -> RequestInfo:
    c = app.collections.get("_superusers")
    return RequestInfo(auth=AuthInfo(c.id, c.name, {"id": ""}))


def _seed(app: App, n: int) -> None:
    for name in ("vault", "diary"):
        app.collections.create({"name": name, "listRule": "", "fields": [
            {"name": "secret", "type": "text", "encrypted": True},
            {"name": "data", "type": "json", "encrypted": True}, {"name": "plain", "type": "text"}]})
        c = app.collections.get(name)
        for i in range(n):
            app.records.create_record(c, {"secret": f"{name}-{i}", "data": {"i": i}, "plain": str(i)}, _su(app))


def _key_ids(app: App, name: str) -> list[str]:
    c = app.collections.get(name)
    table = app.records.table(c)
    with app.db.read() as conn:
        return sorted(row[0].split(".")[1] for row in conn.execute(select(table.c.secret)).all())


def _rotate(app: App, batch: int) -> dict[str, Any]:
    code, message = OPERATIONS["keys_rotate"](app, {"batch": batch, "seconds": 0})
    assert code == 0, message
    return dict(orjson.loads(message))


def _items(app: App, name: str, flt: str = "") -> list[dict[str, Any]]:
    c = app.collections.get(name)
    items = app.records.list_records(c, ListParams(per_page=100, filter=flt), RequestInfo()).items
    return [orjson.loads(orjson.dumps(item)) for item in items]  # json values are orjson fragments


def _all_plain(app: App, name: str) -> list[tuple[str, Any]]:
    return sorted((item["secret"], item["data"]) for item in _items(app, name))


def test_rotation_in_batches_then_the_old_key_can_go(app: App) -> None:
    _seed(app, 4)
    rotating = create_app(dataclasses.replace(app.config, encryption_keys=f"k2:{K2},k1:{K1}"))
    try:
        assert _rotate(rotating, 0) == {"rotated": 0, "remaining": 8, "key": "k2"}
        first = _rotate(rotating, 3)  # then "interrupted"
        assert (first["rotated"], first["remaining"]) == (3, 5)
        assert _key_ids(rotating, "vault") == ["k1", "k2", "k2", "k2"]
        # mid-rotation, equality still finds values under either key
        for i in range(4):
            assert [r["data"] for r in _items(rotating, "vault", f"secret = 'vault-{i}'")] == [{"i": i}]
        assert _rotate(rotating, 100) == {"rotated": 5, "remaining": 0, "key": "k2"}  # resumes
        before = {name: _key_ids(rotating, name) for name in ("vault", "diary")}
        assert before == {"vault": ["k2"] * 4, "diary": ["k2"] * 4}
        table = rotating.records.table(rotating.collections.get("vault"))
        with rotating.db.read() as conn:
            stored = conn.execute(select(table.c.secret).order_by(table.c.id)).scalars().all()
        assert _rotate(rotating, 100) == {"rotated": 0, "remaining": 0, "key": "k2"}  # idempotent
        with rotating.db.read() as conn:
            assert conn.execute(select(table.c.secret).order_by(table.c.id)).scalars().all() == stored
    finally:
        rotating.close()
    new_only = create_app(dataclasses.replace(app.config, encryption_keys=f"k2:{K2}"))
    try:
        for name in ("vault", "diary"):
            assert _all_plain(new_only, name) == sorted((f"{name}-{i}", {"i": i}) for i in range(4))
        assert [r["plain"] for r in _items(new_only, "diary", "secret = 'diary-2'")] == ["2"]
    finally:
        new_only.close()


def test_the_command_rotates_with_a_progress_bar(app: App) -> None:
    _seed(app, 3)
    args = ["keys", "rotate", "--batch", "2", "--dir", app.config.dir]
    if app.config.db:
        args += ["--db", app.config.db]
    runner = CliRunner()
    result = runner.invoke(main, args, env={"KEEPBASE_ENCRYPTION_KEYS": f"k2:{K2},k1:{K1}"})
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 6 record(s)" in result.output and "'k2'" in result.output
    assert "6/6" in result.output  # the progress bar's last state
    assert _key_ids(app, "vault") == ["k2"] * 3
    again = runner.invoke(main, args, env={"KEEPBASE_ENCRYPTION_KEYS": f"k2:{K2},k1:{K1}"})
    assert again.exit_code == 0 and "Nothing to do" in again.output
    missing = runner.invoke(main, args, env={"KEEPBASE_ENCRYPTION_KEYS": f"k1:{K2[:-2]}"})
    assert missing.exit_code == 2 and "KEEPBASE_ENCRYPTION_KEYS" in missing.output and K2[:-2] not in missing.output


def test_online_rotation_goes_through_the_running_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    seeded = create_app(Config(dir=str(data), encryption_keys=f"k1:{K1}", access_log=False))
    try:
        _seed(seeded, 5)
    finally:
        seeded.close()
    env = {"KEEPBASE_ENCRYPTION_KEYS": f"k2:{K2},k1:{K1}"}
    server = ServerProcess.start(tmp_path, "--dir", str(data), env=env).wait_ready()
    try:
        code, output = run_cli("keys", "rotate", "--batch", "4", "--dir", str(data), env=env)
        assert code == 0, output
        assert "Re-encrypted 10 record(s)" in output
        assert "control: keys_rotate done" in server.output()  # the server's writer did the writes
    finally:
        assert server.stop() == 0
    after = create_app(Config(dir=str(data), encryption_keys=f"k2:{K2}", access_log=False))  # k1 no longer needed
    try:
        assert _key_ids(after, "diary") == ["k2"] * 5
        assert _all_plain(after, "diary") == sorted((f"diary-{i}", {"i": i}) for i in range(5))
    finally:
        after.close()

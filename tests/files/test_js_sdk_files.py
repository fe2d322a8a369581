"""The official JS SDK uploads files and reads them back (``tests/js/sdk_files.test.mjs``),
against keepbase on both engines and, as an oracle, the real PocketBase binary.

Servers, skips and requirements are those of ``tests/api/test_js_sdk.py``.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.api.test_js_sdk import (  # noqa: F401 - fixtures used by name
    EMAIL,
    JS_DIR,
    NODE,
    NODE_TIMEOUT,
    PASSWORD,
    Server,
    _require_node_modules,
    server,
)

JS_TEST = JS_DIR / "sdk_files.test.mjs"

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
]


def test_js_sdk_files(server: Server) -> None:  # noqa: F811 - the imported fixture
    assert NODE is not None
    env = dict(os.environ)
    env.update(KB_URL=server.url, KB_EMAIL=EMAIL, KB_PASSWORD=PASSWORD, NO_COLOR="1")
    env.pop("NODE_OPTIONS", None)
    try:
        proc = subprocess.run([NODE, "--test", JS_TEST.name], cwd=JS_DIR, env=env, capture_output=True, text=True,
                              timeout=NODE_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"node --test timed out against {server.name}\n--- stdout ---\n{exc.stdout}\n"
                    f"--- stderr ---\n{exc.stderr}\n--- server log ---\n{server.log()}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"JS SDK files test failed against {server.name} (node exit {proc.returncode})\n"
                    f"--- node stdout ---\n{proc.stdout}\n--- node stderr ---\n{proc.stderr}\n"
                    f"--- server log (tail) ---\n{server.log()}", pytrace=False)

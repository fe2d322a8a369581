"""The official JS SDK uploads a file and reads it back (``pb.files.getURL``) against a real server
(SQLite, PostgreSQL, and the real PocketBase as an oracle). See tests/js_harness.py."""

from __future__ import annotations

from tests.js_harness import (  # noqa: F401 - fixtures used by name
    NODE_MARKS,
    Server,
    _require_node_modules,
    run_node,
    server,
)

pytestmark = NODE_MARKS


def test_js_sdk_files(server: Server) -> None:  # noqa: F811 - the imported fixture
    run_node(server, "sdk_files.test.mjs")

"""Drive the official PocketBase JS SDK realtime API (``subscribe``/``unsubscribe``) against a real
server (SQLite, PostgreSQL, and the real PocketBase as an oracle). See tests/js_harness.py."""

from __future__ import annotations

from tests.js_harness import (  # noqa: F401 - fixtures used by name
    NODE_MARKS,
    Server,
    _require_node_modules,
    run_node,
    server,
)

pytestmark = NODE_MARKS


def test_js_sdk_realtime(server: Server) -> None:  # noqa: F811 - the imported fixture
    # Node 20 has EventSource only behind this flag
    run_node(server, "sdk_realtime.test.mjs", "--experimental-eventsource")

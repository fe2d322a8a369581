"""Drive the official PocketBase JS SDK (npm ``pocketbase``) CRUD calls against a real server.

For every engine a server process is started on a free port with a fresh data directory (and a
fresh PostgreSQL database for ``postgres``), a superuser is created through the CLI, and
``node --test tests/js/sdk_crud.test.mjs`` runs against it. The ``pocketbase`` param runs the same
JS test against the real PocketBase binary as an oracle. See tests/js_harness.py.
"""

from __future__ import annotations

from tests.js_harness import (  # noqa: F401 - fixtures used by name
    NODE_MARKS,
    Server,
    _require_node_modules,
    run_node,
    server,
)

pytestmark = NODE_MARKS


def test_js_sdk_crud(server: Server) -> None:  # noqa: F811 - the imported fixture
    run_node(server, "sdk_crud.test.mjs")

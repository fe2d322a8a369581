"""SSE framing as PocketBase writes it: ``id:``, ``event:``, ``data:`` without a space, blank line.

``id`` is always the client id: the JS SDK reads its ``clientId`` from ``lastEventId``.
"""

from __future__ import annotations

PING = b":ping\n\n"  # a comment line: every EventSource ignores it; keeps proxies from timing out


def frame(client_id: str, event: str, data: bytes) -> bytes:
    # an event name never contains a newline (topics are validated), data is compact JSON
    return b"id:" + client_id.encode() + b"\nevent:" + event.encode() + b"\ndata:" + data + b"\n\n"

"""SSE framing as PocketBase writes it: ``id:``, ``event:``, ``data:`` without a space, blank line.

``id`` is always the client id: the JS SDK reads its ``clientId`` from ``lastEventId``.
"""

from __future__ import annotations

PING = b":ping\n\n"  # a comment line: every EventSource ignores it; keeps proxies from timing out


def frame(client_id: str, event: str, data: bytes) -> bytes:
    # an event name never contains a newline (topics are validated), data is compact JSON
    return frame_head(client_id) + frame_tail(event, data)


def frame_head(client_id: str) -> bytes:
    """What every frame to one client starts with."""
    return b"id:" + client_id.encode() + b"\n"


def frame_tail(event: str, data: bytes) -> bytes:
    """The rest of a frame, shared by every client that gets the same event under the same name."""
    return b"event:" + event.encode() + b"\ndata:" + data + b"\n\n"

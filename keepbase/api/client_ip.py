"""The client's "real IP": the TCP peer, unless ``settings.trustedProxy.headers`` names headers.

Then the last value of the first of those headers present is split on commas and the rightmost
valid IP is used (``useLeftmostIP`` → the leftmost), as PocketBase does. Only list headers your
proxy overwrites: a client can send any header it likes.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from starlette.types import Scope


def client_ip(scope: Scope, settings: dict[str, Any]) -> str:
    proxy = settings.get("trustedProxy") or {}
    headers = scope.get("headers", [])
    for name in proxy.get("headers") or []:
        wanted = str(name).lower().encode("latin-1")
        values = [v for k, v in headers if k == wanted]
        if not values or not values[-1]:
            continue
        candidates = [p.strip() for p in values[-1].decode("latin-1").split(",")]
        for candidate in candidates if proxy.get("useLeftmostIP") else reversed(candidates):
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                continue
    client = scope.get("client")
    return str(client[0]) if client else ""


def ip_in(ip: str, networks: list[Any]) -> bool:
    """Whether ``ip`` equals or falls inside one of ``networks`` (IPs or CIDRs)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for net in networks:
        try:
            if addr in ipaddress.ip_network(str(net), strict=False):
                return True
        except ValueError:
            continue
    return False

"""Plain data passed between layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AuthInfo:
    """The authenticated record behind a request (``@request.auth.*``).

    ``record`` holds the stored values of the auth record (all fields, incl. ``id``).
    """

    collection_id: str
    collection_name: str
    record: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.record.get("id", ""))

    @property
    def is_superuser(self) -> bool:
        return self.collection_name == "_superusers"


@dataclass
class RequestInfo:
    """What a rule may see of a request (``@request.*``); built by ``api/deps.py``, or by hand."""

    auth: AuthInfo | None = None
    method: str = "GET"
    context: str = "default"
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # snake_cased lower-case names
    body: dict[str, Any] = field(default_factory=dict)
    ip: str = ""  # the client's address (trusted-proxy aware); for audit rows, never for rules

    @property
    def is_superuser(self) -> bool:
        return self.auth is not None and self.auth.is_superuser

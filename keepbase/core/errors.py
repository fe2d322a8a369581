"""The one error tree. Services raise these; only ``api/errors.py`` renders them.

    ApiError(status, message, data)
     ├── BadRequestError        400  (generic "Something went wrong ..." by default)
     │    └── ValidationError   400  data = {field: FieldError | nested dict}
     ├── UnauthorizedError      401
     ├── ForbiddenError         403
     ├── NotFoundError          404
     ├── TooLargeError          413
     ├── TooManyRequestsError   429
     ├── InsufficientStorageError  507  (the data folder or file storage is full)
     └── ServiceUnavailableError   503
          ├── StorageUnavailableError  503  (the storage refuses writes: read-only, failing disk)
          └── DatabaseUnavailableError 503  (the database cannot be reached; sent with Retry-After)

    StartupError (not an ApiError): the app cannot start; one line for the operator

Every message is safe to show to a client. Driver errors are translated at the store
boundary and chained with ``from`` so the real cause stays in logs only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_MESSAGES = {
    400: "Something went wrong while processing your request.",
    401: "Missing or invalid authentication.",
    403: "You are not allowed to perform this request.",
    404: "The requested resource wasn't found.",
    413: "Request entity too large.",
    429: "Too Many Requests.",
    500: "Something went wrong while processing your request.",
}


def normalize_message(message: str) -> str:
    """PocketBase's sentence normalisation: trim, capitalise, end with punctuation."""
    msg = message.strip()
    if not msg:
        return msg
    msg = msg[0].upper() + msg[1:]
    if msg[-1] not in ".?!":
        msg += "."
    return msg


@dataclass(frozen=True)
class FieldError:
    """One validation failure for one field: ``{code, message, params?}``."""

    code: str
    message: str
    params: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": normalize_message(self.message)}
        if self.params is not None:
            out["params"] = dict(sorted(self.params.items()))
        return out


ErrorData = dict[str, Any]  # field -> FieldError | nested ErrorData


def render_data(data: ErrorData) -> dict[str, Any]:
    """Keys sorted at every level, as PocketBase (Go maps) emits them."""
    out: dict[str, Any] = {}
    for key, value in sorted(data.items()):
        if isinstance(value, FieldError):
            out[key] = value.to_dict()
        elif isinstance(value, dict):
            out[key] = render_data(value)
        else:
            out[key] = {"code": "validation_invalid_value", "message": "Invalid value."}
    return out


@dataclass
class ApiError(Exception):
    status: int = 400
    message: str = ""
    data: ErrorData = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.message:
            self.message = DEFAULT_MESSAGES.get(self.status, DEFAULT_MESSAGES[400])
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": render_data(self.data),
            "message": normalize_message(self.message),
            "status": self.status,
        }


class BadRequestError(ApiError):
    def __init__(self, message: str = "", data: ErrorData | None = None) -> None:
        super().__init__(400, message, data or {})


class ValidationError(BadRequestError):
    """A 400 whose ``data`` names the offending fields."""


class UnauthorizedError(ApiError):
    def __init__(self, message: str = "") -> None:
        super().__init__(401, message, {})


class ForbiddenError(ApiError):
    def __init__(self, message: str = "") -> None:
        super().__init__(403, message, {})


class NotFoundError(ApiError):
    def __init__(self, message: str = "") -> None:
        super().__init__(404, message, {})


class TooLargeError(ApiError):
    def __init__(self, message: str = "") -> None:
        super().__init__(413, message, {})


class TooManyRequestsError(ApiError):
    def __init__(self, message: str = "") -> None:
        super().__init__(429, message, {})


class ServiceUnavailableError(ApiError):
    """A dependency the request needs (e.g. the shared rate-limit store) cannot be reached."""

    def __init__(self, message: str = "The service is temporarily unavailable. Try again later.") -> None:
        super().__init__(503, message, {})


REQUIRED = FieldError("validation_required", "Cannot be blank.")


class InsufficientStorageError(ApiError):
    """507: a write needed space the data folder (or file storage) does not have; nothing of the
    request was saved, and the same request may succeed once space is freed. PocketBase has no
    such answer (docs/compatibility.md)."""

    def __init__(self, message: str = "The server is out of storage space; nothing was saved. "
                                       "Try again later.") -> None:
        super().__init__(507, message, {})


class StorageUnavailableError(ServiceUnavailableError):
    """503: the data folder (or file storage) refuses writes (mounted read-only, a failing disk);
    nothing of the request was saved. Reads keep working."""

    def __init__(self, message: str = "The server cannot write to its storage right now (read-only or "
                                       "failing disk); nothing was saved. Try again later.") -> None:
        super().__init__(message)


class StartupError(Exception):
    """The app cannot start; ``str()`` is one line for the operator naming the path and the fix,
    e.g. ``the data folder /srv/kb is read-only; remount it read-write or choose another --dir``.
    The original exception is chained (``__cause__``)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class DatabaseUnavailableError(ServiceUnavailableError):
    """503: the database cannot be reached (connection refused or lost, no pooled connection free
    in time); nothing of the request was saved. ``retry_after`` (seconds) is sent as ``Retry-After``.
    ``store.db.translate_errors`` raises it; ``Database.available`` tells whether it is happening."""

    retry_after: int = 5

    def __init__(self, message: str = "The database is temporarily unavailable. Try again later.") -> None:
        super().__init__(message)

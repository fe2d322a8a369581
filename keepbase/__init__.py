"""keepbase: a complete, secure backend that speaks the PocketBase HTTP API.

Public surface: ``App`` (built by ``create_app``; its decorators are the hooks API),
``Config``, the hook event types and the error classes.
"""

from __future__ import annotations

from .app import App, HooksError, create_app
from .core.config import Config, load_config
from .core.errors import (
    ApiError,
    BadRequestError,
    DatabaseUnavailableError,
    FieldError,
    ForbiddenError,
    InsufficientStorageError,
    NotFoundError,
    ServiceUnavailableError,
    StartupError,
    StorageUnavailableError,
    TooLargeError,
    TooManyRequestsError,
    UnauthorizedError,
    ValidationError,
)
from .core.events import RecordAuthEvent, RecordEvent

__all__ = [
    "ApiError",
    "App",
    "BadRequestError",
    "Config",
    "DatabaseUnavailableError",
    "FieldError",
    "ForbiddenError",
    "HooksError",
    "InsufficientStorageError",
    "NotFoundError",
    "RecordAuthEvent",
    "RecordEvent",
    "ServiceUnavailableError",
    "StartupError",
    "StorageUnavailableError",
    "TooLargeError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "ValidationError",
    "create_app",
    "load_config",
]

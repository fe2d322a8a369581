"""keepbase: a complete, secure backend that speaks the PocketBase HTTP API.

Public surface: ``App`` (built by ``create_app``), ``Config`` and the error classes.
"""

from __future__ import annotations

from .core.config import Config, load_config
from .core.errors import (
    ApiError,
    BadRequestError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    ValidationError,
)

__all__ = [
    "ApiError",
    "BadRequestError",
    "Config",
    "FieldError",
    "ForbiddenError",
    "NotFoundError",
    "UnauthorizedError",
    "ValidationError",
    "load_config",
]

"""The one error every stage of the rule language raises."""

from __future__ import annotations

from keepbase.core.errors import BadRequestError


class FilterError(BadRequestError):
    """A filter, sort or rule that cannot be parsed or resolved.

    The message is the generic 400 one (query params never reveal the cause); ``detail``
    keeps PocketBase's raw error text for logs and ``validation_invalid_rule`` messages.
    """

    def __init__(self, detail: str, message: str = "") -> None:
        super().__init__(message)
        self.detail = detail

    def __str__(self) -> str:
        return self.detail

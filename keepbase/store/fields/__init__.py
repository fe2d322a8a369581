"""Field types: option defaults and checks, input coercion, validation and output.

One module per family of types; ``get_type(name)`` finds the handler for a field.
"""

from __future__ import annotations

from .base import FieldType, SaveContext, get_type, register_all, type_names

register_all()

__all__ = ["FieldType", "SaveContext", "get_type", "type_names"]

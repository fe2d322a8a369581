"""The filter/rule language: lexer → parser → AST → compiler (through a ``Resolver``).

Nothing here knows about collections or tables; ``keepbase.store.resolver`` implements
the ``Resolver`` protocol for collections.
"""

from __future__ import annotations

from .errors import FilterError
from .parser import parse, parse_sort

__all__ = ["FilterError", "parse", "parse_sort"]

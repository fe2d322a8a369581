"""Hard limits of the rule language (PocketBase's values where it has them)."""

from __future__ import annotations

MAX_FILTER_LENGTH = 3500
"""Maximum size of a filter/rule expression, in UTF-8 bytes."""

MAX_COMPARISONS = 200
"""Maximum number of comparisons in one expression (nested groups included)."""

MAX_GROUP_DEPTH = 32
"""Maximum nesting of parentheses; deeper input is an error, never a RecursionError."""

MAX_FUNCTION_DEPTH = 3
"""Maximum nesting of function calls (``f(g(h(x)))``)."""

MAX_STRFTIME_ARGS = 10
"""Maximum number of ``strftime`` arguments."""

MAX_SORT_ITEMS = 8
"""Maximum number of comma-separated ``sort`` items."""

MAX_SORT_ITEM_LENGTH = 255
"""Maximum length of one ``sort`` item."""

MAX_RELATION_DEPTH = 6
"""Maximum number of relation hops in one field path."""

"""Date/time identifier macros (``@now``, ``@todayStart``, ``@year``, ...), all in UTC.

Datetimes use the API format ``2024-01-02 03:04:05.678Z``; the component macros are ints.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

MacroValue = str | int


def format_datetime(dt: datetime) -> str:
    """``2024-01-02 03:04:05.678Z`` (UTC, millisecond precision)."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _day_end(now: datetime) -> datetime:
    return now.replace(hour=23, minute=59, second=59, microsecond=999000)


def _month_end(now: datetime) -> datetime:
    last = calendar.monthrange(now.year, now.month)[1]
    return _day_end(now.replace(day=last))


_MACROS: dict[str, Callable[[datetime], MacroValue]] = {
    "@now": lambda n: format_datetime(n),
    "@yesterday": lambda n: format_datetime(n - timedelta(days=1)),
    "@tomorrow": lambda n: format_datetime(n + timedelta(days=1)),
    "@second": lambda n: n.second,
    "@minute": lambda n: n.minute,
    "@hour": lambda n: n.hour,
    "@day": lambda n: n.day,
    "@month": lambda n: n.month,
    "@weekday": lambda n: (n.weekday() + 1) % 7,  # 0 = Sunday, like Go's time.Weekday
    "@year": lambda n: n.year,
    "@todayStart": lambda n: format_datetime(_day_start(n)),
    "@todayEnd": lambda n: format_datetime(_day_end(n)),
    "@monthStart": lambda n: format_datetime(_day_start(n.replace(day=1))),
    "@monthEnd": lambda n: format_datetime(_month_end(n)),
    "@yearStart": lambda n: format_datetime(_day_start(n.replace(month=1, day=1))),
    "@yearEnd": lambda n: format_datetime(_day_end(n.replace(month=12, day=31))),
}

MACRO_NAMES = frozenset(_MACROS)


def is_macro(name: str) -> bool:
    return name in _MACROS


def macro_value(name: str, now: datetime | None = None) -> MacroValue:
    """The value of macro ``name`` at ``now`` (default: the current UTC time)."""
    current = (now or datetime.now(UTC)).astimezone(UTC)
    return _MACROS[name](current)

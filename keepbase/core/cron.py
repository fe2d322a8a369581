"""Cron expressions, PocketBase style: five fields, macros, and AND semantics.

``minute hour day-of-month month day-of-week``; each field is ``*``, a number, a range
``a-b``, a step ``*/n`` or ``a-b/n``, or a comma list of those. Day-of-week 0 and 7 are
Sunday. Macros: ``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``,
``@hourly``. Like PocketBase's ``tools/cron`` (and unlike Vixie cron), a moment is due only
when *every* field matches, day-of-month and day-of-week included.

    >>> Schedule.parse("*/15 9-17 * * 1-5").is_due(datetime(2024, 1, 2, 9, 30))
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ("minute", "hour", "day of month", "month", "day of week")


class CronError(ValueError):
    """An invalid cron expression; the message names the offending part."""


def _number(text: str, lo: int, hi: int, name: str) -> int:
    if not text.isdigit():
        raise CronError(f"invalid {name} value {text!r}")
    n = int(text)
    if not lo <= n <= hi:
        raise CronError(f"{name} value {n} out of range {lo}-{hi}")
    return n


def _field(text: str, lo: int, hi: int, name: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"invalid {name} step {step_text!r}")
            step = int(step_text)
        if rng == "*":
            start, end = lo, hi
        elif "-" in rng:
            a, _, b = rng.partition("-")
            start, end = _number(a, lo, hi, name), _number(b, lo, hi, name)
            if start > end:
                raise CronError(f"invalid {name} range {rng!r}")
        else:
            start = _number(rng, lo, hi, name)
            end = hi if step_text else start
        out.update(range(start, end + 1, step))
    if name == "day of week":  # 7 is Sunday too
        out = {0 if n == 7 else n for n in out}
    return frozenset(out)


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        expr = MACROS.get(expression.strip().lower(), expression.strip())
        parts = expr.split()
        if len(parts) != 5:
            raise CronError(f"expected 5 space separated fields, got {len(parts)} in {expression!r}")
        fields = [_field(p, lo, hi, name) for p, (lo, hi), name in zip(parts, _BOUNDS, _NAMES, strict=True)]
        return cls(*fields)

    def is_due(self, moment: datetime) -> bool:
        weekday = (moment.weekday() + 1) % 7  # Python: Monday=0; cron: Sunday=0
        return (moment.minute in self.minutes and moment.hour in self.hours and moment.day in self.days
                and moment.month in self.months and weekday in self.weekdays)

    def next_after(self, moment: datetime, limit_days: int = 366 * 5) -> datetime | None:
        """The first due minute strictly after ``moment`` (None if none within ``limit_days``)."""
        t = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        end = t + timedelta(days=limit_days)
        while t < end:
            weekday = (t.weekday() + 1) % 7
            if t.month not in self.months or t.day not in self.days or weekday not in self.weekdays:
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
                continue
            if t.minute in self.minutes:
                return t
            t += timedelta(minutes=1)
        return None

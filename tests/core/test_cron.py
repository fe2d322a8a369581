"""Cron expressions (PocketBase flavour: five fields, macros, every field must match)."""

from __future__ import annotations

from datetime import datetime

import pytest

from keepbase.core.cron import CronError, Schedule


@pytest.mark.parametrize(("expr", "moment", "due"), [
    ("* * * * *", datetime(2024, 5, 6, 7, 8), True),
    ("*/5 * * * *", datetime(2024, 5, 6, 7, 10), True),
    ("*/5 * * * *", datetime(2024, 5, 6, 7, 11), False),
    ("0 9-17/4 * * *", datetime(2024, 5, 6, 13, 0), True),
    ("0 9-17/4 * * *", datetime(2024, 5, 6, 14, 0), False),
    ("1,2,30 * * * *", datetime(2024, 5, 6, 7, 30), True),
    ("0 0 1 1 *", datetime(2024, 1, 1, 0, 0), True),
    ("@yearly", datetime(2024, 1, 1, 0, 0), True),
    ("@hourly", datetime(2024, 1, 1, 5, 0), True),
    ("@hourly", datetime(2024, 1, 1, 5, 1), False),
    ("@daily", datetime(2024, 1, 1, 0, 0), True),
    ("@weekly", datetime(2024, 5, 5, 0, 0), True),  # a Sunday
    ("0 0 * * 7", datetime(2024, 5, 5, 0, 0), True),  # 7 is Sunday too
    ("0 0 * * 1-5", datetime(2024, 5, 5, 0, 0), False),
    ("0 0 * * 5-7", datetime(2024, 5, 5, 0, 0), True),
    ("0 0 13 * 5", datetime(2024, 9, 13, 0, 0), True),  # Friday the 13th: both must match
    ("0 0 13 * 5", datetime(2024, 5, 13, 0, 0), False),  # a Monday: PocketBase's AND semantics
])
def test_is_due(expr: str, moment: datetime, due: bool) -> None:
    assert Schedule.parse(expr).is_due(moment) is due


@pytest.mark.parametrize("expr", ["", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *",
                                  "* * * 13 *", "* * * * 8", "*/0 * * * *", "a * * * *", "5-1 * * * *",
                                  "1,,2 * * * *", "@often"])
def test_invalid(expr: str) -> None:
    with pytest.raises(CronError):
        Schedule.parse(expr)


def test_next_after() -> None:
    s = Schedule.parse("*/15 9-17 * * 1-5")
    assert s.next_after(datetime(2024, 1, 5, 17, 50)) == datetime(2024, 1, 8, 9, 0)
    assert s.next_after(datetime(2024, 1, 8, 9, 0)) == datetime(2024, 1, 8, 9, 15)
    assert Schedule.parse("0 0 29 2 *").next_after(datetime(2024, 3, 1)) == datetime(2028, 2, 29)
    assert Schedule.parse("0 0 31 2 *").next_after(datetime(2024, 1, 1)) is None

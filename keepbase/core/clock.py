"""Time in PocketBase's datetime format: ``2024-01-02 03:04:05.678Z`` (UTC, milliseconds)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?)?$"
)


def now() -> datetime:
    return datetime.now(UTC)


def format_dt(dt: datetime) -> str:
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now_str() -> str:
    return format_dt(now())


def parse_datetime(value: str) -> datetime | None:
    """Parse the input forms PocketBase accepts; ``None`` when unparseable."""
    m = _ISO_RE.match(value.strip())
    if not m:
        return None
    year, month, day, hh, mm, ss, frac, tz = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        dt = datetime(int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0), micro)
        if tz and tz != "Z":
            tz_clean = tz.replace(":", "")
            sign = 1 if tz_clean[0] == "+" else -1
            offset_min = sign * (int(tz_clean[1:3]) * 60 + int(tz_clean[3:5]))
            from datetime import timedelta, timezone

            return dt.replace(tzinfo=timezone(timedelta(minutes=offset_min))).astimezone(UTC)
        return dt.replace(tzinfo=UTC)
    except ValueError:
        return None

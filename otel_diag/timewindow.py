"""Durations and time windows as operators type them: ``90s``, ``15m``, ``24h``, ``7d``, ``2w``.

Shared by the CLI (``--since 24h`` or an ISO time) and the alert rules (``window = "15m"``),
so both accept exactly the same spellings. Every datetime returned is timezone-aware UTC:
the store compares timestamps as UTC, and a naive ISO time is read as UTC too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
}


def parse_duration(value: str | float | int) -> timedelta:
    """``"15m"`` -> 15 minutes. A bare number is seconds. Raises ValueError with the reason."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(
                f"not a duration: {value!r} (use a number with s, m, h, d or w, e.g. 15m or 7d)"
            )
        number, unit = match.groups()
        seconds = float(number) * _UNIT_SECONDS[(unit or "s").lower()]
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, not {value!r}")
    return timedelta(seconds=seconds)


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """A start time: a duration back from now (``24h``, ``7d``) or an ISO 8601 date/time."""
    text = value.strip()
    now = as_utc(now or datetime.now(UTC))
    if _DURATION.match(text) and not text.isdigit():
        try:
            return now - parse_duration(text)
        except OverflowError:
            raise ValueError(f"duration {value!r} reaches back before year 1") from None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a time: {value!r} (use a duration like 24h or 7d, or an ISO time like "
            "2025-01-31 or 2025-01-31T09:00:00Z)"
        ) from None
    try:
        return as_utc(parsed)
    except OverflowError:  # 9999-12-31T23:59:59-05:00 is past the last representable time
        raise ValueError(f"time {value!r} is out of range in UTC") from None


def format_duration(delta: timedelta) -> str:
    """The shortest exact spelling of ``delta`` (``15m``, ``7d``, ``90s``)."""
    seconds = delta.total_seconds()
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"

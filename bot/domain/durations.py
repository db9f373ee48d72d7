"""Durations as people type them (`30m`, `2h`, `1d`, `1h30m`, `2w`), parsed within bounds.

One parser for chat commands (`/snooze web 2h`) and settings (DOCKWARDEN_HISTORY_RETENTION);
its DurationError is a UsageError, so the router answers a bad `/snooze` duration with its usage.
The bound is checked on the digits before any arithmetic, so `10000000d` or a hundred-digit
number is a clear refusal instead of an OverflowError from timedelta or datetime.
"""

from __future__ import annotations

import re
from datetime import timedelta

from bot.errors import DurationError

_PART = re.compile(r"(\d+)\s*([smhdw])")
UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
YEAR = timedelta(days=365)
SNOOZE_LIMIT = YEAR  # a longer snooze is an ignore, and unbounded ones overflow the clock


def _describe(delta: timedelta) -> str:
    days, seconds = delta.days, delta.seconds
    if days and not seconds:
        return f"{days}d"
    if days == 0 and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{int(delta.total_seconds())}s"


def parse_duration(
    text: str, *, maximum: timedelta = YEAR, minimum: timedelta = timedelta(seconds=1)
) -> timedelta:
    """`30m`, `2h`, `1d`, `1h30m` -> timedelta within [minimum, maximum] (raises DurationError)."""
    compact = text.strip().lower()
    parts = _PART.findall(compact)
    if not compact or not parts or _PART.sub("", compact).strip():
        raise DurationError(f"not a duration: {text[:40]!r} (try 30m, 2h, 1d or 1w)")
    limit = int(maximum.total_seconds())
    seconds = 0
    for digits, unit in parts:
        # Digits beyond the limit's length already exceed it: no need to build the number.
        if len(digits.lstrip("0")) > len(str(limit)):
            seconds = limit + 1
            break
        seconds += int(digits) * UNITS[unit]
        if seconds > limit:
            break
    if seconds > limit:
        raise DurationError(f"{text[:40]!r} is too long: at most {_describe(maximum)}")
    if seconds < minimum.total_seconds():
        if seconds <= 0:
            raise DurationError("a duration must be longer than zero")
        raise DurationError(f"{text[:40]!r} is too short: at least {_describe(minimum)}")
    return timedelta(seconds=seconds)

"""DOCKWARDEN_SCHEDULE, a crontab line (or `@hourly`, `@daily`, `@weekly`), as a cron trigger
in DOCKWARDEN_TZ.

APScheduler 3.x numbers weekdays from Monday = 0, crontab from Sunday = 0 (and 7): `0 3 * * 0`
would run on Mondays. The day-of-week field is therefore rewritten into weekday names, which
both read the same way, before APScheduler sees it.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import ConfigError

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
}

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def expand_macro(expression: str) -> str:
    """`@daily` -> `0 0 * * *`; any other text unchanged (stripped)."""
    text = expression.strip()
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise ValueError(
                f"unknown schedule {text!r}; use a 5-field cron expression or one of "
                + ", ".join(sorted(set(MACROS) - {"@midnight"}))
            )
        return MACROS[text.lower()]
    return text


def _day(word: str) -> int:
    """A crontab weekday (0-7 or a name) as 0 = Sunday .. 6 = Saturday."""
    if word.lower() in DAY_NAMES:
        return DAY_NAMES.index(word.lower())
    if not word.isdigit() or int(word) > 7:
        raise ValueError(f"day of week {word!r} is not 0-7 or a day name")
    return int(word) % 7


def crontab_days(field: str) -> set[int]:
    """The weekdays (0 = Sunday) a crontab day-of-week field names."""
    days: set[int] = set()
    for item in field.split(","):
        span, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"day of week step {step_text!r} must be a positive number")
            step = int(step_text)
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            low, _, high = span.partition("-")
            first, last = _day(low), _day(high)
            if high.strip() == "7":
                last = 7  # `5-7` is Friday to Sunday
            if last < first:
                raise ValueError(f"day of week range {span!r} runs backwards")
        else:
            first = _day(span)
            last = 6 if step_text else first  # `1/2`: from Monday, every other day
        days.update(day % 7 for day in range(first, last + 1, step))
    return days


def apscheduler_fields(expression: str) -> tuple[str, str, str, str, str]:
    """minute, hour, day, month, day_of_week as APScheduler reads them (raises ValueError)."""
    fields = expand_macro(expression).split()
    if len(fields) != 5:
        raise ValueError(
            f"{expression!r} is not a cron expression: expected 5 fields "
            "(minute hour day month weekday) or @hourly, @daily, @weekly"
        )
    minute, hour, day, month, weekday = fields
    try:
        days = crontab_days(weekday)
    except ValueError as exc:
        raise ValueError(f"{expression!r} is not a valid cron expression: {exc}") from None
    weekday = "*" if len(days) == 7 else ",".join(DAY_NAMES[d] for d in sorted(days))
    return minute, hour, day, month, weekday


def cron_trigger(expression: str, timezone: tzinfo) -> CronTrigger:
    """The trigger of a schedule in `timezone`; ValueError saying what is wrong with it."""
    from apscheduler.triggers.cron import CronTrigger

    minute, hour, day, month, weekday = apscheduler_fields(expression)
    try:
        trigger = CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=weekday,
            timezone=timezone,
        )
    except ValueError as exc:
        raise ValueError(f"{expression!r} is not a valid cron expression: {exc}") from None
    if trigger.get_next_fire_time(None, datetime.now(timezone)) is None:
        raise ValueError(f"{expression!r} never runs (no such date)")
    return trigger


def parse_schedule(schedule: str, tz: str = "UTC") -> CronTrigger:
    """The cron trigger of DOCKWARDEN_SCHEDULE in DOCKWARDEN_TZ; a ConfigError naming it."""
    try:
        return cron_trigger(schedule, zone(tz))
    except ValueError as exc:
        raise ConfigError(f"DOCKWARDEN_SCHEDULE: {exc}") from None


def zone(tz: str) -> tzinfo:
    """The time zone named by DOCKWARDEN_TZ (an IANA name; UTC by default)."""
    if tz.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"DOCKWARDEN_TZ: unknown time zone {tz!r}") from None

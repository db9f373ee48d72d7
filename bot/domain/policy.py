"""When automation may act: the minimum age of a digest and the `auto` update window.

Pure decisions over plain values (labels, times); the store keeps what they are applied to
(bot/store/safety.py) and the pass runner applies them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from bot.domain import durations
from bot.errors import DurationError

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

log = logging.getLogger(__name__)

MIN_AGE_LABEL = "dockwarden.min_age"
MIN_AGE_LIMIT = durations.YEAR


def parse_age(text: str) -> timedelta:
    """`3d`, `12h`, `1w` as a minimum age (raises DurationError)."""
    return durations.parse_duration(text, maximum=MIN_AGE_LIMIT)


def min_age_of(labels: Mapping[str, str], default: timedelta | None) -> timedelta | None:
    """The workload's `dockwarden.min_age` label when valid (`0` turns it off), else `default`."""
    value = labels.get(MIN_AGE_LABEL)
    if value is None or not value.strip():
        return default
    if value.strip() == "0":
        return None
    try:
        return parse_age(value)
    except DurationError as exc:
        log.warning("label %s=%r ignored: %s", MIN_AGE_LABEL, value[:40], exc)
        return default


def ready_at(first_seen: datetime, min_age: timedelta | None) -> datetime:
    """When a digest first seen at `first_seen` becomes old enough to be proposed."""
    return first_seen + (min_age or timedelta(0))


class AutoWindow:
    """DOCKWARDEN_AUTO_WINDOW: the minutes its cron expression matches are the window."""

    def __init__(self, expression: str, timezone: tzinfo) -> None:
        from bot.config.cron import cron_trigger

        self.expression = expression
        self.trigger: CronTrigger = cron_trigger(expression, timezone)

    def next_start(self, now: datetime) -> datetime:
        """The first window minute at or after `now` (that minute itself when inside one)."""
        minute = now.replace(second=0, microsecond=0)
        found = self.trigger.get_next_fire_time(None, minute)
        if found is None:  # cron_trigger already refused expressions that never fire
            raise ValueError(f"{self.expression!r} never opens")
        return found  # type: ignore[no-any-return]

    def contains(self, now: datetime) -> bool:
        """Whether `now` falls in a minute the window's expression matches."""
        return self.next_start(now) == now.replace(second=0, microsecond=0)


def wait_note(run_at: datetime | None, *, canary: bool = False) -> str:
    """What /updates adds to an update that waits: for the window (`auto`), or for its canary
    hosts to stay healthy on the digest."""
    if run_at is None:
        return ""
    what = "its canary hosts" if canary else "the update window"
    return f" — waits for {what}: runs at {run_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"

"""Durations as typed in chat and settings: bounded before any arithmetic, by property."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.durations import SNOOZE_LIMIT, parse_duration
from bot.errors import DurationError, UsageError

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@given(st.text(max_size=40))
def test_any_text_is_a_bounded_duration_or_a_usage_error(text: str) -> None:
    try:
        duration = parse_duration(text)
    except UsageError:
        return
    assert timedelta(seconds=1) <= duration <= SNOOZE_LIMIT


@given(st.lists(st.tuples(st.integers(0, 10**30), st.sampled_from("smhdw")), min_size=1,
                max_size=4))
def test_parts_add_up_and_too_long_is_refused(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in parts)
    seconds = sum(n * UNIT_SECONDS[unit] for n, unit in parts)
    if 1 <= seconds <= SNOOZE_LIMIT.total_seconds():
        assert parse_duration(text) == timedelta(seconds=seconds)
    else:
        with pytest.raises(UsageError):
            parse_duration(text)


def test_bounds_are_the_callers() -> None:
    assert parse_duration("90d", minimum=timedelta(days=1), maximum=timedelta(days=3650)) == (
        timedelta(days=90))
    with pytest.raises(DurationError, match="at least 1d"):
        parse_duration("2h", minimum=timedelta(days=1))
    with pytest.raises(DurationError, match="at most 365d"):
        parse_duration("366d")

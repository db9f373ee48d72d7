"""Retrying a chat platform that could not be reached at start (bot.chat.reconnect)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from bot.chat.messages import Alert, AlertKind, Command, Reply
from bot.chat.reconnect import FIRST_DELAY, MAX_DELAY, Reconnecting, backoff
from bot.errors import ConfigError, DockWardenError

ALERT = Alert(AlertKind.RECOVERED, "back", "it answers again")


async def _dispatch(command: Command) -> Reply:
    return Reply("ok")


class Flaky:
    """A chat adapter whose first `failures` starts fail with `error`."""

    name = "flaky"

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or DockWardenError("no route to host")
        self.tries = 0
        self.stopped = False
        self.alerts: list[Alert] = []

    async def start(self, dispatch: Any) -> None:
        self.tries += 1
        if self.tries <= self.failures:
            raise self.error

    async def stop(self) -> None:
        self.stopped = True

    async def notify(self, alert: Alert) -> None:
        self.alerts.append(alert)


def test_waits_start_at_5s_double_and_stop_growing_at_5_minutes() -> None:
    assert (FIRST_DELAY, MAX_DELAY) == (5.0, 300.0)
    waits = list(itertools.islice(backoff(FIRST_DELAY, MAX_DELAY), 9))
    assert waits == [5, 10, 20, 40, 80, 160, 300, 300, 300]


async def test_alerts_fail_until_connected_then_the_kept_ones_are_flushed_once() -> None:
    flaky = Flaky(failures=2)
    flushed: list[int] = []

    async def flush() -> int:
        flushed.append(1)
        return 0

    with pytest.raises(DockWardenError):
        await flaky.start(_dispatch)  # the daemon's own try, which makes the wrapper
    wrapper = Reconnecting(flaky, on_connect=flush, first_delay=0.01, max_delay=0.02)
    await wrapper.start(_dispatch)
    with pytest.raises(DockWardenError, match="not connected yet"):
        await wrapper.notify(ALERT)
    for _ in range(500):
        if wrapper.connected and flushed:
            break
        await asyncio.sleep(0.01)
    assert wrapper.connected and flaky.tries == 3 and wrapper.attempts == 3 and flushed == [1]
    await wrapper.notify(ALERT)
    assert flaky.alerts == [ALERT]
    await wrapper.stop()
    assert flaky.stopped


async def test_a_refused_token_found_while_retrying_stops_the_retries() -> None:
    flaky = Flaky(failures=100, error=ConfigError("refused TELEGRAM_BOT_TOKEN"))
    wrapper = Reconnecting(flaky, on_connect=asyncio.sleep, first_delay=0.01, max_delay=0.01)
    await wrapper.start(_dispatch)
    for _ in range(30):
        await asyncio.sleep(0.01)
    assert flaky.tries == 1 and not wrapper.connected
    await wrapper.stop()

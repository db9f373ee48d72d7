"""A chat platform that cannot be reached when DockWarden starts is retried in the background.

A host often boots before its network is up. Rather than running without that platform until the
next restart, the adapter is wrapped in `Reconnecting`: it tries `start` again after 5 s, then
10 s, 20 s... up to every 5 minutes, while passes, commands and the other adapters run. Until it
connects, its `notify` fails at once, so each alert waits in the SQLite outbox; once connected,
`on_connect` (the notifier's flush) sends them. A token the platform refuses is a ConfigError,
which no retry can fix: that one stops the retries and is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator

from bot.chat.messages import Alert, ChatAdapter, Dispatch
from bot.errors import ConfigError, DockWardenError

log = logging.getLogger(__name__)

FIRST_DELAY = 5.0  # seconds before the first retry; doubled after each failure
MAX_DELAY = 300.0  # the longest wait between two tries
ATTEMPT_TIMEOUT = 120.0  # one try of `start` may take this long before it counts as failed


def backoff(first: float, cap: float) -> Iterator[float]:
    """The waits between tries: `first`, doubled after each failure, never more than `cap`."""
    delay = first
    while True:
        yield min(delay, cap)
        delay = min(delay * 2, cap)


def reason(exc: BaseException) -> str:
    """What to log about a failed start: our errors' text (already scrubbed), else the type."""
    if isinstance(exc, DockWardenError):
        return str(exc)
    return type(exc).__name__


class Reconnecting:
    """A chat adapter whose start failed for a reason other than its configuration."""

    def __init__(
        self,
        adapter: ChatAdapter,
        *,
        on_connect: Callable[[], Awaitable[object]],
        first_delay: float | None = None,
        max_delay: float | None = None,
        attempt_timeout: float | None = None,
    ) -> None:
        self.adapter = adapter
        self.name = adapter.name
        self.connected = False
        self.attempts = 1  # the failed start that made this wrapper
        self._on_connect = on_connect
        # read when built (not when defined), so a test can set the module's values
        self._first_delay = FIRST_DELAY if first_delay is None else first_delay
        self._max_delay = MAX_DELAY if max_delay is None else max_delay
        self._attempt_timeout = ATTEMPT_TIMEOUT if attempt_timeout is None else attempt_timeout
        self._task: asyncio.Task[None] | None = None

    async def start(self, dispatch: Dispatch) -> None:
        """Begin retrying in the background; returns at once."""
        self._task = asyncio.create_task(self._retry(dispatch), name=f"reconnect-{self.name}")

    async def _retry(self, dispatch: Dispatch) -> None:
        waits = backoff(self._first_delay, self._max_delay)
        delay = next(waits)
        while True:
            await asyncio.sleep(delay)
            self.attempts += 1
            try:
                await asyncio.wait_for(self.adapter.start(dispatch), self._attempt_timeout)
            except ConfigError as exc:
                log.error("the %s adapter will not connect: %s (fix it and restart DockWarden)",
                          self.name, exc)
                return
            except Exception as exc:
                if isinstance(exc, TimeoutError):
                    with contextlib.suppress(Exception):
                        await self.adapter.stop()  # leave no half-started client behind
                delay = next(waits)
                log.warning("the %s adapter still cannot connect (%s); next try in %.0fs",
                            self.name, reason(exc), delay)
                continue
            break
        self.connected = True
        log.info("the %s adapter is connected now (try %d); sending the alerts kept for it",
                 self.name, self.attempts)
        try:
            await self._on_connect()
        except Exception:
            log.exception("sending the alerts kept for %s failed; the next pass retries", self.name)

    async def stop(self) -> None:
        """Stop retrying; stop the adapter when it did connect."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Also when not connected: a try cut short by this stop may have left a client behind.
        self.connected = False
        await self.adapter.stop()

    async def notify(self, alert: Alert) -> None:
        """Deliver through the adapter once connected; until then fail, so the alert waits."""
        if not self.connected:
            raise DockWardenError(
                f"{self.name} is not connected yet; alert {alert.title!r} waits in the outbox"
            )
        await self.adapter.notify(alert)

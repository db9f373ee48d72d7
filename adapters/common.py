"""What every chat adapter does the same way, written once.

Secrets out of library log records (`SecretFilter`, with bot.chat.text_safety's `redact`); the
line that says who pressed which button (`press_line`); the answer to a command that arrives
before the adapter was started, the apology for a command that failed, and the error for an
alert sent to a stopped adapter (`ask`, `failure_note`, `not_running`); which alerts already
reached which of an adapter's places (`PartialDeliveries`); and which commands are slow
(`is_slow`). Each platform keeps its own idiom for drawing and acknowledging; what it decides
is decided here.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Generic, TypeVar

from bot.chat.catalogue import command as catalogue_entry
from bot.chat.messages import Alert, Command, Dispatch, Reply
from bot.chat.text_safety import REDACTED, redact
from bot.errors import DockWardenError

NOT_STARTED = "DockWarden is starting; try again in a moment."

Place = TypeVar("Place", bound=Hashable)


# ---- secrets ---------------------------------------------------------------------------------


class SecretFilter(logging.Filter):
    """Rewrites the log records of chosen loggers so that no protected secret survives in them.

    Libraries log request URLs, and a bot token or webhook token is part of the URL.
    """

    def __init__(self, mark: str = REDACTED) -> None:
        super().__init__()
        self._mark = mark
        self._secrets: set[str] = set()

    def protect(self, secret: str) -> None:
        """Start cutting `secret` out of every record this filter sees."""
        if secret:
            self._secrets.add(secret)

    def redact(self, text: str) -> str:
        """`text` with each protected secret replaced by this filter's mark."""
        return redact(text, self._secrets, self._mark)

    def attach(self, *loggers: str) -> None:
        """Filter the records of these loggers (a no-op for one already filtered)."""
        for name in loggers:
            logging.getLogger(name).addFilter(self)

    def detach(self, *loggers: str) -> None:
        """Stop filtering these loggers."""
        for name in loggers:
            logging.getLogger(name).removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message and traceback text; never drop a record."""
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


# ---- what every adapter says -------------------------------------------------------------------


def pressed(who: str, label: str) -> str:
    """`alice pressed Approve`: who pressed which button (plain text, not escaped)."""
    return f"{who} pressed {label}"


def press_line(who: str, label: str, outcome: str) -> str:
    """`alice pressed Approve: web updated`: the press and what came of it (plain text)."""
    return f"{pressed(who, label)}: {outcome}"


async def ask(dispatch: Dispatch | None, command: Command) -> Reply:
    """The core's reply to `command`, or a private refusal while the adapter is not started."""
    if dispatch is None:
        return Reply(NOT_STARTED, ephemeral=True, refused=True)
    return await dispatch(command)


def failure_note(name: str) -> str:
    """What the sender is told when their command failed unexpectedly (the log has the rest)."""
    return f"/{name} failed; the bot's log has the details."


def not_running(platform: str, alert: Alert) -> DockWardenError:
    """The error for an alert handed to an adapter that is stopped or was never started."""
    # the core keeps the alert for a later attempt rather than open a connection nobody closes
    return DockWardenError(f"{platform} is not running: alert {alert.title!r} not sent")


def is_slow(name: str) -> bool:
    """Whether the command `name` may take long, so the platform should acknowledge it first
    (its own way: a deferral in Discord, a "working on it" toast in Telegram)."""
    try:
        return catalogue_entry(name).slow
    except KeyError:
        return False  # the core answers an unknown command at once


# ---- delivery bookkeeping ----------------------------------------------------------------------


def alert_key(alert: Alert) -> tuple[str, ...]:
    """What identifies an alert across the core's delivery retries."""
    return (alert.kind.value, alert.title, alert.text, alert.update_id or "")


class PartialDeliveries(Generic[Place]):
    """Which places (chats, URLs) already have an alert whose delivery partly failed, so that
    the core's retry goes only to the places that missed it. Bounded: the oldest are forgotten."""

    def __init__(self, limit: int = 1000) -> None:
        self._limit = limit
        self._done: dict[tuple[str, ...], set[Place]] = {}

    def take(self, alert: Alert) -> set[Place]:
        """The places that already have `alert` (forgotten here until `remember`)."""
        return self._done.pop(alert_key(alert), set())

    def remember(self, alert: Alert, done: set[Place]) -> None:
        """Keep `done` for the next attempt at `alert`."""
        if len(self._done) >= self._limit:
            self._done.pop(next(iter(self._done)))
        self._done[alert_key(alert)] = done

"""Getting messages to Telegram despite rate limits and flaky links, and the token out of logs.

PTB does not retry by itself: a 429 becomes `RetryAfter`, a dropped link a `NetworkError`.
Alerts must not be lost to either, so every Bot API call goes through `Delivery.retrying`,
bounded in attempts and in rate-limit waits. The bot token is part of every request URL, which
PTB and httpx log; `TOKEN_FILTER` takes it out of their records and ours.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from telegram import Bot, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.warnings import PTBDeprecationWarning

from adapters.common import SecretFilter
from adapters.telegram.render import keyboard
from bot.chat.messages import Action
from bot.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")

# PTB's loggers (it logs the API URL, which holds the token, at DEBUG), httpx's and ours
LOGGERS = (
    "telegram", "telegram.Bot", "telegram.BaseRequest", "telegram.HTTPXRequest", "telegram.ext",
    "telegram.ext.ExtBot", "telegram.ext.Application", "telegram.ext.Updater",
    "telegram.ext.JobQueue", "httpx", "httpcore", "adapters.telegram.adapter",
    "adapters.telegram.commands", __name__,
)
TOKEN_FILTER = SecretFilter("<TELEGRAM_BOT_TOKEN>")


def protect(token: str) -> None:
    """Keep `token` out of every record of the Telegram loggers from now on."""
    TOKEN_FILTER.protect(token)
    TOKEN_FILTER.attach(*LOGGERS)
    # httpx logs every request URL at INFO, and the URL holds the bot token
    logging.getLogger("httpx").setLevel(logging.WARNING)


def safe(exc: BaseException) -> str:
    """An exception's text without the bot token (PTB puts it in some messages)."""
    return TOKEN_FILTER.redact(str(exc))


def refused(reason: str) -> ConfigError:
    """A token Telegram refuses is a configuration error: retrying cannot fix it."""
    return ConfigError(
        f"Telegram refused TELEGRAM_BOT_TOKEN ({reason or 'Unauthorized'}); copy the token "
        "again from @BotFather (or check TELEGRAM_API_BASE_URL)"
    )


def retry_seconds(exc: RetryAfter) -> float:
    """How long Telegram asked us to wait, whichever type this PTB version reports."""
    with warnings.catch_warnings():
        # reading retry_after warns about its future type unless PTB_TIMEDELTA is set
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


class Delivery:
    """Bot API calls run through rate limits and network errors, within bounds."""

    def __init__(
        self,
        bot: Callable[[], Awaitable[Bot]],
        *,
        attempts: int,
        backoff: float,
        max_rate_limit_waits: int,
    ) -> None:
        self._bot = bot
        self._attempts = attempts
        self._backoff = backoff
        self._max_rate_limit_waits = max_rate_limit_waits

    async def retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run one Bot API call through rate limits and network errors, within bounds."""
        failures = 0
        waits = 0
        while True:
            try:
                return await call()
            except RetryAfter as exc:
                waits += 1
                if waits > self._max_rate_limit_waits:
                    raise
                delay = retry_seconds(exc)
                log.warning("Telegram rate limit on %s: waiting %.0fs", what, delay)
                await asyncio.sleep(delay)
            except BadRequest:
                raise  # a BadRequest is a NetworkError in PTB, but retrying cannot fix it
            except NetworkError as exc:
                failures += 1
                if failures >= self._attempts:
                    raise
                delay = self._backoff * 2 ** (failures - 1)
                log.warning(
                    "Telegram %s failed (%s); retry %d in %.1fs", what, safe(exc), failures, delay
                )
                await asyncio.sleep(delay)

    async def send_pages(
        self,
        chat_id: int,
        pages: Sequence[str],
        actions: Sequence[Action],
        reply_to: int | None = None,
    ) -> list[Message]:
        """Send HTML pages in order; the buttons go under the last one."""
        bot = await self._bot()
        sent: list[Message] = []
        for index, page in enumerate(pages):
            markup = keyboard(actions) if index == len(pages) - 1 else None
            reply = (
                ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
                if reply_to is not None and index == 0
                else None
            )

            def send(page: str = page, markup: Any = markup, reply: Any = reply) -> Any:
                return bot.send_message(
                    chat_id,
                    page,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    reply_parameters=reply,
                )

            sent.append(await self.retrying("sendMessage", send))
        return sent

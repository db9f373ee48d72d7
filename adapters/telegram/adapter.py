"""Telegram: python-telegram-bot 22 run inside DockWarden's loop, drawing neutral replies.

`TelegramAdapter` owns the Application's life (start, long polling, stop) and pushes alerts;
the handlers of incoming commands and presses are `adapters.telegram.commands`, the bounded
retrying of Bot API calls `adapters.telegram.delivery`. Alerts and replies go out in HTML parse
mode with every piece of text escaped, split into pages Telegram accepts.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import Bot, BotCommand, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    Updater,
    filters,
)

from adapters.common import PartialDeliveries, not_running
from adapters.telegram.commands import TelegramCommands
from adapters.telegram.delivery import Delivery, protect, refused, safe
from adapters.telegram.render import menu_description, render_alert
from bot.chat.catalogue import COMMANDS
from bot.chat.messages import Alert, Dispatch
from bot.config.settings import Settings
from bot.errors import ConfigError, DockWardenError

log = logging.getLogger(__name__)

STOP_ACK_WAIT = 1.5  # seconds the final getUpdates of a stop may take (the daemon allows 3)
AnyApplication = Application[Any, Any, Any, Any, Any, Any]


class TelegramAdapter:
    """The Telegram chat adapter (long polling)."""

    name = "telegram"

    def __init__(
        self,
        settings: Settings,
        *,
        attempts: int = 5,
        backoff: float = 1.0,
        max_rate_limit_waits: int = 10,
        poll_timeout: int = 10,
        answer_within: float = 5.0,
        stop_ack_wait: float = STOP_ACK_WAIT,
    ) -> None:
        if settings.telegram_bot_token is None:
            raise ConfigError("TELEGRAM_BOT_TOKEN is not set")
        self._token = settings.telegram_bot_token.get_secret_value()
        self._base = settings.telegram_api_base_url
        self._chat_ids = tuple(settings.telegram_chat_ids)
        self._poll_timeout = poll_timeout
        self._stop_ack_wait = stop_ack_wait
        self._app: AnyApplication | None = None
        self._stopped = False
        self._partial: PartialDeliveries[int] = PartialDeliveries()
        protect(self._token)
        self._delivery = Delivery(
            self._bot, attempts=attempts, backoff=backoff,
            max_rate_limit_waits=max_rate_limit_waits,
        )
        self._commands = TelegramCommands(
            self._delivery, self._chat_ids, answer_within=answer_within
        )

    def _build(self) -> AnyApplication:
        app: AnyApplication = (
            ApplicationBuilder()
            .token(self._token)
            .base_url(f"{self._base}/bot")
            .base_file_url(f"{self._base}/file/bot")
            # an approval waiting on a health check must not hold up /status
            .concurrent_updates(4)
            .build()
        )
        handlers = self._commands
        for spec in COMMANDS:
            app.add_handler(CommandHandler(spec.name, handlers.on_command))
        app.add_handler(CommandHandler("start", handlers.on_command))
        # any other /word goes to the core too, which answers what it does not know
        app.add_handler(MessageHandler(filters.COMMAND, handlers.on_command))
        app.add_handler(CallbackQueryHandler(handlers.on_button))
        app.add_error_handler(handlers.on_error)
        return app

    async def _application(self) -> AnyApplication:
        if self._app is None:
            if self._stopped:
                raise DockWardenError("the Telegram bot is stopped")
            self._app = self._build()
        await self._app.bot.initialize()  # idempotent; lets alerts go out before start()
        return self._app

    async def _bot(self) -> Bot:
        """The bot to send with, ready before start() too (alerts need no polling)."""
        bot: Bot = (await self._application()).bot
        return bot

    async def start(self, dispatch: Dispatch) -> None:
        """Connect, register the commands and start long polling; returns once polling runs."""
        self._commands.dispatch = dispatch
        self._stopped = False
        if not self._chat_ids:
            log.warning("TELEGRAM_CHAT_IDS is empty: Telegram alerts have nowhere to go")
        app = self._app or self._build()
        self._app = app
        try:
            await app.initialize()
            await self._delivery.retrying(
                "setMyCommands",
                lambda: app.bot.set_my_commands(
                    [BotCommand(s.name, menu_description(s)) for s in COMMANDS]
                ),
            )
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(
                timeout=self._poll_timeout,
                allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
            )
        except InvalidToken as exc:
            await self._teardown()
            raise refused(safe(exc)) from None
        except TelegramError as exc:
            await self._teardown()
            raise DockWardenError(f"could not start the Telegram bot: {safe(exc)}") from None
        log.info("Telegram bot @%s polling", app.bot.username)

    async def open_for_alerts(self) -> None:
        """Check the token (getMe) without polling: enough to send alerts, and no conflict with
        a daemon polling with the same token (`dockwarden notify --test`)."""
        self._stopped = False
        try:
            await self._application()
        except InvalidToken as exc:
            await self._teardown()
            raise refused(safe(exc)) from None
        except TelegramError as exc:
            await self._teardown()
            raise DockWardenError(f"Telegram cannot be reached: {safe(exc)}") from None

    async def stop(self) -> None:
        """Stop polling and disconnect, in the reverse order of start."""
        self._stopped = True
        await self._teardown()

    async def _teardown(self) -> None:
        app = self._app
        if app is None:
            return
        try:
            if app.updater is not None and app.updater.running:
                await self._stop_polling(app.updater)
            if app.running:
                await app.stop()  # waits for handlers under way; they still reply through app
            await app.shutdown()
            # after a failed initialize() the application thinks it is down; its bot may not be
            await app.bot.shutdown()
        finally:
            self._app = None

    async def _stop_polling(self, updater: Updater) -> None:
        """End the long poll without waiting on Telegram for more than a moment.

        PTB drops the poll in flight at once, then sends one last getUpdates to acknowledge
        what it read. Over a slow link, or while Telegram still holds the dropped poll, that
        call can take the whole poll timeout; a stop must not. Unacknowledged updates are only
        read again at the next start, and handlers already had them.
        """
        stopping = asyncio.ensure_future(updater.stop())
        done, _ = await asyncio.wait({stopping}, timeout=self._stop_ack_wait)
        if done:
            stopping.result()
            return
        stopping.cancel()
        await asyncio.wait({stopping})  # its cancellation, not ours: nothing to re-raise
        log.info(
            "Telegram did not acknowledge the last updates within %.1fs; stopping without "
            "(they are read again at the next start)", self._stop_ack_wait,
        )

    async def notify(self, alert: Alert) -> None:
        """Send the alert to every alert chat; raises DockWardenError naming the chats it missed."""
        if self._stopped:
            raise not_running("Telegram", alert)
        if not self._chat_ids:
            log.warning("alert %r not sent: TELEGRAM_CHAT_IDS is empty", alert.title)
            return
        pages = render_alert(alert)
        # chats that already have this alert from an earlier, partly failed attempt
        done = self._partial.take(alert)
        failed: list[str] = []
        for chat_id in self._chat_ids:
            if chat_id in done:
                continue
            try:
                await self._delivery.send_pages(chat_id, pages, alert.actions)
                done.add(chat_id)
            except InvalidToken as exc:
                raise refused(safe(exc)) from None
            except TelegramError as exc:
                reason = safe(exc)
                log.error("alert %r not delivered to chat %s: %s", alert.title, chat_id, reason)
                failed.append(f"{chat_id} ({reason})")
        if failed:
            self._partial.remember(alert, done)
            raise DockWardenError(
                f"Telegram alert {alert.title!r} not delivered to chat(s) {', '.join(failed)}"
            )

"""Telegram: python-telegram-bot 22 run inside DockWarden's loop, drawing neutral replies.

Commands arrive as `/name args` messages and as inline-button presses (`callback_data` is
"verb:target"); both become `bot.chat.messages.Command`s for the core's dispatch. Alerts and replies
go out in HTML parse mode with every piece of text escaped, split into pages Telegram accepts, and
retried through rate limits and network errors.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from telegram import (
    BotCommand,
    CallbackQuery,
    Message,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    Updater,
    filters,
)
from telegram.warnings import PTBDeprecationWarning

from adapters.telegram.render import (
    CALLBACK_ANSWER_LIMIT,
    display_name,
    edited_text,
    escape,
    keyboard,
    parse_callback_data,
    press_line,
    render_alert,
    render_reply,
)
from bot.chat.messages import Action, Alert, Command, Dispatch, Reply, Sender
from bot.config.settings import Settings
from bot.errors import ConfigError, DockWardenError

log = logging.getLogger(__name__)

T = TypeVar("T")
STOP_ACK_WAIT = 1.5  # seconds the final getUpdates of a stop may take (the daemon allows 3)
AnyApplication = Application[Any, Any, Any, Any, Any, Any]

COMMANDS: tuple[tuple[str, str], ...] = (
    ("status", "Watched containers and their state"),
    ("check", "Check for new images now: /check [name]"),
    ("updates", "Pending updates"),
    ("approve", "Approve a pending update: /approve <id|name>"),
    ("pull", "Update a container now: /pull <name>"),
    ("ignore", "Stop alerting about a container: /ignore <name>"),
    ("snooze", "Silence a container for a while: /snooze <name> <duration>"),
    ("rollback", "Back to the image before the last update: /rollback <name>"),
    ("history", "What was done: /history [name]"),
    ("help", "What each command does"),
)


def retry_seconds(exc: RetryAfter) -> float:
    """How long Telegram asked us to wait, whichever type this PTB version reports."""
    with warnings.catch_warnings():
        # reading retry_after warns about its future type unless PTB_TIMEDELTA is set
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def _refused(reason: str) -> ConfigError:
    """A token Telegram refuses is a configuration error: retrying cannot fix it."""
    return ConfigError(
        f"Telegram refused TELEGRAM_BOT_TOKEN ({reason or 'Unauthorized'}); copy the token "
        "again from @BotFather (or check TELEGRAM_API_BASE_URL)"
    )


def _alert_key(alert: Alert) -> tuple[str, ...]:
    """What identifies an alert across the core's delivery retries."""
    return (alert.kind.value, alert.title, alert.text, alert.update_id or "")


# ---- keeping the token out of logs ----------------------------------------------------------

# PTB's loggers (it logs the API URL, which holds the token, at DEBUG), httpx's and ours
_LOGGERS = (
    "telegram", "telegram.Bot", "telegram.BaseRequest", "telegram.HTTPXRequest", "telegram.ext",
    "telegram.ext.ExtBot", "telegram.ext.Application", "telegram.ext.Updater",
    "telegram.ext.JobQueue", "httpx", "httpcore", __name__,
)


class _Redactor(logging.Filter):
    """Rewrites log records of the Telegram loggers so that no bot token survives in them."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def protect(self, secret: str) -> None:
        """Start cutting `secret` out of every record of the Telegram loggers."""
        self._secrets.add(secret)
        for name in _LOGGERS:
            logging.getLogger(name).addFilter(self)  # a no-op when already there

    def redact(self, text: str) -> str:
        """`text` with each protected secret replaced by a placeholder."""
        for secret in self._secrets:
            text = text.replace(secret, "<TELEGRAM_BOT_TOKEN>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


_REDACTOR = _Redactor()


# ---- the adapter -----------------------------------------------------------------------------


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
        self._attempts = attempts
        self._backoff = backoff
        self._max_rate_limit_waits = max_rate_limit_waits
        self._poll_timeout = poll_timeout
        self._answer_within = answer_within
        self._stop_ack_wait = stop_ack_wait
        self._dispatch: Dispatch | None = None
        self._app: AnyApplication | None = None
        self._stopped = False
        self._partial: dict[tuple[str, ...], set[int]] = {}
        # httpx logs every request URL at INFO, and the URL holds the bot token
        logging.getLogger("httpx").setLevel(logging.WARNING)
        _REDACTOR.protect(self._token)

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
        for command, _ in COMMANDS:
            app.add_handler(CommandHandler(command, self._on_command))
        app.add_handler(CommandHandler("start", self._on_command))
        # any other /word goes to the core too, which answers what it does not know
        app.add_handler(MessageHandler(filters.COMMAND, self._on_command))
        app.add_handler(CallbackQueryHandler(self._on_button))
        app.add_error_handler(self._on_error)
        return app

    async def _application(self) -> AnyApplication:
        if self._app is None:
            if self._stopped:
                raise DockWardenError("the Telegram bot is stopped")
            self._app = self._build()
        await self._app.bot.initialize()  # idempotent; lets alerts go out before start()
        return self._app

    async def start(self, dispatch: Dispatch) -> None:
        """Connect, register the commands and start long polling; returns once polling runs."""
        self._dispatch = dispatch
        self._stopped = False
        if not self._chat_ids:
            log.warning("TELEGRAM_CHAT_IDS is empty: Telegram alerts have nowhere to go")
        app = self._app or self._build()
        self._app = app
        try:
            await app.initialize()
            await self._retrying(
                "setMyCommands",
                lambda: app.bot.set_my_commands([BotCommand(n, d) for n, d in COMMANDS]),
            )
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(
                timeout=self._poll_timeout,
                allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
            )
        except InvalidToken as exc:
            await self._teardown()
            raise _refused(self._safe(exc)) from None
        except TelegramError as exc:
            await self._teardown()
            raise DockWardenError(f"could not start the Telegram bot: {self._safe(exc)}") from None
        log.info("Telegram bot @%s polling", app.bot.username)

    async def open_for_alerts(self) -> None:
        """Check the token (getMe) without polling: enough to send alerts, and no conflict with
        a daemon polling with the same token (`dockwarden notify --test`)."""
        self._stopped = False
        try:
            await self._application()
        except InvalidToken as exc:
            await self._teardown()
            raise _refused(self._safe(exc)) from None
        except TelegramError as exc:
            await self._teardown()
            raise DockWardenError(f"Telegram cannot be reached: {self._safe(exc)}") from None

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
            # the core keeps it for the next start rather than opening a connection nobody closes
            raise DockWardenError(f"Telegram alert {alert.title!r} not sent: the bot is stopped")
        if not self._chat_ids:
            log.warning("alert %r not sent: TELEGRAM_CHAT_IDS is empty", alert.title)
            return
        pages = render_alert(alert)
        key = _alert_key(alert)
        # chats that already have this alert from an earlier, partly failed attempt
        done = self._partial.pop(key, set())
        failed: list[str] = []
        for chat_id in self._chat_ids:
            if chat_id in done:
                continue
            try:
                await self._send_pages(chat_id, pages, alert.actions)
                done.add(chat_id)
            except InvalidToken as exc:
                raise _refused(self._safe(exc)) from None
            except TelegramError as exc:
                reason = self._safe(exc)
                log.error("alert %r not delivered to chat %s: %s", alert.title, chat_id, reason)
                failed.append(f"{chat_id} ({reason})")
        if failed:
            if len(self._partial) >= 1000:  # bounded: forget the oldest
                self._partial.pop(next(iter(self._partial)))
            self._partial[key] = done
            raise DockWardenError(
                f"Telegram alert {alert.title!r} not delivered to chat(s) {', '.join(failed)}"
            )

    async def _send_pages(
        self,
        chat_id: int,
        pages: Sequence[str],
        actions: Sequence[Action],
        reply_to: int | None = None,
    ) -> list[Message]:
        """Send pages in order; the buttons go under the last one."""
        app = await self._application()
        sent: list[Message] = []
        for index, page in enumerate(pages):
            markup = keyboard(actions) if index == len(pages) - 1 else None
            reply = (
                ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
                if reply_to is not None and index == 0
                else None
            )

            def send(page: str = page, markup: Any = markup, reply: Any = reply) -> Any:
                return app.bot.send_message(
                    chat_id,
                    page,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    reply_parameters=reply,
                )

            sent.append(await self._retrying("sendMessage", send))
        return sent

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
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
                    "Telegram %s failed (%s); retry %d in %.1fs",
                    what, self._safe(exc), failures, delay,
                )
                await asyncio.sleep(delay)

    # ---- incoming ------------------------------------------------------------------------------

    def _sender(self, user: User, chat_id: int) -> Sender:
        return Sender(
            platform="telegram",
            user_id=user.id,
            display=display_name(user),
            in_alert_place=chat_id in self._chat_ids,
        )

    async def _ask(self, command: Command) -> Reply:
        if self._dispatch is None:
            return Reply("DockWarden is starting; try again in a moment.", refused=True)
        return await self._dispatch(command)

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A /command message: dispatch it and answer in the same chat."""
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None or message.text is None:
            return
        words = message.text.split()
        name, _, addressee = words[0][1:].partition("@")
        if addressee and addressee.lower() != (context.bot.username or "").lower():
            return  # a command for another bot in the same group
        name = "help" if name.lower() == "start" else name.lower()
        command = Command(name, tuple(words[1:]), self._sender(user, message.chat_id))
        try:
            reply = await self._ask(command)
        except Exception:
            await self._send_pages(
                message.chat_id, [escape(f"/{name} failed; the bot's log says why.")], ()
            )
            raise  # the error handler logs it with the traceback
        if reply.silent:
            return  # a flood of refused commands is not answered message by message
        await self._send_pages(
            message.chat_id, render_reply(reply), reply.actions, reply_to=message.message_id
        )

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button press: dispatch it, answer the press, edit the alert with the outcome."""
        query = update.callback_query
        if query is None:
            return
        parsed = parse_callback_data(query.data)
        if parsed is None:
            await self._answer(query, "Unknown button.")
            return
        verb, target = parsed
        chat_id = query.message.chat.id if query.message is not None else 0
        command = Command(verb, (target,), self._sender(query.from_user, chat_id))
        asked = asyncio.ensure_future(self._ask(command))
        # Telegram drops a press left unanswered for ~15s; an update can take longer than that
        done, _ = await asyncio.wait({asked}, timeout=self._answer_within)
        answered = not done
        if answered:
            await self._answer(query, f"{verb.capitalize()}: working on it...")
        try:
            reply = await asked
        except Exception:
            if not answered:
                await self._answer(query, "That failed; the bot's log says why.", alert=True)
            raise
        if reply.refused or reply.ephemeral:
            if not answered:
                await self._answer(query, reply.text, alert=True)
            elif query.message is not None:  # too late for a private answer
                await self._send_pages(query.message.chat.id, render_reply(reply), ())
            return
        if not answered:
            await self._answer(query, reply.text)
        await self._record_press(query, verb, reply)

    async def _answer(self, query: CallbackQuery, text: str, *, alert: bool = False) -> None:
        """Answer a press (a toast, or a dialog for refusals); a late answer is only logged."""
        short = text[:CALLBACK_ANSWER_LIMIT]
        try:
            await self._retrying(
                "answerCallbackQuery", lambda: query.answer(short, show_alert=alert)
            )
        except BadRequest as exc:
            log.warning("could not answer button press %s: %s", query.id, self._safe(exc))

    async def _record_press(self, query: CallbackQuery, verb: str, reply: Reply) -> None:
        """Edit the pressed alert: its text, who pressed what and the outcome; buttons removed."""
        message = query.message
        who = display_name(query.from_user)
        if not isinstance(message, Message) or message.text is None:
            if message is not None:
                pages = render_reply(Reply(f"{who} pressed {verb.capitalize()}: {reply.text}"))
                await self._send_pages(message.chat.id, pages, reply.actions)
            return
        label = verb.capitalize()
        for row in message.reply_markup.inline_keyboard if message.reply_markup else ():
            for button in row:
                if button.callback_data == query.data:
                    label = button.text
        text = edited_text(message.text_html, press_line(who, label, reply.text))
        try:
            await self._retrying(
                "editMessageText",
                lambda: message.edit_text(
                    text, parse_mode=ParseMode.HTML, reply_markup=keyboard(reply.actions)
                ),
            )
        except BadRequest as exc:
            # the alert may be too old to edit; say the outcome in the chat instead
            log.warning("could not edit alert %s: %s", message.message_id, self._safe(exc))
            pages = render_reply(Reply(f"{who} pressed {label}: {reply.text}"))
            await self._send_pages(message.chat.id, pages, reply.actions)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log a handler's failure with its traceback."""
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("Telegram update %s failed", update_id, exc_info=context.error)

    def _safe(self, exc: BaseException) -> str:
        """An exception's text without the bot token (PTB puts it in some messages)."""
        return _REDACTOR.redact(str(exc))

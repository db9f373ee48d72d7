"""Telegram input: `/name args` messages and inline-button presses, answered in the chat.

Both become `bot.chat.messages.Command`s for the core's dispatch (`callback_data` is
"verb:target"). A press is answered (a toast, or a dialog for refusals), and the pressed alert
is edited to say who pressed what and what came of it. A slow command's press (the catalogue
says which) that has no outcome within `answer_within` is answered "working on it" first.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import CallbackQuery, Message, Update, User
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from adapters import common
from adapters.telegram.delivery import Delivery, safe
from adapters.telegram.render import (
    CALLBACK_ANSWER_LIMIT,
    display_name,
    edited_text,
    escape,
    keyboard,
    parse_callback_data,
    press_line,
    render_reply,
)
from bot.chat.messages import Command, Dispatch, Reply, Sender

log = logging.getLogger(__name__)


class TelegramCommands:
    """The handlers PTB calls for commands, button presses and handler failures."""

    def __init__(
        self, delivery: Delivery, chat_ids: tuple[int, ...], *, answer_within: float
    ) -> None:
        self._delivery = delivery
        self._chat_ids = chat_ids
        self._answer_within = answer_within
        self.dispatch: Dispatch | None = None
        """The core's dispatch, set by the adapter's start."""

    def _sender(self, user: User, chat_id: int) -> Sender:
        return Sender(
            platform="telegram",
            user_id=user.id,
            display=display_name(user),
            in_alert_place=chat_id in self._chat_ids,
        )

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
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
            reply = await common.ask(self.dispatch, command)
        except Exception:
            await self._delivery.send_pages(
                message.chat_id, [escape(common.failure_note(name))], ()
            )
            raise  # the error handler logs it with the traceback
        if reply.silent:
            return  # a flood of refused commands is not answered message by message
        await self._delivery.send_pages(
            message.chat_id, render_reply(reply), reply.actions, reply_to=message.message_id
        )

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
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
        asked = asyncio.ensure_future(common.ask(self.dispatch, command))
        answered = False
        if common.is_slow(verb):
            # Telegram drops a press left unanswered for ~15s; an update can take longer
            done, _ = await asyncio.wait({asked}, timeout=self._answer_within)
            answered = not done
            if answered:
                await self._answer(query, f"{verb.capitalize()}: working on it...")
        try:
            reply = await asked
        except Exception:
            if not answered:
                await self._answer(query, common.failure_note(verb), alert=True)
            raise
        if reply.refused or reply.ephemeral:
            if not answered:
                await self._answer(query, reply.text, alert=True)
            elif query.message is not None:  # too late for a private answer
                await self._delivery.send_pages(query.message.chat.id, render_reply(reply), ())
            return
        if not answered:
            await self._answer(query, reply.text)
        await self._record_press(query, verb, reply)

    async def _answer(self, query: CallbackQuery, text: str, *, alert: bool = False) -> None:
        """Answer a press (a toast, or a dialog for refusals); a late answer is only logged."""
        short = text[:CALLBACK_ANSWER_LIMIT]
        try:
            await self._delivery.retrying(
                "answerCallbackQuery", lambda: query.answer(short, show_alert=alert)
            )
        except BadRequest as exc:
            log.warning("could not answer button press %s: %s", query.id, safe(exc))

    async def _record_press(self, query: CallbackQuery, verb: str, reply: Reply) -> None:
        """Edit the pressed alert: its text, who pressed what and the outcome; buttons removed."""
        message = query.message
        who = display_name(query.from_user)
        label = verb.capitalize()
        if not isinstance(message, Message) or message.text is None:
            if message is not None:
                await self._say_press(message.chat.id, who, label, reply)
            return
        for row in message.reply_markup.inline_keyboard if message.reply_markup else ():
            for button in row:
                if button.callback_data == query.data:
                    label = button.text
        text = edited_text(message.text_html, press_line(who, label, reply.text))
        try:
            await self._delivery.retrying(
                "editMessageText",
                lambda: message.edit_text(
                    text, parse_mode=ParseMode.HTML, reply_markup=keyboard(reply.actions)
                ),
            )
        except BadRequest as exc:
            # the alert may be too old to edit; say the outcome in the chat instead
            log.warning("could not edit alert %s: %s", message.message_id, safe(exc))
            await self._say_press(message.chat.id, who, label, reply)

    async def _say_press(self, chat_id: int, who: str, label: str, reply: Reply) -> None:
        """The press and its outcome as a message of its own, when the alert cannot be edited."""
        pages = render_reply(Reply(common.press_line(who, label, reply.text)))
        await self._delivery.send_pages(chat_id, pages, reply.actions)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log a handler's failure with its traceback."""
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("Telegram update %s failed", update_id, exc_info=context.error)

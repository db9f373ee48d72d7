"""What every chat adapter must do, told once as scenarios and run against each platform.

A `ChatDriver` plays the people in one platform's chat against its stand-in (tests/standins)
and reads back what the bot did there, in neutral words: the texts of an answer, an alert as
its plain text and its buttons, the private answers to a button press. Each driver keeps its
platform's idiom where it reads them (a private answer is a Discord follow-up flagged ephemeral,
a Telegram callback answer; a refusal is a Telegram dialog), so a scenario that passes for both
has checked that idiom too. test_chat_contract.py runs every scenario against every driver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from adapters.discord.adapter import DiscordAdapter
from adapters.discord.slash import option_name
from adapters.telegram.adapter import TelegramAdapter
from adapters.telegram.render import MESSAGE_LIMIT as TELEGRAM_LIMIT
from bot.chat.catalogue import command
from bot.chat.messages import Action, Alert, AlertKind, ChatAdapter, Command, Field, Reply, Sender
from bot.config.settings import Settings
from tests.e2e.conftest import TELEGRAM_ADMIN, TELEGRAM_ALERT_CHATS, TELEGRAM_OTHER
from tests.e2e.discord_fixtures import DISCORD_ADMIN, DISCORD_MEMBER, BotFactory
from tests.standins.discord import BOT_TOKEN, CHANNEL_ID, EPHEMERAL, GUILD_ID, DiscordStandin
from tests.standins.telegram import TelegramStandin

DISCORD_LIMIT = 2000


@dataclass
class ScriptedCore:
    """A stand-in for the core's dispatch: records commands, answers from a script."""

    commands: list[Command] = field(default_factory=list)
    replies: dict[str, Reply] = field(default_factory=dict)
    gate: asyncio.Event | None = None  # when set, answers wait for it to open

    async def __call__(self, command: Command) -> Reply:
        self.commands.append(command)
        if self.gate is not None:
            await self.gate.wait()
        default = Reply(" ".join(("done:", command.name, *command.args)))
        return self.replies.get(command.name, default)


def update_alert(update_id: str = "u1") -> Alert:
    """An update alert with three buttons; no text in it means anything in markdown or HTML."""
    return Alert(
        kind=AlertKind.UPDATE_AVAILABLE,
        title="Update for web",
        text="A newer image is out for registry.example.com/app:1",
        fields=(Field("Image", "registry.example.com/app:1"), Field("Policy", "approve")),
        actions=(Action("approve", update_id), Action("ignore", update_id),
                 Action("snooze", "web", label="Snooze 1d")),
        update_id=update_id,
        container="web",
    )


@dataclass(frozen=True)
class Posted:
    """A message of the bot as the chat shows it now, in plain words."""

    ref: Any  # the platform's handle of the message
    text: str  # everything it says, one line per part
    buttons: tuple[tuple[str, str, str], ...]  # (label, verb, target)
    raw: dict[str, Any]  # the stand-in's record, for "left exactly as it was"


class ChatDriver(Protocol):
    """One platform's chat, driven through its stand-in."""

    platform: str
    admin: int  # a user on the admin lists, writing in the alert place
    stranger: int  # a user in the alert place who is no admin
    token: str  # the secret that must never show
    places: int  # alert places an alert goes to
    limit: int  # characters of one message

    async def start(self, core: Callable[[Command], Awaitable[Reply]]) -> ChatAdapter:
        """Start the adapter against the stand-in with `core` as the dispatch."""
        ...

    async def stop(self) -> None:
        """Stop the adapter."""
        ...

    def sender(self, user: int) -> Sender:
        """The sender the adapter must report for `user` writing in the alert place."""
        ...

    def offered(self) -> list[str]:
        """The command names the platform shows users, in order."""
        ...

    async def send(self, user: int, name: str, *words: str) -> Any:
        """`user` runs `/name words...`; returns a handle for `answers`."""
        ...

    def answers(self, sent: Any) -> list[str]:
        """The texts answering one command so far, in order."""
        ...

    def alerts(self) -> list[Posted]:
        """The bot's posts in the (first) alert place, oldest first, as they stand now."""
        ...

    async def press(self, alert: Posted, verb: str, target: str, user: int) -> Any:
        """`user` presses the button `verb:target` under `alert`; returns a handle."""
        ...

    def private_answers(self, pressed: Any, *, refusal: bool) -> list[str]:
        """What only the presser saw in answer so far: refusals, or else outcomes."""
        ...

    def untouched(self, alert: Posted) -> bool:
        """Whether `alert` was never edited."""
        ...

    def rate_limit_alerts(self, count: int) -> None:
        """Refuse the next `count` posts of alerts with a rate limit."""
        ...

    def alert_posts(self) -> int:
        """How many times the bot tried to post an alert."""
        ...

    def disturb_next_alert(self) -> None:
        """Make the next post of an alert fail once in a way the adapter retries and logs."""
        ...


async def posted_alert(chat: ChatDriver, core: ScriptedCore) -> Posted:
    """Start the adapter of `chat` and post `update_alert()`; the alert as the chat shows it."""
    adapter = await chat.start(core)
    await adapter.notify(update_alert())
    [alert] = chat.alerts()
    return alert


class TelegramDriver:
    """Telegram: the first alert chat is where people write and press."""

    platform = "telegram"
    admin = TELEGRAM_ADMIN
    stranger = TELEGRAM_OTHER
    places = len(TELEGRAM_ALERT_CHATS)
    limit = TELEGRAM_LIMIT
    _chat = TELEGRAM_ALERT_CHATS[0]
    _usernames = {TELEGRAM_ADMIN: "ops_anna"}

    def __init__(self, standin: TelegramStandin, settings: Settings) -> None:
        self.standin = standin
        self.token = standin.token
        self._settings = settings
        self._adapter: TelegramAdapter | None = None

    async def start(self, core: Callable[[Command], Awaitable[Reply]]) -> ChatAdapter:
        adapter = TelegramAdapter(self._settings, attempts=3, backoff=0.05, poll_timeout=2)
        await adapter.start(core)
        self._adapter = adapter
        return adapter

    async def stop(self) -> None:
        if self._adapter is not None:
            await self._adapter.stop()

    def sender(self, user: int) -> Sender:
        name = self._usernames.get(user)
        display = f"@{name}" if name else f"User {user}"
        return Sender("telegram", user, display, in_alert_place=True)

    def offered(self) -> list[str]:
        return [c["command"] for c in self.standin.commands]

    async def send(self, user: int, name: str, *words: str) -> Any:
        before = {m["message_id"] for m in self.standin.sent_messages(self._chat)}
        text = " ".join((f"/{name}", *words))
        self.standin.push_message(self._chat, user, text, username=self._usernames.get(user))
        return before

    def answers(self, sent: Any) -> list[str]:
        return [str(m["text"]) for m in self.standin.sent_messages(self._chat)
                if m["message_id"] not in sent]

    def alerts(self) -> list[Posted]:
        return [self._posted(m) for m in self.standin.sent_messages(self._chat)]

    @staticmethod
    def _posted(message: dict[str, Any]) -> Posted:
        rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        buttons = tuple((b["text"], *b["callback_data"].split(":", 1))
                        for row in rows for b in row)
        return Posted(message["message_id"], str(message["text"]), buttons, dict(message))

    async def press(self, alert: Posted, verb: str, target: str, user: int) -> Any:
        before = len(self.standin.callback_answers)
        self.standin.press_button(self._chat, user, alert.ref, f"{verb}:{target}",
                                  username=self._usernames.get(user))
        return before

    def private_answers(self, pressed: Any, *, refusal: bool) -> list[str]:
        # a refusal is a dialog the presser must dismiss; an outcome a toast
        return [str(a.get("text")) for a in self.standin.callback_answers[pressed:]
                if bool(a.get("show_alert")) is refusal]

    def untouched(self, alert: Posted) -> bool:
        now = self.standin.messages[(self._chat, alert.ref)]
        return now == alert.raw and not self.standin.edits

    def rate_limit_alerts(self, count: int) -> None:
        self.standin.fail_next("sendMessage", count, status=429, retry_after=1)

    def alert_posts(self) -> int:
        return len(self.standin.calls_of("sendMessage"))

    def disturb_next_alert(self) -> None:
        self.standin.fail_next("sendMessage", 1, status=502)


class DiscordDriver:
    """Discord: people write and press in the alert channel's guild."""

    platform = "discord"
    admin = DISCORD_ADMIN
    stranger = DISCORD_MEMBER
    token = BOT_TOKEN
    places = 1
    limit = DISCORD_LIMIT

    def __init__(self, standin: DiscordStandin, settings: Settings, bots: BotFactory) -> None:
        self.standin = standin
        self._settings = settings
        self._bots = bots
        self._adapter: DiscordAdapter | None = None

    async def start(self, core: Callable[[Command], Awaitable[Reply]]) -> ChatAdapter:
        self._adapter = await self._bots(self._settings, core)
        return self._adapter

    async def stop(self) -> None:
        if self._adapter is not None:
            await self._adapter.stop()

    def sender(self, user: int) -> Sender:
        # every member holds the guild's @everyone role, whose id is the guild's
        return Sender("discord", user, f"user{user}", role_ids=(GUILD_ID,), in_alert_place=True)

    def offered(self) -> list[str]:
        return [c["name"] for c in self.standin.commands[str(GUILD_ID)]]

    async def send(self, user: int, name: str, *words: str) -> Any:
        options = {option_name(argument): word
                   for argument, word in zip(command(name).arguments, words, strict=False)}
        return await self.standin.slash(name, dict(options), user_id=user)

    def answers(self, sent: Any) -> list[str]:
        callback = sent.callback or {}
        first = [callback["data"]["content"]] if callback.get("type") == 4 else []
        return [*first, *(f["content"] for f in sent.followups)]

    def alerts(self) -> list[Posted]:
        return [self._posted(m) for m in self.standin.channel_messages(CHANNEL_ID)]

    @staticmethod
    def _posted(message: dict[str, Any]) -> Posted:
        [embed] = message["embeds"]
        lines = [embed["title"], embed.get("description") or ""]
        lines += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
        buttons = tuple((b["label"], *b["custom_id"].split(":", 2)[1:])
                        for row in message["components"] for b in row["components"])
        return Posted(message["id"], "\n".join(lines), buttons, dict(message))

    async def press(self, alert: Posted, verb: str, target: str, user: int) -> Any:
        return await self.standin.press(alert.ref, f"dockwarden:{verb}:{target}", user_id=user)

    def private_answers(self, pressed: Any, *, refusal: bool) -> list[str]:
        # a press is acknowledged without a message of its own; what follows is for the presser
        if pressed.callback is not None:
            assert pressed.callback == {"type": 6}
        return [f["content"] for f in pressed.followups if f.get("flags") == EPHEMERAL]

    def untouched(self, alert: Posted) -> bool:
        now = self.standin.messages[alert.ref]
        return now["edited_timestamp"] is None and now == alert.raw

    def rate_limit_alerts(self, count: int) -> None:
        self.standin.rate_limit(count)

    def alert_posts(self) -> int:
        return len(self.standin.calls("POST", f"/channels/{CHANNEL_ID}/messages"))

    def disturb_next_alert(self) -> None:
        self.standin.rate_limit(1)  # a bare 429: discord.py gives up, DockWarden retries

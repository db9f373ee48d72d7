"""The Telegram adapter with the real python-telegram-bot against the local Bot API stand-in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.telegram.adapter import TelegramAdapter
from bot.chat.catalogue import COMMANDS, command, usage
from bot.chat.messages import Action, Alert, AlertKind, Command, Field, Reply, Sender
from bot.config.settings import Settings
from bot.errors import ConfigError, DockWardenError
from tests.e2e.conftest import TELEGRAM_ADMIN, TELEGRAM_ALERT_CHATS, TELEGRAM_OTHER
from tests.e2e.contract import ScriptedCore
from tests.standins.telegram import TelegramStandin, wait_for

pytestmark = pytest.mark.e2e

CHAT = TELEGRAM_ALERT_CHATS[0]


@pytest.fixture
def core() -> ScriptedCore:
    return ScriptedCore()


@pytest.fixture
async def adapter(
    telegram_settings: Settings, core: ScriptedCore
) -> AsyncIterator[TelegramAdapter]:
    """A started adapter (short backoff so network-error tests stay quick)."""
    adapter = TelegramAdapter(telegram_settings, attempts=3, backoff=0.05, poll_timeout=2)
    await adapter.start(core)
    yield adapter
    await adapter.stop()


def update_alert(update_id: str = "u1") -> Alert:
    return Alert(
        kind=AlertKind.UPDATE_AVAILABLE,
        title="Update for my_app.web_1",
        text="New digest <sha256:abc> for ghcr.io/acme/my_app:1.2_rc & friends",
        fields=(Field("image", "ghcr.io/acme/my_app:1.2_rc"), Field("policy", "approve")),
        actions=(
            Action("approve", update_id),
            Action("ignore", "my_app.web_1"),
            Action("snooze", "my_app.web_1", label="Snooze 1d"),
        ),
        update_id=update_id,
        container="my_app.web_1",
    )


async def test_start_registers_every_catalogue_command_with_its_summary_and_usage(
    adapter: TelegramAdapter, telegram_standin: TelegramStandin
) -> None:
    names = [c["command"] for c in telegram_standin.commands]
    assert names == [
        "status", "check", "updates", "approve", "pull", "ignore", "snooze", "rollback", "history",
        "help",
    ]
    assert names == [spec.name for spec in COMMANDS]
    described = {c["command"]: c["description"] for c in telegram_standin.commands}
    assert described["status"] == command("status").summary
    assert described["history"] == f"{command('history').summary} /history [name]"
    for spec in COMMANDS:
        assert described[spec.name].startswith(spec.summary)
        assert described[spec.name].endswith(usage(spec) if spec.arguments else spec.summary)


async def test_command_arguments_and_a_private_chat_sender(
    adapter: TelegramAdapter, telegram_standin: TelegramStandin, core: ScriptedCore
) -> None:
    telegram_standin.push_message(TELEGRAM_OTHER, TELEGRAM_OTHER, "/snooze my_app.web_1 2h")

    await wait_for(lambda: core.commands, "/snooze to reach dispatch")
    assert core.commands == [Command(
        "snooze", ("my_app.web_1", "2h"),
        Sender("telegram", TELEGRAM_OTHER, f"User {TELEGRAM_OTHER}", in_alert_place=False),
    )]
    await wait_for(lambda: telegram_standin.sent_messages(TELEGRAM_OTHER), "the reply")


async def test_group_command_addressed_to_this_bot_is_taken_and_to_another_bot_is_not(
    adapter: TelegramAdapter, telegram_standin: TelegramStandin, core: ScriptedCore
) -> None:
    telegram_standin.push_message(CHAT, TELEGRAM_ADMIN, "/status@some_other_bot")
    telegram_standin.push_message(CHAT, TELEGRAM_ADMIN, "/history@dockwarden_test_bot web_1")

    await wait_for(lambda: telegram_standin.sent_messages(CHAT), "the /history reply")
    assert [(c.name, c.args) for c in core.commands] == [("history", ("web_1",))]


async def test_unknown_command_goes_to_the_core_which_answers_it(
    adapter: TelegramAdapter, telegram_standin: TelegramStandin, core: ScriptedCore
) -> None:
    core.replies["frobnicate"] = Reply("Unknown command /frobnicate. Send /help for the list.")
    telegram_standin.push_message(CHAT, TELEGRAM_ADMIN, "/frobnicate now")

    [reply] = await wait_for(lambda: telegram_standin.sent_messages(CHAT), "the answer")
    assert [(c.name, c.args) for c in core.commands] == [("frobnicate", ("now",))]
    assert reply["text"].startswith("Unknown command /frobnicate")


async def test_a_silent_refusal_sends_nothing_to_the_chat(
    adapter: TelegramAdapter, telegram_standin: TelegramStandin, core: ScriptedCore
) -> None:
    core.replies["status"] = Reply("not allowed", refused=True, silent=True)
    core.replies["help"] = Reply("the list")
    telegram_standin.push_message(CHAT, TELEGRAM_OTHER, "/status")
    await wait_for(lambda: core.commands, "/status to reach dispatch")
    telegram_standin.push_message(CHAT, TELEGRAM_OTHER, "/help")  # answered after /status was

    [reply] = await wait_for(lambda: telegram_standin.sent_messages(CHAT), "the /help answer")
    assert [c.name for c in core.commands] == ["status", "help"]
    assert reply["text"] == "the list"


async def test_alerts_go_out_before_start_and_are_refused_after_stop(
    telegram_settings: Settings, telegram_standin: TelegramStandin, core: ScriptedCore
) -> None:
    adapter = TelegramAdapter(telegram_settings, poll_timeout=2)
    await adapter.notify(update_alert())  # alert-only use: no polling needed
    assert [len(telegram_standin.sent_messages(c)) for c in TELEGRAM_ALERT_CHATS] == [1, 1]
    await adapter.start(core)
    await adapter.stop()

    with pytest.raises(DockWardenError, match="not running"):
        await adapter.notify(update_alert("u2"))
    assert [len(telegram_standin.sent_messages(c)) for c in TELEGRAM_ALERT_CHATS] == [1, 1]


async def test_alert_with_buttons_arrives_escaped_in_each_alert_chat(
    adapter: TelegramAdapter, telegram_standin: TelegramStandin
) -> None:
    await adapter.notify(update_alert())

    for chat in TELEGRAM_ALERT_CHATS:
        [message] = telegram_standin.sent_messages(chat)
        assert message["text"] == (
            "Update for my_app.web_1\n"
            "New digest <sha256:abc> for ghcr.io/acme/my_app:1.2_rc & friends\n"
            "image: ghcr.io/acme/my_app:1.2_rc\n"
            "policy: approve"
        )
        assert "&lt;sha256:abc&gt;" in message["html"] and "&amp; friends" in message["html"]
        bold = [(e["offset"], e["length"]) for e in message["entities"] if e["type"] == "bold"]
        assert (0, len("Update for my_app.web_1")) in bold
        [row] = message["reply_markup"]["inline_keyboard"]
        assert [(b["text"], b["callback_data"]) for b in row] == [
            ("Approve", "approve:u1"),
            ("Ignore", "ignore:my_app.web_1"),
            ("Snooze 1d", "snooze:my_app.web_1"),
        ]


async def test_a_pressed_alert_keeps_its_bold_title_and_only_that_message_is_edited(
    adapter: TelegramAdapter, telegram_standin: TelegramStandin, core: ScriptedCore
) -> None:
    # who pressed what and the outcome: tests/e2e/test_chat_contract.py, for every platform
    core.replies["approve"] = Reply("my_app.web_1 updated to sha256:def")
    await adapter.notify(update_alert())
    [alert] = telegram_standin.sent_messages(CHAT)
    original = alert["text"]  # the stand-in edits this very record

    telegram_standin.press_button(
        CHAT, TELEGRAM_ADMIN, alert["message_id"], "approve:u1", username="ops_anna"
    )

    await wait_for(lambda: telegram_standin.edits, "the alert to be edited")
    edited = telegram_standin.messages[(CHAT, alert["message_id"])]
    assert edited["text"] == (
        f"{original}\n\n@ops_anna pressed Approve: my_app.web_1 updated to sha256:def"
    )
    assert any(e["type"] == "bold" and e["offset"] == 0 for e in edited["entities"])
    [other_chat_alert] = telegram_standin.sent_messages(TELEGRAM_ALERT_CHATS[1])
    assert "reply_markup" in other_chat_alert, "only the pressed message is edited"


@pytest.fixture
async def gated_alert(
    telegram_settings: Settings, telegram_standin: TelegramStandin, core: ScriptedCore
) -> AsyncIterator[dict[str, Any]]:
    """An alert sent by an adapter that answers a slow press after 0.1s; the core waits for
    `core.gate` before it answers."""
    adapter = TelegramAdapter(telegram_settings, poll_timeout=2, answer_within=0.1)
    await adapter.start(core)
    core.gate = asyncio.Event()
    try:
        await adapter.notify(update_alert())
        [alert] = telegram_standin.sent_messages(CHAT)
        yield alert
    finally:
        core.gate.set()
        await adapter.stop()


async def test_slow_approval_answers_the_press_at_once_and_edits_when_done(
    gated_alert: dict[str, Any], telegram_standin: TelegramStandin, core: ScriptedCore
) -> None:
    assert command("approve").slow
    assert core.gate is not None
    core.replies["approve"] = Reply("my_app.web_1: updated")

    telegram_standin.press_button(CHAT, TELEGRAM_ADMIN, gated_alert["message_id"], "approve:u1")

    [answer] = await wait_for(lambda: telegram_standin.callback_answers, "an early answer")
    assert answer["text"] == "Approve: working on it..."
    assert telegram_standin.edits == []
    core.gate.set()
    [edit] = await wait_for(lambda: telegram_standin.edits, "the edit with the outcome")
    assert edit["plain_text"].endswith("pressed Approve: my_app.web_1: updated")
    assert len(telegram_standin.callback_answers) == 1


async def test_a_press_of_a_quick_command_is_answered_with_its_outcome_however_long_it_takes(
    gated_alert: dict[str, Any], telegram_standin: TelegramStandin, core: ScriptedCore
) -> None:
    assert not command("snooze").slow
    assert core.gate is not None
    core.replies["snooze"] = Reply("Snoozed my_app.web_1 for 1d")

    telegram_standin.press_button(
        CHAT, TELEGRAM_ADMIN, gated_alert["message_id"], "snooze:my_app.web_1"
    )

    await wait_for(lambda: core.commands, "the press to reach dispatch")
    await asyncio.sleep(0.4)  # well past answer_within: a slow command had its early answer
    assert telegram_standin.callback_answers == []
    core.gate.set()
    [answer] = await wait_for(lambda: telegram_standin.callback_answers, "the answer")
    assert answer["text"] == "Snoozed my_app.web_1 for 1d"
    [edit] = await wait_for(lambda: telegram_standin.edits, "the edit with the outcome")
    assert edit["plain_text"].endswith("pressed Snooze 1d: Snoozed my_app.web_1 for 1d")


async def test_network_errors_are_retried_then_reported_not_dropped(
    adapter: TelegramAdapter, telegram_standin: TelegramStandin
) -> None:
    telegram_standin.fail_next("sendMessage", 2, status=502)
    await adapter.notify(update_alert())
    assert [len(telegram_standin.sent_messages(c)) for c in TELEGRAM_ALERT_CHATS] == [1, 1]

    telegram_standin.fail_next("sendMessage", 100, status=502)
    with pytest.raises(DockWardenError) as failed:
        await adapter.notify(update_alert("u2"))
    assert str(TELEGRAM_ALERT_CHATS[0]) in str(failed.value)
    assert str(TELEGRAM_ALERT_CHATS[1]) in str(failed.value)
    assert len(telegram_standin.calls_of("sendMessage")) == 4 + 2 * 3  # bounded: 3 per chat


async def test_a_retried_alert_goes_only_to_the_chats_that_missed_it(
    adapter: TelegramAdapter, telegram_standin: TelegramStandin
) -> None:
    telegram_standin.fail_next("sendMessage", 100, status=502, chat_id=TELEGRAM_ALERT_CHATS[1])
    with pytest.raises(DockWardenError):
        await adapter.notify(update_alert())
    assert len(telegram_standin.sent_messages(TELEGRAM_ALERT_CHATS[0])) == 1
    telegram_standin.clear_failures()

    await adapter.notify(update_alert())  # the core's retry of the same alert

    assert [len(telegram_standin.sent_messages(c)) for c in TELEGRAM_ALERT_CHATS] == [1, 1]


async def test_stop_leaves_no_task_behind(
    telegram_settings: Settings, telegram_standin: TelegramStandin, core: ScriptedCore
) -> None:
    adapter = TelegramAdapter(telegram_settings, poll_timeout=2)
    before = asyncio.all_tasks()
    await adapter.start(core)
    telegram_standin.push_message(CHAT, TELEGRAM_ADMIN, "/help")
    await wait_for(lambda: telegram_standin.sent_messages(CHAT), "the /help reply")

    await adapter.stop()

    def ptb_tasks() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() - before if "telegram" in repr(t.get_coro())]

    assert ptb_tasks() == []
    assert telegram_standin.calls_of("getUpdates")[-1].params.get("timeout") == 0


async def test_stop_lets_a_command_under_way_finish_and_answer(
    telegram_settings: Settings, telegram_standin: TelegramStandin, core: ScriptedCore
) -> None:
    adapter = TelegramAdapter(telegram_settings, poll_timeout=2)
    await adapter.start(core)
    core.gate = asyncio.Event()
    telegram_standin.push_message(CHAT, TELEGRAM_ADMIN, "/check")
    await wait_for(lambda: core.commands, "/check to reach dispatch")

    stopping = asyncio.ensure_future(adapter.stop())
    await asyncio.sleep(0)
    core.gate.set()
    await stopping

    [reply] = telegram_standin.sent_messages(CHAT)
    assert reply["text"] == "done: check"
    assert len(telegram_standin.calls_of("getMe")) == 1, "answered on the stopping connection"
    with pytest.raises(DockWardenError):
        await adapter.notify(update_alert())


async def test_bad_token_is_a_config_error_that_does_not_show_the_token(
    telegram_settings: Settings, telegram_standin: TelegramStandin, core: ScriptedCore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "999999:WRONG-but-secret"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        TELEGRAM_BOT_TOKEN=secret,
        TELEGRAM_CHAT_IDS=str(CHAT),
        TELEGRAM_API_BASE_URL=telegram_standin.url,
    )
    caplog.set_level(logging.DEBUG)
    adapter = TelegramAdapter(settings)

    with pytest.raises(ConfigError) as refused:
        await adapter.start(core)

    assert "TELEGRAM_BOT_TOKEN" in str(refused.value)
    assert secret not in str(refused.value)
    assert not any(secret in r.getMessage() or secret in (r.exc_text or "")
                   for r in caplog.records)

"""Every chat adapter, scenario by scenario: the same contract for Telegram and Discord.

The scenarios are written once against `tests.e2e.contract.ChatDriver`; each runs with the real
python-telegram-bot and the real discord.py against their stand-ins. What only one platform
does (HTML entities, embeds, slash-command options, deferral, webhooks) is tested in
test_telegram.py and test_discord.py.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from adapters.common import failure_note, press_line
from bot.chat.catalogue import COMMANDS
from bot.chat.messages import Command, Reply
from bot.errors import DockWardenError
from tests.e2e import discord_fixtures
from tests.e2e.contract import (
    ChatDriver,
    DiscordDriver,
    ScriptedCore,
    TelegramDriver,
    posted_alert,
    update_alert,
)
from tests.e2e.discord_fixtures import BotFactory
from tests.standins.discord import DiscordStandin
from tests.standins.telegram import TelegramStandin, wait_for

pytestmark = pytest.mark.e2e

discord_standin = discord_fixtures.discord_standin
discord_settings = discord_fixtures.discord_settings
discord_bot = discord_fixtures.discord_bot


@pytest.fixture(params=["telegram", "discord"])
def driver(request: pytest.FixtureRequest) -> ChatDriver:
    """A driver of one platform's chat, its stand-in running (the adapter not yet started)."""
    if request.param == "telegram":
        standin: TelegramStandin = request.getfixturevalue("telegram_standin")
        return TelegramDriver(standin, request.getfixturevalue("telegram_settings"))
    discord: DiscordStandin = request.getfixturevalue("discord_standin")
    bots: BotFactory = request.getfixturevalue("discord_bot")
    return DiscordDriver(discord, request.getfixturevalue("discord_settings"), bots)


@pytest.fixture
async def chat(driver: ChatDriver) -> AsyncIterator[ChatDriver]:
    """The driver; its adapter is stopped at the end."""
    yield driver
    await driver.stop()


@pytest.fixture
def core() -> ScriptedCore:
    return ScriptedCore()


async def test_every_catalogue_command_is_offered_in_the_catalogues_order(
    chat: ChatDriver, core: ScriptedCore
) -> None:
    await chat.start(core)
    assert chat.offered() == [spec.name for spec in COMMANDS]


async def test_a_command_reaches_the_core_with_its_sender_and_its_answer_arrives(
    chat: ChatDriver, core: ScriptedCore
) -> None:
    core.replies["status"] = Reply("web: up to date\nredis: update pending")
    await chat.start(core)

    sent = await chat.send(chat.admin, "status")

    answers = await wait_for(lambda: chat.answers(sent), "the /status answer")
    assert core.commands == [Command("status", (), chat.sender(chat.admin))]
    assert answers == ["web: up to date\nredis: update pending"]


async def test_a_commands_arguments_reach_the_core_in_order(
    chat: ChatDriver, core: ScriptedCore
) -> None:
    await chat.start(core)

    sent = await chat.send(chat.admin, "snooze", "web", "2h")

    assert await wait_for(lambda: chat.answers(sent), "the answer") == ["done: snooze web 2h"]
    assert [(c.name, c.args) for c in core.commands] == [("snooze", ("web", "2h"))]


async def test_an_alert_shows_its_title_text_fields_and_one_button_per_action(
    chat: ChatDriver, core: ScriptedCore
) -> None:
    adapter = await chat.start(core)
    alert = update_alert()

    await adapter.notify(alert)

    [posted] = chat.alerts()
    lines = posted.text.splitlines()
    assert lines[:2] == [alert.title, alert.text]
    assert [f"{f.name}: {f.value}" for f in alert.fields] == lines[2:]
    assert posted.buttons == (
        ("Approve", "approve", "u1"), ("Ignore", "ignore", "u1"), ("Snooze 1d", "snooze", "web"))


async def test_an_admin_press_reaches_the_core_and_the_alert_says_who_pressed_what(
    chat: ChatDriver, core: ScriptedCore
) -> None:
    core.replies["approve"] = Reply("web updated to sha256:def")
    alert = await posted_alert(chat, core)

    pressed = await chat.press(alert, "approve", "u1", chat.admin)

    outcome = await wait_for(lambda: chat.private_answers(pressed, refusal=False), "the answer")
    assert outcome == ["web updated to sha256:def"]
    assert core.commands == [Command("approve", ("u1",), chat.sender(chat.admin))]
    [marked] = await wait_for(lambda: [a for a in chat.alerts() if not a.buttons], "the mark")
    assert marked.text.startswith(alert.text)
    who = chat.sender(chat.admin).display
    assert marked.text.endswith(press_line(who, "Approve", "web updated to sha256:def"))
    assert len(chat.alerts()) == 1, "the outcome is said on the alert, not in a new message"


async def test_a_refused_press_is_answered_privately_and_the_alert_stays_as_it_was(
    chat: ChatDriver, core: ScriptedCore
) -> None:
    core.replies["approve"] = Reply(
        "Only DockWarden admins may approve updates.", ephemeral=True, refused=True
    )
    alert = await posted_alert(chat, core)

    pressed = await chat.press(alert, "approve", "u1", chat.stranger)

    refusal = await wait_for(lambda: chat.private_answers(pressed, refusal=True), "the refusal")
    assert refusal == ["Only DockWarden admins may approve updates."]
    assert [c.sender.user_id for c in core.commands] == [chat.stranger]
    assert chat.untouched(alert)
    assert chat.alerts() == [alert], "no refusal posted where everyone sees it"


async def test_a_rate_limited_alert_is_retried_and_arrives_exactly_once(
    chat: ChatDriver, core: ScriptedCore
) -> None:
    adapter = await chat.start(core)
    chat.rate_limit_alerts(1)

    await adapter.notify(update_alert())

    assert len(chat.alerts()) == 1
    assert chat.alert_posts() == 1 + chat.places  # the refused post, then one per alert place


async def test_a_long_answer_arrives_whole_and_in_order_in_messages_the_platform_takes(
    chat: ChatDriver, core: ScriptedCore
) -> None:
    lines = [f"{i:04d} registry.example.com/team{i}/image{i}:v1.{i}" for i in range(400)]
    core.replies["history"] = Reply("\n".join(lines))
    await chat.start(core)

    sent = await chat.send(chat.admin, "history")

    def whole() -> list[str] | None:
        parts = chat.answers(sent)
        return parts if "\n".join(parts).endswith(lines[-1]) else None

    parts = await wait_for(whole, "every part of the /history answer")
    assert len(parts) > 1
    assert all(len(part) <= chat.limit for part in parts)
    assert "\n".join(parts) == "\n".join(lines)


async def test_a_failing_core_gets_the_one_apology_and_its_traceback_is_logged(
    chat: ChatDriver, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(command: Command) -> Reply:
        raise RuntimeError("store on fire")

    await chat.start(broken)

    sent = await chat.send(chat.admin, "status")

    assert await wait_for(lambda: chat.answers(sent), "the apology") == [failure_note("status")]
    [record] = await wait_for(
        lambda: [r for r in caplog.records if r.levelno >= logging.ERROR], "the logged failure"
    )
    assert record.exc_info is not None and "store on fire" in str(record.exc_info[1])
    caplog.clear()  # the one error expected (the Discord fixture fails on any other)


async def test_an_alert_for_a_stopped_adapter_raises_instead_of_vanishing(
    chat: ChatDriver, core: ScriptedCore
) -> None:
    adapter = await chat.start(core)
    await chat.stop()

    with pytest.raises(DockWardenError, match="not running"):
        await adapter.notify(update_alert())
    assert chat.alerts() == []


async def test_the_token_never_appears_in_logs_through_a_whole_exchange(
    chat: ChatDriver, core: ScriptedCore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    adapter = await chat.start(core)
    chat.disturb_next_alert()
    await adapter.notify(update_alert())
    [alert] = chat.alerts()
    pressed = await chat.press(alert, "approve", "u1", chat.admin)
    await wait_for(lambda: chat.private_answers(pressed, refusal=False), "the answer")
    sent = await chat.send(chat.admin, "status")
    await wait_for(lambda: chat.answers(sent), "the /status answer")
    await chat.stop()

    assert caplog.records, "DEBUG logging was on"
    leaks = [r.getMessage() for r in caplog.records
             if chat.token in r.getMessage() or chat.token in (r.exc_text or "")]
    assert leaks == []

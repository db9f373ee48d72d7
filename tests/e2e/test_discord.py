"""The Discord adapter end to end: real discord.py against the local REST + gateway stand-in."""

from __future__ import annotations

import asyncio
import logging
import socket

import discord.http
import pytest

from adapters.common import failure_note
from adapters.discord.adapter import DiscordAdapter
from adapters.discord.webhook import DiscordWebhookAdapter
from bot.chat.messages import Action, Alert, AlertKind, Command, Field, Reply
from bot.config.settings import Settings
from bot.errors import DockWardenError
from tests.e2e import discord_fixtures
from tests.e2e.discord_fixtures import (
    DISCORD_ADMIN,
    DISCORD_MEMBER,
    DISCORD_ROLE_ADMIN,
    BotFactory,
    RecordingDispatch,
    discord_settings_for,
)
from tests.standins.discord import (
    ADMIN_ROLE_ID,
    BOT_TOKEN,
    CHANNEL_ID,
    EPHEMERAL,
    GUILD_ID,
    OTHER_GUILD_ID,
    WEBHOOK_TOKEN,
    DiscordStandin,
)

pytestmark = pytest.mark.e2e

# The fixtures live in a module of their own; naming them here makes pytest find them.
discord_standin = discord_fixtures.discord_standin
discord_settings = discord_fixtures.discord_settings
discord_bot = discord_fixtures.discord_bot

COMMANDS = {"status", "check", "updates", "approve", "pull", "ignore", "snooze", "rollback",
            "history", "help"}


def update_alert(update_id: str = "u-1") -> Alert:
    return Alert(
        kind=AlertKind.UPDATE_AVAILABLE,
        title="Update available for web",
        text="127.0.0.1:5000/app:1 has a newer image.",
        fields=(
            Field("Image", "127.0.0.1:5000/app:1"),
            Field("Current", "sha256:" + "a" * 64),
            Field("New", "sha256:" + "b" * 64),
            Field("Registry", "127.0.0.1:5000"),
            Field("Policy", "approve"),
        ),
        actions=(Action("approve", update_id), Action("ignore", update_id),
                 Action("snooze", update_id)),
        update_id=update_id,
        container="web",
    )


def buttons(message: dict[str, object]) -> list[dict[str, object]]:
    rows = message["components"]
    assert isinstance(rows, list)
    return [button for row in rows for button in row["components"]]


async def test_commands_are_synced_to_the_configured_guild(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    await discord_bot(discord_settings, RecordingDispatch())
    synced = {c["name"] for c in discord_standin.commands[str(GUILD_ID)]}
    assert synced == COMMANDS
    assert "global" not in discord_standin.commands
    options = {c["name"]: c.get("options", []) for c in discord_standin.commands[str(GUILD_ID)]}
    assert [o["autocomplete"] for o in options["pull"]] == [True]
    # the catalogue's arguments: /snooze's duration may be left out (the default applies)
    assert [(o["name"], o["required"]) for o in options["snooze"]] == [
        ("name", True), ("duration", False)]
    assert [(o["name"], o["autocomplete"]) for o in options["approve"]] == [("id", True)]
    assert [(o["name"], o["type"], o["min_value"]) for o in options["updates"]] == [
        ("page", 4, 1)]


async def test_commands_are_synced_globally_without_a_guild(
    discord_standin: DiscordStandin, tmp_path: object, discord_bot: BotFactory
) -> None:
    await discord_bot(discord_settings_for(discord_standin, tmp_path), RecordingDispatch())
    assert {c["name"] for c in discord_standin.commands["global"]} == COMMANDS
    assert list(discord_standin.commands) == ["global"]


async def test_an_alert_is_one_embed_with_three_buttons_carrying_the_update_id(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    adapter = await discord_bot(discord_settings, RecordingDispatch())
    await adapter.notify(update_alert("u-42"))
    [message] = discord_standin.channel_messages(CHANNEL_ID)
    [embed] = message["embeds"]
    assert embed["title"] == "Update available for web"
    assert {f["name"]: f["value"] for f in embed["fields"]} == {
        "Image": "127.0.0.1:5000/app:1", "Current": "sha256:" + "a" * 64,
        "New": "sha256:" + "b" * 64, "Registry": "127.0.0.1:5000", "Policy": "approve"}
    assert [(b["label"], b["custom_id"]) for b in buttons(message)] == [
        ("Approve", "dockwarden:approve:u-42"), ("Ignore", "dockwarden:ignore:u-42"),
        ("Snooze", "dockwarden:snooze:u-42")]


async def test_an_admin_press_reaches_dispatch_and_marks_the_alert(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    dispatch = RecordingDispatch()
    adapter = await discord_bot(discord_settings, dispatch)
    await adapter.notify(update_alert("u-1"))
    [message] = discord_standin.channel_messages()
    press = await discord_standin.press(message["id"], "dockwarden:approve:u-1",
                                        user_id=DISCORD_ADMIN)
    await discord_standin.wait_for(lambda: press.followups)
    [command] = dispatch.commands
    assert (command.name, command.args) == ("approve", ("u-1",))
    assert command.sender.platform == "discord"
    assert command.sender.user_id == DISCORD_ADMIN
    assert command.sender.in_alert_place
    assert press.callback == {"type": 6}  # acknowledged without touching the message
    edited = discord_standin.messages[message["id"]]
    assert edited["components"] == []
    assert edited["embeds"][0]["fields"][-1] == {
        "name": f"user{DISCORD_ADMIN} pressed Approve", "value": "done: approve u-1",
        "inline": False}
    assert press.followups[0]["flags"] == EPHEMERAL


async def test_a_press_by_a_holder_of_an_admin_role_carries_the_role(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    dispatch = RecordingDispatch()
    adapter = await discord_bot(discord_settings, dispatch)
    await adapter.notify(update_alert("u-1"))
    [message] = discord_standin.channel_messages()
    press = await discord_standin.press(message["id"], "dockwarden:ignore:u-1",
                                        user_id=DISCORD_ROLE_ADMIN, role_ids=(ADMIN_ROLE_ID,))
    await discord_standin.wait_for(lambda: press.followups)
    assert ADMIN_ROLE_ID in dispatch.commands[0].sender.role_ids
    assert discord_standin.messages[message["id"]]["components"] == []


async def test_pull_from_a_non_admin_gets_a_private_refusal(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    dispatch = RecordingDispatch()
    await discord_bot(discord_settings, dispatch)
    pull = await discord_standin.slash("pull", {"name": "web"}, user_id=DISCORD_MEMBER)
    await discord_standin.wait_for(lambda: pull.followups)
    assert pull.callback == {"type": 5, "data": {"flags": EPHEMERAL}}  # deferred, private
    [followup] = pull.followups
    assert followup["flags"] == EPHEMERAL
    assert "may not pull" in followup["content"]
    [command] = dispatch.commands
    assert (command.name, command.args, command.sender.user_id) == (
        "pull", ("web",), DISCORD_MEMBER)


async def test_pull_from_an_admin_is_deferred_then_answered_in_the_channel(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    await discord_bot(discord_settings, RecordingDispatch())
    pull = await discord_standin.slash("pull", {"name": "web"}, user_id=DISCORD_ADMIN)
    await discord_standin.wait_for(lambda: pull.followups)
    assert pull.callback is not None and pull.callback["type"] == 5
    assert not (pull.callback.get("data") or {}).get("flags")
    assert pull.followups[0]["content"] == "done: pull web"
    assert not pull.followups[0].get("flags")


async def test_read_only_commands_answer_at_once_with_their_buttons(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    dispatch = RecordingDispatch()
    await discord_bot(discord_settings, dispatch)
    updates = await discord_standin.slash("updates", user_id=DISCORD_MEMBER)
    await discord_standin.wait_for(lambda: updates.answered)
    assert updates.callback is not None and updates.callback["type"] == 4
    data = updates.callback["data"]
    assert data["content"] == "1 pending: web"
    assert [b["custom_id"] for row in data["components"] for b in row["components"]] == [
        "dockwarden:approve:u-1"]
    status = await discord_standin.slash("status", user_id=DISCORD_MEMBER,
                                         guild_id=OTHER_GUILD_ID)
    await discord_standin.wait_for(lambda: status.answered)
    assert [(c.name, c.sender.in_alert_place) for c in dispatch.commands] == [
        ("updates", True), ("status", False)]


async def test_autocomplete_offers_container_names_and_update_ids(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    await discord_bot(discord_settings, RecordingDispatch())
    typed = await discord_standin.autocomplete("pull", "name", "w", user_id=DISCORD_MEMBER)
    await discord_standin.wait_for(lambda: typed.answered)
    assert typed.callback == {"type": 8, "data": {"choices": [
        {"name": "web", "value": "web"}, {"name": "worker", "value": "worker"}]}}
    typed = await discord_standin.autocomplete("approve", "id", "", user_id=DISCORD_MEMBER)
    await discord_standin.wait_for(lambda: typed.answered)
    assert typed.callback is not None
    assert [c["value"] for c in typed.callback["data"]["choices"]] == ["u-1", "u-2"]


async def test_a_button_posted_before_a_restart_works_after_it(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    first = await discord_bot(discord_settings, RecordingDispatch())
    await first.notify(update_alert("u-7"))
    await first.stop()
    dispatch = RecordingDispatch()
    await discord_bot(discord_settings, dispatch)  # a new client, no memory of the alert
    [message] = discord_standin.channel_messages()
    press = await discord_standin.press(message["id"], "dockwarden:snooze:u-7",
                                        user_id=DISCORD_ADMIN)
    await discord_standin.wait_for(lambda: press.followups)
    assert [(c.name, c.args) for c in dispatch.commands] == [("snooze", ("u-7",))]
    assert discord_standin.messages[message["id"]]["components"] == []


async def test_a_press_after_a_gateway_drop_is_handled_on_the_resumed_session(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    dispatch = RecordingDispatch()
    adapter = await discord_bot(discord_settings, dispatch)
    await adapter.notify(update_alert("u-1"))
    await discord_standin.drop_gateway()
    await discord_standin.wait_for(lambda: discord_standin.resumes)
    [message] = discord_standin.channel_messages()
    press = await discord_standin.press(message["id"], "dockwarden:approve:u-1",
                                        user_id=DISCORD_ADMIN)
    await discord_standin.wait_for(lambda: press.followups)
    assert [c.name for c in dispatch.commands] == ["approve"]


async def test_a_press_after_a_refused_resume_is_handled_on_a_new_session(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    dispatch = RecordingDispatch()
    adapter = await discord_bot(discord_settings, dispatch)
    await adapter.notify(update_alert("u-1"))
    discord_standin.refuse_resume = True
    await discord_standin.drop_gateway()
    await discord_standin.wait_for(lambda: len(discord_standin.identifies) == 2)
    [message] = discord_standin.channel_messages()
    press = await discord_standin.press(message["id"], "dockwarden:approve:u-1",
                                        user_id=DISCORD_ROLE_ADMIN, role_ids=(ADMIN_ROLE_ID,))
    await discord_standin.wait_for(lambda: press.followups)
    assert [(c.name, ADMIN_ROLE_ID in c.sender.role_ids) for c in dispatch.commands] == [
        ("approve", True)]


@pytest.mark.parametrize("via", [False, True], ids=["bare-429", "discord-edge-429"])
async def test_a_rate_limited_alert_is_retried_and_delivered_once(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory,
    via: bool,
) -> None:
    adapter = await discord_bot(discord_settings, RecordingDispatch())
    # Without a Via header discord.py gives up at once and our retry takes over; with it,
    # discord.py waits retry_after itself.
    discord_standin.rate_limit(2, via=via)
    await adapter.notify(update_alert())
    assert len(discord_standin.calls("POST", f"/channels/{CHANNEL_ID}/messages")) == 3
    assert len(discord_standin.channel_messages()) == 1


async def test_a_rate_limit_that_outlasts_the_retries_raises_without_the_token(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    adapter = await discord_bot(discord_settings, RecordingDispatch(), retry_attempts=3)
    discord_standin.rate_limit(3)
    with pytest.raises(DockWardenError, match="could not deliver alert") as caught:
        await adapter.notify(update_alert())
    assert BOT_TOKEN not in str(caught.value)
    assert discord_standin.channel_messages() == []


async def test_webhook_mode_posts_the_embed_without_any_gateway(
    discord_standin: DiscordStandin, tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # discord.py logs webhook URLs (token included) at DEBUG
    settings = Settings(_env_file=None, DISCORD_WEBHOOK_URL=discord_standin.webhook_url,  # type: ignore[call-arg]
                        DISCORD_API_BASE_URL=discord_standin.api_url)
    adapter = DiscordWebhookAdapter(settings, retry_base_delay=0.01)
    await adapter.start(RecordingDispatch())
    try:
        discord_standin.rate_limit(1)
        await adapter.notify(update_alert())
    finally:
        await adapter.stop()
    [message] = discord_standin.webhook_messages()
    assert message["embeds"][0]["title"] == "Update available for web"
    assert message["components"] == []
    assert discord_standin.identifies == [] and discord_standin.connected == 0
    assert discord_standin.calls("GET", "/users/@me") == []
    ours = [r.getMessage() for r in caplog.records if r.name != "aiohttp.access"]  # not the server
    assert any("/webhooks/" in line for line in ours)
    assert not [line for line in ours if WEBHOOK_TOKEN in line]


async def test_a_webhook_url_that_is_not_one_is_a_config_error_without_the_url() -> None:
    settings = Settings(_env_file=None,  # type: ignore[call-arg]
                        DISCORD_WEBHOOK_URL="https://example.com/hooks/" + WEBHOOK_TOKEN)
    with pytest.raises(DockWardenError) as caught:
        DiscordWebhookAdapter(settings)
    assert WEBHOOK_TOKEN not in str(caught.value)


async def test_an_unknown_alert_channel_is_a_clear_start_error(
    discord_standin: DiscordStandin, tmp_path: object, discord_bot: BotFactory
) -> None:
    settings = discord_settings_for(discord_standin, tmp_path, DISCORD_CHANNEL_ID="999")
    with pytest.raises(DockWardenError, match="DISCORD_CHANNEL_ID 999"):
        await discord_bot(settings, RecordingDispatch())


async def test_a_refused_token_is_a_clear_start_error_without_the_token(
    discord_standin: DiscordStandin, tmp_path: object, discord_bot: BotFactory
) -> None:
    settings = discord_settings_for(discord_standin, tmp_path,
                                    DISCORD_BOT_TOKEN="wrong-token-value")
    with pytest.raises(DockWardenError, match="refused the bot token") as caught:
        await discord_bot(settings, RecordingDispatch())
    assert "wrong-token-value" not in str(caught.value)


async def test_a_long_answer_is_split_across_the_response_and_follow_ups(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    await discord_bot(discord_settings, RecordingDispatch())
    history = await discord_standin.slash("history", user_id=DISCORD_ADMIN)
    await discord_standin.wait_for(lambda: len(history.followups) == 2)
    assert history.callback is not None
    parts = [history.callback["data"]["content"]] + [f["content"] for f in history.followups]
    assert all(len(p) <= 2000 for p in parts) and len(parts) == 3
    lines = "\n".join(parts).splitlines()
    assert lines == [f"entry {i:03d} " + "x" * 60 for i in range(60)]


async def test_options_become_the_commands_arguments(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    dispatch = RecordingDispatch()
    await discord_bot(discord_settings, dispatch)
    snooze = await discord_standin.slash("snooze", {"name": "web", "duration": "2h"},
                                         user_id=DISCORD_ADMIN)
    await discord_standin.wait_for(lambda: snooze.answered)
    check = await discord_standin.slash("check", user_id=DISCORD_MEMBER)
    await discord_standin.wait_for(lambda: check.followups)
    updates = await discord_standin.slash("updates", {"page": 2}, user_id=DISCORD_MEMBER)
    await discord_standin.wait_for(lambda: updates.answered)
    assert [(c.name, c.args) for c in dispatch.commands] == [
        ("snooze", ("web", "2h")), ("check", ()), ("updates", ("2",))]
    assert check.callback == {"type": 5, "data": {"flags": EPHEMERAL}}


async def test_a_gateway_that_never_answers_fails_start_and_restores_discords_urls(
    discord_standin: DiscordStandin, tmp_path: object
) -> None:
    base = discord.http.Route.BASE
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    port = dead.getsockname()[1]
    try:
        settings = discord_settings_for(discord_standin, tmp_path,
                                        DISCORD_GATEWAY_URL=f"ws://127.0.0.1:{port}/gateway")
        adapter = DiscordAdapter(settings, guild_ready_timeout=0.1, ready_timeout=1)
        # discord.py gives up on its own or we stop waiting: either way the gateway is named
        with pytest.raises(DockWardenError, match=rf"gateway.*ws://127\.0\.0\.1:{port}"):
            await adapter.start(RecordingDispatch())
    finally:
        dead.close()
    assert discord.http.Route.BASE == base
    assert discord_standin.commands  # it had logged in and synced before the gateway failed


async def test_a_start_cancelled_midway_leaves_no_client_running(
    discord_standin: DiscordStandin, tmp_path: object
) -> None:
    base = discord.http.Route.BASE
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    try:
        settings = discord_settings_for(
            discord_standin, tmp_path,
            DISCORD_GATEWAY_URL=f"ws://127.0.0.1:{dead.getsockname()[1]}/gateway")
        adapter = DiscordAdapter(settings, guild_ready_timeout=0.1, ready_timeout=60)
        starting = asyncio.create_task(adapter.start(RecordingDispatch()))
        await discord_standin.wait_for(lambda: discord_standin.commands)
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
    finally:
        dead.close()
    assert discord.http.Route.BASE == base
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "discord-client"]


async def test_a_failing_core_gets_a_private_apology_and_a_logged_traceback(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(command: Command) -> Reply:
        raise RuntimeError("core bug")

    await discord_bot(discord_settings, broken)
    status = await discord_standin.slash("status", user_id=DISCORD_ADMIN)
    await discord_standin.wait_for(lambda: status.answered)
    assert status.callback is not None
    assert status.callback["data"]["flags"] == EPHEMERAL
    assert status.callback["data"]["content"] == failure_note("status")
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is not None and "core bug" in str(record.exc_info[1])
    caplog.clear()  # the one expected error; the fixture fails on any other


async def test_a_direct_message_sender_has_no_roles_and_is_not_in_the_alert_place(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    dispatch = RecordingDispatch()
    await discord_bot(discord_settings, dispatch)
    dm = await discord_standin.slash("help", user_id=DISCORD_MEMBER, guild_id=None)
    await discord_standin.wait_for(lambda: dm.answered)
    [command] = dispatch.commands
    assert (command.sender.role_ids, command.sender.in_alert_place) == ((), False)


async def test_stop_under_a_callers_deadline_still_closes_the_client(
    discord_standin: DiscordStandin, discord_settings: Settings
) -> None:
    base = discord.http.Route.BASE
    gate = asyncio.Event()
    reached = asyncio.Event()

    async def stuck(command: Command) -> Reply:
        reached.set()
        await gate.wait()
        return Reply("late")

    adapter = DiscordAdapter(discord_settings, guild_ready_timeout=0.1, ready_timeout=20)
    await adapter.start(stuck)
    await discord_standin.slash("pull", {"name": "web"}, user_id=DISCORD_ADMIN)
    await asyncio.wait_for(reached.wait(), 15)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(adapter.stop(drain_timeout=60), 0.2)  # the daemon's deadline
    assert discord.http.Route.BASE == base
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "discord-client"]
    assert adapter.failure is None
    for handler in list(adapter.interactions.handlers):  # the answer that was cut off
        handler.cancel()


HOSTILE = "[Click here to re-login](https://evil.example/login) @everyone"


def _message_bodies(standin: DiscordStandin) -> list[dict[str, object]]:
    """Every request body the bot sent that carries something to show."""
    bodies: list[dict[str, object]] = []
    for request in standin.requests:
        body = request.body
        if isinstance(body, dict) and isinstance(body.get("data"), dict):
            body = body["data"]  # an interaction callback wraps its message
        if isinstance(body, dict) and ("content" in body or "embeds" in body):
            bodies.append(body)
    return bodies


async def test_nothing_the_bot_posts_can_ping_and_every_text_is_shown_literally(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    class Echo(RecordingDispatch):
        async def __call__(self, command: Command) -> Reply:
            self.commands.append(command)
            return Reply(f"my_app_db: {HOSTILE} ({command.name})")

    adapter = await discord_bot(discord_settings, Echo())
    await adapter.notify(Alert(
        kind=AlertKind.UPDATE_FAILED, title="Update failed: my_app_db", text=HOSTILE,
        fields=(Field("Container", "my_app_db"),), actions=(Action("approve", "u-9"),),
        update_id="u-9", container="my_app_db",
    ))
    [alert] = discord_standin.channel_messages()
    history = await discord_standin.slash("history", user_id=DISCORD_MEMBER)  # answered at once
    pull = await discord_standin.slash("pull", {"name": "web"}, user_id=DISCORD_ADMIN)  # deferred
    press = await discord_standin.press(alert["id"], "dockwarden:approve:u-9",
                                        user_id=DISCORD_ADMIN)
    await discord_standin.wait_for(lambda: history.answered and pull.followups and press.followups)

    [embed] = discord_standin.messages[alert["id"]]["embeds"]
    assert embed["title"] == r"Update failed: my\_app\_db"
    assert embed["description"].startswith(r"\[Click here")
    assert embed["fields"][0]["value"] == r"my\_app\_db"
    assert embed["fields"][-1]["value"].startswith(r"my\_app\_db: \[Click here")
    assert history.callback is not None
    shown = [history.callback["data"]["content"], pull.followups[0]["content"],
             press.followups[0]["content"]]
    assert all(text.startswith(r"my\_app\_db: \[Click here") for text in shown), shown
    bodies = _message_bodies(discord_standin)
    assert len(bodies) >= 5  # alert, /history answer, /pull follow-up, the press's edit and note
    assert [b.get("allowed_mentions") for b in bodies] == [{"parse": []}] * len(bodies)


async def test_webhook_alerts_cannot_ping_and_are_escaped(
    discord_standin: DiscordStandin,
) -> None:
    settings = Settings(_env_file=None, DISCORD_WEBHOOK_URL=discord_standin.webhook_url,  # type: ignore[call-arg]
                        DISCORD_API_BASE_URL=discord_standin.api_url)
    adapter = DiscordWebhookAdapter(settings, retry_base_delay=0.01)
    await adapter.start(RecordingDispatch())
    try:
        await adapter.notify(Alert(kind=AlertKind.UPDATE_FAILED, title="my_app_db", text=HOSTILE))
    finally:
        await adapter.stop()
    [message] = discord_standin.webhook_messages()
    assert message["embeds"][0]["title"] == r"my\_app\_db"
    [body] = _message_bodies(discord_standin)
    assert body["allowed_mentions"] == {"parse": []}


async def test_autocomplete_asks_the_core_with_the_sender_and_shows_strangers_nothing(
    discord_standin: DiscordStandin, discord_settings: Settings, discord_bot: BotFactory
) -> None:
    await discord_bot(discord_settings, RecordingDispatch())
    typed = await discord_standin.autocomplete("pull", "name", "w", user_id=DISCORD_MEMBER,
                                               guild_id=OTHER_GUILD_ID)
    await discord_standin.wait_for(lambda: typed.answered)
    assert typed.callback == {"type": 8, "data": {"choices": []}}

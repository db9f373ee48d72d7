"""DOCKWARDEN_NOTIFY_URLS and `dockwarden notify --test`: the real apprise library posting to a
local receiver (`json://` and an ntfy-like server via `ntfy://`), the real chat libraries against
the stand-ins."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.apprise_channel import AppriseAdapter
from bot.chat.messages import Action, Alert, AlertKind, Field
from bot.config.settings import Settings
from bot.entrypoints.notify_test import send_test_alert
from bot.errors import ConfigError, DockWardenError
from bot.store.db import Store
from bot.usecases.delivery import Notifier
from tests.e2e import discord_fixtures
from tests.e2e.conftest import TELEGRAM_ALERT_CHATS
from tests.standins.discord import DiscordStandin
from tests.standins.receiver import Receiver
from tests.standins.telegram import TelegramStandin, wait_for

pytestmark = pytest.mark.e2e

discord_standin = discord_fixtures.discord_standin

ALERT = Alert(
    AlertKind.UPDATE_AVAILABLE, "Update available: web", "web runs nginx:1; a newer digest is out.",
    fields=(Field("Image", "nginx:1"),),
    actions=(Action("approve", "u-1", "Approve"),), update_id="u-1", container="web",
)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A local HTTP receiver for json:// and ntfy://."""
    server = Receiver()
    await server.start()
    yield server
    await server.close()


def _settings(urls: str, **extra: str) -> Settings:
    return Settings(_env_file=None, DOCKWARDEN_NOTIFY_URLS=urls, **extra)  # type: ignore[call-arg]


async def test_an_alert_reaches_json_and_ntfy_urls_as_plain_text(receiver: Receiver) -> None:
    adapter = AppriseAdapter(_settings(
        f"json://{receiver.hostport}/hook, ntfy://{receiver.hostport}/dockwarden"))
    await adapter.start(_refuse)
    await adapter.notify(ALERT)
    await adapter.stop()

    [hook] = receiver.at("/hook")
    assert hook.body["title"] == "Update available: web" and hook.body["type"] == "info"
    assert hook.body["message"].splitlines() == [
        "web runs nginx:1; a newer digest is out.", "Image: nginx:1", "[Approve: /approve u-1]"]
    [ntfy] = receiver.at("/")
    assert ntfy.body["topic"] == "dockwarden" and ntfy.body["title"] == "Update available: web"
    assert "/approve u-1" in ntfy.body["message"] and "<" not in ntfy.body["message"]


async def test_a_failed_delivery_waits_in_the_outbox_and_goes_only_where_it_was_missing(
    receiver: Receiver, tmp_path: Path
) -> None:
    adapter = AppriseAdapter(_settings(
        f"json://{receiver.hostport}/hook ntfy://{receiver.hostport}/dockwarden"))
    store = Store(str(tmp_path / "s.db"))
    try:
        notifier = Notifier([adapter], store, retry_delay=0.0)
        receiver.fail_next(3, path="/hook")  # every attempt of this pass fails at json://
        await notifier.send([ALERT])
        [kept] = store.outbox()
        assert kept.adapter == "apprise" and kept.attempts == 1
        assert len(receiver.at("/hook")) == 3 and len(receiver.at("/")) == 1

        assert await notifier.flush() == 0  # the next pass retries it
        assert store.outbox() == []
        assert len(receiver.at("/hook")) == 4 and len(receiver.at("/")) == 1, (
            "sent again only where it had not arrived")
    finally:
        store.close()


async def test_an_unusable_url_is_a_config_error_that_does_not_show_it() -> None:
    with pytest.raises(ConfigError, match=r"DOCKWARDEN_NOTIFY_URLS: URL #2 \(nosuch://") as bad:
        AppriseAdapter(_settings("json://127.0.0.1:9/x nosuch://user:hunter2@example.org/"))
    assert "hunter2" not in str(bad.value)


async def test_notify_test_reaches_every_configured_channel(
    receiver: Receiver, telegram_standin: TelegramStandin, discord_standin: DiscordStandin,
    tmp_path: Path,
) -> None:
    env = discord_standin.env(
        TELEGRAM_BOT_TOKEN=telegram_standin.token,
        TELEGRAM_CHAT_IDS=",".join(str(c) for c in TELEGRAM_ALERT_CHATS),
        TELEGRAM_API_BASE_URL=telegram_standin.url,
        DISCORD_WEBHOOK_URL=discord_standin.webhook_url,
        DOCKWARDEN_NOTIFY_URLS=f"json://{receiver.hostport}/hook ntfy://{receiver.hostport}/dw",
    )
    settings = Settings(_env_file=None, **env)  # type: ignore[call-arg, arg-type]
    results = await send_test_alert(settings)

    assert {r.channel: r.error for r in results} == {
        "telegram": None, "discord": None, "discord-webhook": None, "apprise": None}
    for chat in TELEGRAM_ALERT_CHATS:
        [sent] = telegram_standin.sent_messages(chat)
        assert "DockWarden test alert" in sent["text"]
    assert not telegram_standin.calls_of("getUpdates"), "no polling beside a running daemon"
    assert len(discord_standin.channel_messages()) == 1 and len(
        discord_standin.webhook_messages()) == 1
    assert not discord_standin.identifies, "no gateway session"
    assert len(receiver.at("/hook")) == 1 and len(receiver.at("/")) == 1


async def test_notify_test_names_the_channels_that_failed_and_exits_1(
    receiver: Receiver, telegram_standin: TelegramStandin, discord_standin: DiscordStandin,
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "DISCORD_", "DOCKWARDEN_"))}
    env.update(discord_standin.env(
        DISCORD_BOT_TOKEN="refused-discord-token",
        TELEGRAM_BOT_TOKEN=telegram_standin.token,
        TELEGRAM_CHAT_IDS=str(TELEGRAM_ALERT_CHATS[0]),
        TELEGRAM_API_BASE_URL=telegram_standin.url,
        DOCKWARDEN_NOTIFY_URLS=f"ntfy://{receiver.hostport}/dw json://{receiver.hostport}/hook",
    ))
    receiver.fail_next(100, path="/hook")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "notify", "--test", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    lines = out.decode().splitlines()

    assert proc.returncode == 1, out.decode() + err.decode()
    assert "ok    telegram: test alert sent" in lines
    assert any(line.startswith("FAIL  discord: Discord refused the bot token (DISCORD_BOT_TOKEN)")
               for line in lines), lines
    assert any(line.startswith("FAIL  apprise:") and "#2 json" in line and "#1" not in line
               for line in lines), lines
    assert "refused-discord-token" not in out.decode() + err.decode()
    await wait_for(lambda: telegram_standin.sent_messages(TELEGRAM_ALERT_CHATS[0]), "telegram")


async def test_an_alert_apprise_refuses_raises_naming_the_url(receiver: Receiver) -> None:
    adapter = AppriseAdapter(_settings(f"json://{receiver.hostport}/hook"))
    receiver.fail_next(1)
    with pytest.raises(DockWardenError, match="#1 json"):
        await adapter.notify(ALERT)


async def _refuse(command: object) -> object:
    raise AssertionError("an alert-only channel got a command")


async def test_no_url_secret_reaches_the_log_even_at_debug(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    adapter = AppriseAdapter(_settings(
        f"json://dwuser:hunter2pass@{receiver.hostport}/hook "
        f"ntfy://{receiver.hostport}/dw?token=tk_secrettoken1"))
    receiver.fail_next(1, path="/hook")
    with pytest.raises(DockWardenError):
        await adapter.notify(ALERT)
    await adapter.notify(ALERT)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "hunter2pass" not in logged and "tk_secrettoken1" not in logged
    assert receiver.at("/")[0].headers["Authorization"] == "Bearer tk_secrettoken1"

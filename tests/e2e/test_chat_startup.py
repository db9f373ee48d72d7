"""Starting with a broken or absent chat platform: the real libraries against the stand-ins.

A token the platform refuses is a configuration error (`dockwarden run` exits 2 with one line
naming the variable); a platform that cannot be reached at start is retried in the background
while the daemon runs, and the alerts kept for it meanwhile go out when it connects.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import pytest

import bot.chat.reconnect
from bot.chat.messages import Alert, AlertKind, Command, Sender
from bot.chat.reconnect import Reconnecting
from bot.config.settings import Settings
from bot.entrypoints.daemon import Daemon
from tests.e2e import discord_fixtures
from tests.e2e.conftest import TELEGRAM_ADMIN, TELEGRAM_ALERT_CHATS
from tests.standins.discord import CHANNEL_ID, DiscordStandin
from tests.standins.telegram import TelegramStandin, wait_for

pytestmark = pytest.mark.e2e

discord_standin = discord_fixtures.discord_standin

ALERT = Alert(AlertKind.RECOVERED, "Registry answers again", "registry.example answers again.")


def _daemon_env(tmp_path: Path, docker_host: str, **chat: str) -> dict[str, str]:
    config = tmp_path / "docker-config"
    config.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "DISCORD_", "DOCKWARDEN_"))}
    env.update(
        DOCKER_HOST=docker_host,
        DOCKER_CONFIG=str(config),
        DOCKWARDEN_DB=str(tmp_path / "run.db"),
        DOCKWARDEN_LABEL_ENABLE="true",
        **chat,
    )
    return env


async def _run(env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=cwd, env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_run_with_a_telegram_token_refused_exits_2_with_one_line_naming_it(
    telegram_standin: TelegramStandin, tmp_path: Path, docker_host: str
) -> None:
    wrong = "999999:REFUSED-but-secret"
    env = _daemon_env(tmp_path, docker_host, TELEGRAM_BOT_TOKEN=wrong,
                      TELEGRAM_CHAT_IDS=str(TELEGRAM_ALERT_CHATS[0]),
                      TELEGRAM_API_BASE_URL=telegram_standin.url)
    status, out, err = await _run(env, tmp_path)

    assert status == 2, err
    naming = [line for line in err.splitlines() if "TELEGRAM_BOT_TOKEN" in line]
    assert len(naming) == 1 and naming[0].startswith("dockwarden: Telegram refused"), err
    assert "Traceback" not in err and "console" not in err + out and wrong not in err + out
    assert telegram_standin.calls_of("getMe"), "the token was put to Telegram"


async def test_run_with_a_discord_token_refused_exits_2_with_one_line_naming_it(
    discord_standin: DiscordStandin, tmp_path: Path, docker_host: str
) -> None:
    wrong = "refused.discord.token-but-secret"
    env = _daemon_env(tmp_path, docker_host, **discord_standin.env(DISCORD_BOT_TOKEN=wrong))
    status, out, err = await _run(env, tmp_path)

    assert status == 2, err
    naming = [line for line in err.splitlines() if "DISCORD_BOT_TOKEN" in line]
    assert len(naming) == 1 and naming[0].startswith("dockwarden: Discord refused"), err
    assert "Traceback" not in err and "console" not in err + out and wrong not in err + out
    assert discord_standin.calls("GET", "/users/@me"), "the token was put to Discord"


async def test_run_with_an_unusable_channel_setting_exits_2_instead_of_falling_back(
    tmp_path: Path, docker_host: str
) -> None:
    env = _daemon_env(tmp_path, docker_host,
                      DOCKWARDEN_NOTIFY_URLS="json://127.0.0.1:9/x nosuch://user:hunter2@host")
    status, out, err = await _run(env, tmp_path)

    assert status == 2, err
    assert err.splitlines()[-1].startswith("dockwarden: DOCKWARDEN_NOTIFY_URLS: URL #2"), err
    assert "Traceback" not in err and "console" not in err + out and "hunter2" not in err + out


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry an unreachable platform every 0.1-0.4 s instead of 5 s - 5 min."""
    monkeypatch.setattr(bot.chat.reconnect, "FIRST_DELAY", 0.1)
    monkeypatch.setattr(bot.chat.reconnect, "MAX_DELAY", 0.4)


async def _start_daemon(settings: Settings) -> Daemon:
    daemon = Daemon(settings, first_pass_delay=-1)
    core = await daemon.start()
    core.notifier.retry_delay = 0.0
    return daemon


async def test_telegram_unreachable_at_start_connects_later_and_gets_the_alerts_kept_for_it(
    quick_retries: None, tmp_path: Path, docker_host: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    standin = TelegramStandin()
    standin.reserve()  # nothing listens there yet: a host that boots before its network
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        DOCKER_HOST=docker_host, DOCKER_CONFIG=str(tmp_path), DOCKWARDEN_DB=str(tmp_path / "s.db"),
        DOCKWARDEN_LABEL_ENABLE="true", TELEGRAM_BOT_TOKEN=standin.token,
        TELEGRAM_CHAT_IDS=str(TELEGRAM_ALERT_CHATS[0]), TELEGRAM_ADMIN_IDS=str(TELEGRAM_ADMIN),
        TELEGRAM_API_BASE_URL=standin.url,
    )
    daemon = await _start_daemon(settings)
    try:
        core = daemon.core
        assert core is not None
        retrying = daemon.adapters[0]
        assert isinstance(retrying, Reconnecting) and not retrying.connected
        assert [a.name for a in daemon.adapters] == ["telegram", "console"]
        await core.notifier.send([ALERT])  # a pass's alert while Telegram is away
        assert [i.adapter for i in core.store.outbox()] == ["telegram"]
        await wait_for(lambda: retrying.attempts >= 3, "two retries in the background")
        assert (await core.router.dispatch(_status())).text  # commands are served meanwhile

        await standin.start()
        await wait_for(lambda: standin.sent_messages(TELEGRAM_ALERT_CHATS[0]),
                       "the kept alert in the alert chat")
        await wait_for(lambda: standin.calls_of("getUpdates"), "long polling")
        await wait_for(lambda: core.store.outbox() == [], "the outbox emptied")
        assert retrying.connected
        sent = standin.sent_messages(TELEGRAM_ALERT_CHATS[0])
        assert len(sent) == 1 and "Registry answers again" in sent[0]["text"]
        assert any("telegram adapter is connected now" in r.getMessage() for r in caplog.records)
    finally:
        await daemon.stop()
        await standin.close()


async def test_discord_unreachable_at_start_connects_later_and_gets_the_alerts_kept_for_it(
    quick_retries: None, tmp_path: Path, docker_host: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    standin = DiscordStandin()
    standin.reserve()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        DOCKER_HOST=docker_host, DOCKER_CONFIG=str(tmp_path), DOCKWARDEN_DB=str(tmp_path / "s.db"),
        DOCKWARDEN_LABEL_ENABLE="true",
        **standin.env(DISCORD_ADMIN_IDS="1"),  # type: ignore[arg-type]
    )
    daemon = await _start_daemon(settings)
    try:
        core = daemon.core
        assert core is not None
        retrying = daemon.adapters[0]
        assert isinstance(retrying, Reconnecting) and not retrying.connected
        await core.notifier.send([ALERT])
        assert [i.adapter for i in core.store.outbox()] == ["discord"]
        await wait_for(lambda: retrying.attempts >= 3, "two retries in the background")

        await standin.start()
        await standin.wait_for(lambda: standin.channel_messages(CHANNEL_ID))
        await wait_for(lambda: core.store.outbox() == [], "the outbox emptied")
        assert retrying.connected
        [message] = standin.channel_messages(CHANNEL_ID)
        assert message["embeds"][0]["title"].endswith("Registry answers again")
        assert standin.identifies, "the gateway is connected too (commands work)"
        assert any("discord adapter is connected now" in r.getMessage() for r in caplog.records)
    finally:
        await daemon.stop()
        await standin.close()


def _status() -> Command:
    return Command("status", (), Sender("console", 0, "console", in_alert_place=True))

"""`doctor` asks each chat platform (the stand-ins) who the bot is and whether it may post."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bot.config.settings import Settings
from bot.doctor.chat import platform_findings
from bot.doctor.checks import Finding
from bot.entrypoints.doctor_cli import apprise_findings
from tests.e2e import discord_fixtures
from tests.standins.discord import CHANNEL_ID, GUILD_ID, DiscordStandin
from tests.standins.telegram import TelegramStandin

pytestmark = pytest.mark.e2e

discord_standin = discord_fixtures.discord_standin

SEND_MESSAGES = 1 << 11


def _settings(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[call-arg, arg-type]


def _by_subject(findings: list[Finding]) -> dict[str, Finding]:
    return {f.subject: f for f in findings}


async def test_telegram_is_asked_who_the_bot_is_and_whether_it_may_post_in_each_chat(
    telegram_standin: TelegramStandin,
) -> None:
    telegram_standin.unknown_chats.add(-1002)
    telegram_standin.bot_membership[-1003] = {"status": "restricted", "can_send_messages": False}
    telegram_standin.bot_membership[-1004] = {"status": "administrator"}
    findings = _by_subject(await platform_findings(_settings(
        TELEGRAM_BOT_TOKEN=telegram_standin.token, TELEGRAM_API_BASE_URL=telegram_standin.url,
        TELEGRAM_CHAT_IDS="-1001,-1002,-1003,-1004,77",
    )))

    assert findings["telegram"].ok and "@dockwarden_test_bot" in findings["telegram"].text
    assert findings["telegram chat -1001"].ok
    assert not findings["telegram chat -1002"].ok
    assert "chat not found" in findings["telegram chat -1002"].text
    assert not findings["telegram chat -1003"].ok
    assert "may not post" in findings["telegram chat -1003"].text
    assert findings["telegram chat -1004"].ok and findings["telegram chat 77"].ok
    assert [c.params["chat_id"] for c in telegram_standin.calls_of("getChat")] == [
        -1001, -1002, -1003, -1004, 77]


async def test_a_telegram_token_refused_is_a_failure_naming_the_variable(
    telegram_standin: TelegramStandin,
) -> None:
    secret = "999999:doctor-REFUSED-secret"
    [finding] = await platform_findings(_settings(
        TELEGRAM_BOT_TOKEN=secret, TELEGRAM_API_BASE_URL=telegram_standin.url,
        TELEGRAM_CHAT_IDS="-1001"))
    assert not finding.ok and "refused TELEGRAM_BOT_TOKEN" in finding.text
    assert secret not in finding.render()


async def test_an_unreachable_telegram_is_a_failure_saying_so() -> None:
    standin = TelegramStandin()
    standin.reserve()  # nothing listens there
    [finding] = await platform_findings(_settings(
        TELEGRAM_BOT_TOKEN=standin.token, TELEGRAM_API_BASE_URL=standin.url,
        TELEGRAM_CHAT_IDS="-1001"))
    assert not finding.ok and f"cannot reach {standin.url}" in finding.text
    assert standin.token not in finding.render()


async def test_discord_is_asked_who_the_bot_is_and_whether_it_may_post_in_the_channel(
    discord_standin: DiscordStandin,
) -> None:
    findings = _by_subject(await platform_findings(_settings(**discord_standin.env())))
    assert findings["discord"].ok and "dockwarden" in findings["discord"].text
    channel = findings[f"discord channel {CHANNEL_ID}"]
    assert channel.ok and "#alerts" in channel.text
    assert discord_standin.calls("GET", f"/guilds/{GUILD_ID}/members/")


async def test_a_channel_denying_send_messages_is_a_failure_naming_the_permission(
    discord_standin: DiscordStandin,
) -> None:
    discord_standin.channel_overwrites.append(
        {"id": str(GUILD_ID), "type": 0, "allow": "0", "deny": str(SEND_MESSAGES)})
    findings = _by_subject(await platform_findings(_settings(**discord_standin.env())))
    channel = findings[f"discord channel {CHANNEL_ID}"]
    assert not channel.ok and "lacks Send Messages" in channel.text


async def test_discord_refused_token_and_unknown_channel_are_failures(
    discord_standin: DiscordStandin,
) -> None:
    [refused] = await platform_findings(_settings(**discord_standin.env(
        DISCORD_BOT_TOKEN="doctor-refused-discord-token")))
    assert not refused.ok and "refused DISCORD_BOT_TOKEN" in refused.text
    assert "doctor-refused-discord-token" not in refused.render()

    findings = _by_subject(await platform_findings(_settings(**discord_standin.env(
        DISCORD_CHANNEL_ID="999"))))
    assert findings["discord"].ok
    assert not findings["discord channel 999"].ok
    assert "DISCORD_CHANNEL_ID" in findings["discord channel 999"].text


async def test_apprise_urls_are_checked_without_sending(tmp_path: Path) -> None:
    [good] = apprise_findings(_settings(
        DOCKWARDEN_NOTIFY_URLS="json://127.0.0.1:9/x ntfy://127.0.0.1:9/topic"))
    assert good.ok and "#1 json, #2 ntfy" in good.text
    [bad] = apprise_findings(_settings(DOCKWARDEN_NOTIFY_URLS="nosuch://pw@x"))
    assert not bad.ok and "DOCKWARDEN_NOTIFY_URLS" in bad.text and "pw@" not in bad.text


async def test_dockwarden_doctor_fails_on_a_refused_token_and_warns_when_nobody_may_approve(
    telegram_standin: TelegramStandin, tmp_path: Path, docker_host: str
) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "DISCORD_", "DOCKWARDEN_", "DOCKER_"))}
    (tmp_path / "docker-config").mkdir()
    env.update(DOCKER_HOST=docker_host, DOCKER_CONFIG=str(tmp_path / "docker-config"),
               DOCKWARDEN_LABEL_ENABLE="true", TELEGRAM_BOT_TOKEN="999:doctor-cli-refused",
               TELEGRAM_CHAT_IDS="-1001", TELEGRAM_API_BASE_URL=telegram_standin.url)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "doctor", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    lines = out.decode().splitlines()

    assert proc.returncode == 1, out.decode() + err.decode()
    assert any(line.startswith("FAIL") and "refused TELEGRAM_BOT_TOKEN" in line
               for line in lines), lines
    assert any(line.startswith("WARN") and "TELEGRAM_ADMIN_IDS is empty" in line
               for line in lines), lines
    assert "doctor-cli-refused" not in out.decode() + err.decode()

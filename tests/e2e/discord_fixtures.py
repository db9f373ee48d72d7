"""Fixtures for the Discord end-to-end tests: the stand-in, settings, a bot running against it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from adapters.discord.adapter import DiscordAdapter
from bot.chat.messages import Action, Command, Reply, Sender
from bot.config.settings import Settings
from tests.standins.discord import ADMIN_ROLE_ID, BOT_TOKEN, GUILD_ID, DiscordStandin

DISCORD_ADMIN = 2100000000000000001
DISCORD_ROLE_ADMIN = 2100000000000000002  # admin only through ADMIN_ROLE_ID
DISCORD_MEMBER = 2100000000000000003

STATE_CHANGING = frozenset({"approve", "pull", "ignore", "snooze", "rollback"})


@dataclass
class RecordingDispatch:
    """A stand-in for the core: records commands, refuses state changes from non-admins."""

    admins: frozenset[int] = frozenset({DISCORD_ADMIN})
    admin_roles: frozenset[int] = frozenset({ADMIN_ROLE_ID})
    commands: list[Command] = field(default_factory=list)

    async def __call__(self, command: Command) -> Reply:
        self.commands.append(command)
        sender = command.sender
        allowed = sender.user_id in self.admins or bool(self.admin_roles & set(sender.role_ids))
        if command.name in STATE_CHANGING and not allowed:
            return Reply(f"{sender.display} may not {command.name}.", ephemeral=True,
                         refused=True)
        if command.name == "updates":
            return Reply("1 pending: web", actions=(Action("approve", "u-1"),))
        if command.name == "history":
            return Reply("\n".join(f"entry {i:03d} " + "x" * 60 for i in range(60)))
        return Reply(f"done: {command.name} {' '.join(command.args)}".strip())


async def names(kind: str, prefix: str, sender: Sender) -> list[str]:
    """Autocomplete source: container names or update ids starting with the prefix (none for
    senders outside the alert guild, as the core answers them)."""
    if not sender.in_alert_place:
        return []
    values = {"container": ["web", "worker", "db"], "update": ["u-1", "u-2"]}[kind]
    return [v for v in values if v.startswith(prefix)]


def discord_settings_for(standin: DiscordStandin, tmp_path: object, **extra: str) -> Settings:
    """Settings for a bot talking to the stand-in, with one admin user and one admin role."""
    env = standin.env(
        DISCORD_ADMIN_IDS=str(DISCORD_ADMIN),
        DISCORD_ADMIN_ROLE_IDS=str(ADMIN_ROLE_ID),
        DOCKWARDEN_DB=f"{tmp_path}/dockwarden.db",
        **extra,
    )
    return Settings(_env_file=None, **env)  # type: ignore[call-arg, arg-type]


@pytest.fixture
async def discord_standin() -> AsyncIterator[DiscordStandin]:
    """A Discord REST + gateway stand-in on a free loopback port."""
    standin = DiscordStandin()
    await standin.start()
    yield standin
    await standin.close()


@pytest.fixture
def discord_settings(discord_standin: DiscordStandin, tmp_path: object) -> Settings:
    """Settings with commands synced to the stand-in's guild."""
    return discord_settings_for(discord_standin, tmp_path, DISCORD_GUILD_ID=str(GUILD_ID))


BotFactory = Callable[..., Awaitable[DiscordAdapter]]


@pytest.fixture
async def discord_bot(
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[BotFactory]:
    """Starts Discord adapters; stops them at teardown and fails on any error they logged."""
    started: list[DiscordAdapter] = []
    caplog.set_level(logging.DEBUG)  # discord.py logs URLs and payloads at DEBUG

    async def start(settings: Settings, dispatch: Callable[[Command], Awaitable[Reply]],
                    **options: object) -> DiscordAdapter:
        adapter = DiscordAdapter(settings, completions=names, guild_ready_timeout=0.1,
                                 ready_timeout=20, retry_base_delay=0.01,
                                 **options)  # type: ignore[arg-type]
        await adapter.start(dispatch)
        started.append(adapter)
        return adapter

    yield start
    for adapter in reversed(started):
        await adapter.stop()
        assert adapter.failure is None, f"the Discord client died: {adapter.failure!r}"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    assert not [r for r in caplog.records if BOT_TOKEN in r.getMessage()]

"""Whole flows through Discord: the real core, engine and registry behind real discord.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.adapter import DiscordAdapter
from bot.chat.messages import ChatAdapter, Sender
from bot.config.settings import Settings
from bot.engines.docker import DockerEngine
from bot.entrypoints.bootstrap import (
    Core,
    build_adapters,
    build_checker,
    build_core,
    build_engine,
    build_registry,
    build_store,
    build_updater,
)
from bot.registry.client import RegistryClient
from bot.store.db import Store
from tests.e2e import discord_fixtures
from tests.e2e.conftest import TELEGRAM_ALERT_CHATS
from tests.e2e.discord_fixtures import DISCORD_ADMIN, DISCORD_MEMBER, discord_settings_for
from tests.standins.discord import GUILD_ID, OTHER_GUILD_ID, DiscordStandin
from tests.standins.telegram import TelegramStandin

pytestmark = pytest.mark.e2e

discord_standin = discord_fixtures.discord_standin


@dataclass
class Flow:
    """A running bot: core + Discord adapter, and one watched container with a newer image."""

    standin: DiscordStandin
    core: Core
    adapter: DiscordAdapter
    store: Store
    docker: Any
    name: str
    old_digest: str
    new_digest: str

    def image_digest(self) -> str:
        """The repo digest of the image the container named `name` runs now."""
        container = self.docker.containers.get(self.name)
        image = self.docker.images.get(container.attrs["Image"])
        return str(image.attrs["RepoDigests"][0].split("@", 1)[1])

    def alert_messages(self) -> list[dict[str, Any]]:
        return self.standin.channel_messages()


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """Label -> custom_id of a message's buttons."""
    return {b["label"]: b["custom_id"] for row in message["components"]
            for b in row["components"]}


def _watched_container(registries: Any, images: Any, containers: Any) -> tuple[Any, str, str]:
    """A running, opted-in container whose tag now points at a newer image."""
    repo = f"dwdiscord/app-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    registry = registries.anonymous
    old = images.push(registry, repo, "v1", version=1)
    # No network: nothing here needs one, and the shared engine's bridge is not ours to rely on.
    container = containers.run(f"{registry.host}/{repo}:v1", network_mode="none",
                               labels={"dockwarden.enable": "true"})
    new = images.push(registry, repo, "v1", version=2)
    return container, old, new


def _settings(standin: DiscordStandin, docker_host: str, tmp_path: Path, **extra: str
              ) -> Settings:
    (tmp_path / "docker-config").mkdir(exist_ok=True)
    return discord_settings_for(
        standin, tmp_path, DISCORD_GUILD_ID=str(GUILD_ID), DOCKER_HOST=docker_host,
        DOCKER_CONFIG=str(tmp_path / "docker-config"), DOCKWARDEN_LABEL_ENABLE="true",
        DOCKWARDEN_GRACE_PERIOD="0.5", DOCKWARDEN_HEALTH_TIMEOUT="20", **extra,
    )


@asynccontextmanager
async def _running(settings: Settings, others: Sequence[ChatAdapter] = ()
                   ) -> AsyncIterator[tuple[Core, DiscordAdapter, Store]]:
    """The core wired as the daemon wires it, with the Discord adapter (and `others`) started."""
    engine: DockerEngine = build_engine(settings)
    store = build_store(settings)
    client: RegistryClient = build_registry(settings)
    async with client:
        updater = build_updater(settings, engine, client, store)
        checker = build_checker(settings, engine, client)

        async def completions(kind: str, prefix: str, sender: Sender) -> list[str]:
            return await core.router.completions(kind, prefix, sender)

        adapter = DiscordAdapter(settings, completions=completions, guild_ready_timeout=0.1,
                                 ready_timeout=20, retry_base_delay=0.01)
        adapters = [adapter, *others]
        core = build_core(settings, store, checker, updater, adapters, retry_delay=0.01)
        started: list[ChatAdapter] = []
        try:
            for each in adapters:
                await each.start(core.router.dispatch)
                started.append(each)
            yield core, adapter, store
        finally:
            for each in reversed(started):
                await each.stop()
            assert adapter.failure is None
            store.close()
            engine.close()


@pytest.fixture
async def flow(
    discord_standin: DiscordStandin, registries: Any, images: Any, containers: Any,
    docker_client: Any, docker_host: str, tmp_path: Path,
) -> AsyncIterator[Flow]:
    container, old, new = _watched_container(registries, images, containers)
    settings = _settings(discord_standin, docker_host, tmp_path)
    async with _running(settings) as (core, adapter, store):
        yield Flow(discord_standin, core, adapter, store, docker_client, container.name, old, new)


async def test_a_pass_posts_one_embed_with_buttons_and_a_second_pass_none(flow: Flow) -> None:
    await flow.core.runner.run([flow.name])
    await flow.core.runner.run([flow.name])
    [message] = flow.alert_messages()
    [embed] = message["embeds"]
    assert embed["title"] == f"Update available: {flow.name}"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Container"] == flow.name
    labels = list(buttons(message))
    assert labels[:2] == ["Approve", "Ignore"] and labels[2].startswith("Snooze")
    assert len(labels) == 3
    update_id = fields["Update id"]
    assert all(cid.endswith(f":{update_id}") for cid in buttons(message).values())


async def test_an_admin_approve_press_updates_the_container_and_marks_the_alert(
    flow: Flow,
) -> None:
    await flow.core.runner.run([flow.name])
    [alert] = flow.alert_messages()
    assert flow.image_digest() == flow.old_digest
    press = await flow.standin.press(alert["id"], buttons(alert)["Approve"],
                                     user_id=DISCORD_ADMIN)
    await flow.standin.wait_for(lambda: press.followups, timeout=120)
    assert flow.image_digest() == flow.new_digest
    edited = flow.standin.messages[alert["id"]]
    assert edited["components"] == []
    last = edited["embeds"][0]["fields"][-1]
    assert last["name"] == f"user{DISCORD_ADMIN} pressed Approve"
    # the outcome alert went to the channel too, once
    titles = [m["embeds"][0]["title"] for m in flow.alert_messages()]
    assert len(titles) == 2 and titles[0] == f"Update available: {flow.name}"


async def test_a_non_admin_press_and_pull_are_refused_and_change_nothing(flow: Flow) -> None:
    await flow.core.runner.run([flow.name])
    [alert] = flow.alert_messages()
    before = flow.docker.containers.get(flow.name).id
    press = await flow.standin.press(alert["id"], buttons(alert)["Approve"],
                                     user_id=DISCORD_MEMBER)
    await flow.standin.wait_for(lambda: press.followups)
    pull = await flow.standin.slash("pull", {"name": flow.name}, user_id=DISCORD_MEMBER)
    await flow.standin.wait_for(lambda: pull.followups)
    for answer in (press.followups[0], pull.followups[0]):
        assert answer["flags"] == 64 and "not allowed" in answer["content"]
    assert press.edits == []
    assert flow.standin.messages[alert["id"]]["components"] == alert["components"]
    assert flow.docker.containers.get(flow.name).id == before
    assert flow.image_digest() == flow.old_digest
    assert len(flow.alert_messages()) == 1


async def test_autocomplete_offers_the_watched_container_only_to_readers(flow: Flow) -> None:
    await flow.core.runner.run([flow.name])
    typed = await flow.standin.autocomplete("pull", "name", flow.name[:4],
                                            user_id=DISCORD_MEMBER)
    await flow.standin.wait_for(lambda: typed.answered)
    assert typed.callback is not None
    assert flow.name in [c["value"] for c in typed.callback["data"]["choices"]]
    # Someone who can see the commands from another guild, or in a DM, may not read.
    for guild in (OTHER_GUILD_ID, None):
        for command, option in (("pull", "name"), ("approve", "id")):
            stranger = await flow.standin.autocomplete(command, option, "", user_id=DISCORD_MEMBER,
                                                       guild_id=guild)
            await flow.standin.wait_for(lambda s=stranger: s.answered)  # type: ignore[misc]
            assert stranger.callback == {"type": 8, "data": {"choices": []}}


async def test_every_alert_reaches_telegram_discord_and_the_webhook_exactly_once(
    discord_standin: DiscordStandin, telegram_standin: TelegramStandin, registries: Any,
    images: Any, containers: Any, docker_client: Any, docker_host: str, tmp_path: Path,
) -> None:
    container, old, new = _watched_container(registries, images, containers)
    settings = _settings(
        discord_standin, docker_host, tmp_path,
        DISCORD_WEBHOOK_URL=discord_standin.webhook_url,
        TELEGRAM_BOT_TOKEN=telegram_standin.token,
        TELEGRAM_CHAT_IDS=",".join(str(c) for c in TELEGRAM_ALERT_CHATS),
        TELEGRAM_API_BASE_URL=telegram_standin.url,
    )
    engine: DockerEngine = build_engine(settings)
    store = build_store(settings)
    async with build_registry(settings) as registry:
        updater = build_updater(settings, engine, registry, store)
        core = build_core(settings, store, build_checker(settings, engine, registry), updater,
                          retry_delay=0.01)
        adapters = build_adapters(settings, core)  # as `dockwarden run` builds them
        assert [a.name for a in adapters] == ["telegram", "discord", "discord-webhook"]
        core.notifier.adapters = adapters
        try:
            for adapter in adapters:
                await adapter.start(core.router.dispatch)
            await core.runner.run([container.name])
            await core.runner.run([container.name])  # nothing new: nothing more is said
            [alert] = discord_standin.channel_messages()
            press = await discord_standin.press(alert["id"], buttons(alert)["Approve"],
                                                user_id=DISCORD_ADMIN)
            await discord_standin.wait_for(lambda: press.followups, timeout=120)
        finally:
            for adapter in reversed(adapters):
                await adapter.stop()
            store.close()
            engine.close()
    posted = [m["embeds"][0]["title"] for m in discord_standin.channel_messages()]
    hooked = [m["embeds"][0]["title"] for m in discord_standin.webhook_messages()]
    assert posted == hooked and len(posted) == 2
    assert posted[0] == f"Update available: {container.name}"
    for chat in TELEGRAM_ALERT_CHATS:
        texts = [m["text"] for m in telegram_standin.sent_messages(chat)]
        assert len(texts) == 2
        assert [t.splitlines()[0] for t in texts] == posted
    current = docker_client.containers.get(container.name)
    assert current.image.attrs["RepoDigests"][0].endswith(new) and old != new


async def test_an_alert_from_before_a_restart_is_approved_after_it(
    discord_standin: DiscordStandin, registries: Any, images: Any, containers: Any,
    docker_client: Any, docker_host: str, tmp_path: Path,
) -> None:
    container, _, new = _watched_container(registries, images, containers)
    settings = _settings(discord_standin, docker_host, tmp_path)
    async with _running(settings) as (core, _, _):
        await core.runner.run([container.name])
    [alert] = discord_standin.channel_messages()
    async with _running(settings):  # a new process: new client, same store
        press = await discord_standin.press(alert["id"], buttons(alert)["Approve"],
                                            user_id=DISCORD_ADMIN)
        await discord_standin.wait_for(lambda: press.followups, timeout=120)
    current = docker_client.containers.get(container.name)
    assert current.image.attrs["RepoDigests"][0].endswith(new)
    assert discord_standin.messages[alert["id"]]["components"] == []

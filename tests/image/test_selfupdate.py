"""DockWarden updating its own container: v1 -> v2 approved in Telegram, and a v2 that fails
its health check rolled back to v1. Real images, real engine, real registry, the real
python-telegram-bot in the container against the local Bot API stand-in."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tests.image.build import derive
from tests.services.procs import free_port
from tests.standins.telegram import TelegramStandin, wait_for

pytestmark = pytest.mark.integration

CHAT, ADMIN = -1001, 501
SOCKET = "/var/run/docker.sock"
SECOND = 1_000_000_000  # health check durations are in nanoseconds
# The image's own health test, asked every second; failures in the start period do not count
# (a bot still starting is not unhealthy yet).
FAST_HEALTH = {"Interval": SECOND, "Timeout": 5 * SECOND, "StartPeriod": 20 * SECOND,
               "Retries": 2}


@dataclass
class BotImages:
    v1: str
    v2: str
    v2_unhealthy: str


@pytest.fixture(scope="session")
def bot_images(docker_client: docker.DockerClient, dockwarden_image: str) -> BotImages:
    """The session's image as v1 and v2 (both healthy), and a v2 whose health check fails."""
    labels = docker_client.images.get(dockwarden_image).labels

    def version(text: str) -> dict[str, str]:
        return {**labels, "org.opencontainers.image.version": text}

    return BotImages(
        v1=derive(docker_client, dockwarden_image, "v1",
                  {"Labels": version("1.0.0"), "Healthcheck": FAST_HEALTH}),
        v2=derive(docker_client, dockwarden_image, "v2",
                  {"Labels": version("2.0.0"), "Healthcheck": FAST_HEALTH}),
        # Its test fails from the first probe on, so no start period: it is unhealthy after
        # two probes instead of waiting out 20 s of start period first.
        v2_unhealthy=derive(
            docker_client, dockwarden_image, "v2-unhealthy",
            {"Labels": version("2.0.1"),
             "Healthcheck": {**FAST_HEALTH, "Test": ["CMD", "false"], "StartPeriod": 0}},
        ),
    )


def _push(client: docker.DockerClient, image: str, name: str) -> str:
    """Tag `image` as name:latest and push it; the manifest digest."""
    client.images.get(image).tag(name, "latest")
    digest = ""
    for event in client.api.push(name, tag="latest", stream=True, decode=True):
        if "error" in event:
            raise RuntimeError(f"push of {name} failed: {event['error']}")
        digest = (event.get("aux") or {}).get("Digest", digest)
    assert digest
    return digest


@pytest.fixture
async def telegram(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TelegramStandin]:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    standin = TelegramStandin()
    await standin.start()
    yield standin
    await standin.close()


@pytest.fixture
def pushed(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Repositories the bot was pushed to; their local tags and digests go at the end, so that
    they do not keep an earlier build's image on the engine for good (tests/image/build.py
    lets an unused build go)."""
    repositories: list[str] = []
    yield repositories
    for repository in repositories:
        for image in docker_client.images.list(name=repository):
            refs = [*image.tags, *(image.attrs.get("RepoDigests") or ())]
            for ref in refs:
                if ref.startswith((f"{repository}:", f"{repository}@")):
                    with contextlib.suppress(docker.errors.APIError):
                        docker_client.images.remove(ref, noprune=True)


@dataclass
class Bot:
    container: Any
    name: str
    repository: str
    v1_id: str


@pytest.fixture
def helpers_removed(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Names of helper containers to remove should a test fail before they go by themselves."""
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            docker_client.api.remove_container(name, force=True)


async def _start_bot(
    client: docker.DockerClient, containers: Any, registries: Any, images: BotImages,
    telegram: TelegramStandin, engine_socket: str, tmp_path: Path, pushed: list[str],
) -> Bot:
    repository = f"{registries.anonymous.host}/dwself/bot-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    pushed.append(repository)
    await asyncio.to_thread(_push, client, images.v1, repository)
    data = tmp_path / "data"
    data.mkdir()
    env = {
        "DOCKWARDEN_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
        "DOCKWARDEN_LABEL_ENABLE": "true",  # only itself is watched
        "DOCKWARDEN_HEALTH_TIMEOUT": "60",
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_API_BASE_URL": telegram.url,
        "TELEGRAM_CHAT_IDS": str(CHAT),
        "TELEGRAM_ADMIN_IDS": str(ADMIN),
    }
    container = await asyncio.to_thread(
        containers.run, f"{repository}:latest", environment=env,
        labels={"dockwarden.enable": "true"}, network_mode="host",
        volumes={engine_socket: {"bind": SOCKET, "mode": "rw"},
                 str(data): {"bind": "/data", "mode": "rw"}},
    )
    await wait_for(lambda: any(c.method == "getUpdates" for c in telegram.calls),
                   "the v1 bot to poll Telegram", timeout=90)
    image_id = client.images.get(f"{repository}:latest").id
    return Bot(container, container.name, repository, image_id)


def _gone(client: docker.DockerClient, container_id: str) -> bool:
    try:
        client.api.inspect_container(container_id)
    except docker.errors.NotFound:
        return True
    return False


async def _helper_gone(client: docker.DockerClient, bot: Bot) -> None:
    """The short-lived helper removes itself once it has done its work."""
    helper = f"{bot.name}-dockwarden-selfupdate"
    await wait_for(lambda: _gone(client, helper), "the helper container to go", timeout=120)


def _said(telegram: TelegramStandin, words: str) -> list[str]:
    return [m.get("text", "") for m in telegram.sent_messages(CHAT) if words in m.get("text", "")]


async def _approve_self_update(telegram: TelegramStandin, bot: Bot) -> None:
    """/check finds the newer image of the bot's own container; /approve hands it over."""
    telegram.push_message(CHAT, ADMIN, "/check")
    await wait_for(lambda: _said(telegram, "Update available"), "the update alert", timeout=60)
    telegram.push_message(CHAT, ADMIN, f"/approve {bot.name}")
    await wait_for(lambda: _said(telegram, "helper container"), "the hand-over answer",
                   timeout=120)


async def _up(telegram: TelegramStandin) -> str:
    found = await wait_for(lambda: _said(telegram, "DockWarden is up"),
                           "the bot that comes up to say so", timeout=240)
    return str(found[-1])


async def test_self_update_v1_to_v2_ends_with_v2_answering_and_v1_gone(
    docker_client: docker.DockerClient, containers: Any, registries: Any,
    bot_images: BotImages, telegram: TelegramStandin, engine_socket: str, tmp_path: Path,
    helpers_removed: list[str], pushed: list[str],
) -> None:
    bot = await _start_bot(docker_client, containers, registries, bot_images, telegram,
                           engine_socket, tmp_path, pushed)
    helpers_removed.append(f"{bot.name}-dockwarden-selfupdate")
    new = await asyncio.to_thread(_push, docker_client, bot_images.v2, bot.repository)
    await _approve_self_update(telegram, bot)
    said = await _up(telegram)
    assert new[7:19] in said  # the digest it is up on
    answered = len(telegram.sent_messages(CHAT))
    telegram.push_message(CHAT, ADMIN, "/status")
    await wait_for(lambda: len(telegram.sent_messages(CHAT)) > answered, "the v2 bot's /status",
                   timeout=60)
    now = await asyncio.to_thread(docker_client.containers.get, bot.name)
    assert now.image.id == docker_client.images.get(bot_images.v2).id
    assert now.id != bot.container.id
    await wait_for(lambda: _gone(docker_client, bot.container.id), "the v1 container to go",
                   timeout=120)
    labels = docker_client.images.get(bot_images.v2).labels
    assert labels["org.opencontainers.image.version"] == "2.0.0"
    await _helper_gone(docker_client, bot)


async def test_self_update_to_an_unhealthy_v2_is_rolled_back_to_v1(
    docker_client: docker.DockerClient, containers: Any, registries: Any,
    bot_images: BotImages, telegram: TelegramStandin, engine_socket: str, tmp_path: Path,
    helpers_removed: list[str], pushed: list[str],
) -> None:
    bot = await _start_bot(docker_client, containers, registries, bot_images, telegram,
                           engine_socket, tmp_path, pushed)
    helpers_removed.append(f"{bot.name}-dockwarden-selfupdate")
    await asyncio.to_thread(_push, docker_client, bot_images.v2_unhealthy, bot.repository)
    await _approve_self_update(telegram, bot)
    said = await _up(telegram)
    assert "rolled back" in said.lower() or "did not come up" in said
    now = await asyncio.to_thread(docker_client.containers.get, bot.name)
    assert now.id == bot.container.id  # the v1 container itself, started again
    assert now.image.id == bot.v1_id
    assert now.status == "running"
    await _helper_gone(docker_client, bot)

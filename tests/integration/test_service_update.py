"""Swarm services updated through the swarm, on a real manager: rolled out on the checked digest
with their spec kept, or put back on the previous spec when the new tasks fail."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest

from bot.domain.model import UpdateOutcome
from bot.engines.docker import DockerEngine
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from bot.store.db import Store
from bot.update.updater import Updater
from tests.services.images import ImageFactory
from tests.services.registry import Registries
from tests.services.swarm import SwarmEngine

pytestmark = [
    # The SDK's failed unix connects to the private engine while it starts leave sockets behind.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

# `docker stop` of a task is quick when PID 1 traps SIGTERM.
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]


def _unique(stem: str) -> str:
    return f"{stem}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def manager(swarm: SwarmEngine, registries: Registries) -> docker.DockerClient:
    swarm.mirror(registries.anonymous)
    assert swarm.client is not None
    return swarm.client


@pytest.fixture
async def updater(swarm: SwarmEngine, tmp_path: Path) -> AsyncIterator[Updater]:
    engine = DockerEngine(swarm.url)
    store = Store(tmp_path / "dockwarden.db")
    (tmp_path / "docker-config").mkdir()
    credentials = DockerCredentials(str(tmp_path / "docker-config"))
    try:
        async with RegistryClient(credentials=credentials) as registry:
            yield Updater(engine, registry, store, health_timeout=30.0, grace_period=1.0,
                          credentials=credentials)
    finally:
        store.close()
        engine.close()


def running_images(client: docker.DockerClient, service_id: str) -> list[str]:
    """The images of the service's tasks that run now."""
    return [
        task["Spec"]["ContainerSpec"]["Image"]
        for task in client.api.tasks(filters={"service": service_id, "desired-state": "running"})
        if task["Status"]["State"] == "running"
    ]


def wait_running(client: docker.DockerClient, service_id: str, image: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if running_images(client, service_id) == [image]:
            return
        time.sleep(0.3)
    raise AssertionError(f"no task of {service_id} runs {image}: "
                         f"{client.api.tasks(filters={'service': service_id})}")


def running_service(
    manager: docker.DockerClient, images: ImageFactory, registry: Any, stem: str, **options: Any
) -> tuple[Any, str, str]:
    """A service on a freshly pushed `<repository>:v1`, running: (service, repository, digest)."""
    repository = f"dwservice/{_unique(stem)}"
    old = images.push(registry, repository, "v1", version=1)
    tagged = f"{registry.host}/{repository}:v1"
    service = manager.services.create(f"{tagged}@{old}", name=_unique("dwsvc"), **options)
    wait_running(manager, service.id, f"{tagged}@{old}")
    return service, repository, old


def spec_of(client: docker.DockerClient, service_id: str) -> dict[str, Any]:
    return dict(client.api.inspect_service(service_id)["Spec"])


async def test_service_is_rolled_out_on_the_new_digest_with_its_spec_kept(
    manager: docker.DockerClient, registries: Registries, images: ImageFactory, updater: Updater
) -> None:
    anon = registries.anonymous
    service, repository, old = running_service(
        manager, images, anon, "app", command=SLEEPER, env=["KEEP=me"],
        labels={"team": "ops"}, container_labels={"role": "worker"},
    )
    name, tagged = service.name, f"{anon.host}/{repository}:v1"
    new = images.push(anon, repository, "v1", version=2)

    preview = await updater.preview(name)  # what `dockwarden update` asks about
    assert (preview.container, preview.old_digest, preview.new_digest) == (name, old, new)
    result = await updater.update(name, actor="tester")

    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert (result.container, result.old_digest, result.new_digest) == (name, old, new)
    spec = spec_of(manager, service.id)
    container_spec = spec["TaskTemplate"]["ContainerSpec"]
    assert container_spec["Image"] == f"{tagged}@{new}"
    assert container_spec["Env"] == ["KEEP=me"]
    assert container_spec["Labels"] == {"role": "worker"}
    assert container_spec["Command"] == SLEEPER
    assert spec["Labels"] == {"team": "ops"}
    wait_running(manager, service.id, f"{tagged}@{new}")
    (entry,) = updater.store.history(name)
    assert (entry.action, entry.outcome, entry.actor) == ("update", "updated", "tester")

    again = await updater.update(name)
    assert again.outcome is UpdateOutcome.UP_TO_DATE, again.message


async def test_service_whose_new_tasks_fail_is_put_back_on_its_previous_spec(
    manager: docker.DockerClient, registries: Registries, images: ImageFactory, updater: Updater
) -> None:
    anon = registries.anonymous
    # No command of its own: the image's decides, and the new image's exits at once.
    service, repository, old = running_service(manager, images, anon, "broken")
    tagged = f"{anon.host}/{repository}:v1"
    broken = images.push(anon, repository, "v1", version=2, cmd=["sh", "-c", "exit 3"])

    result = await updater.update(service.name)

    assert result.outcome is UpdateOutcome.ROLLED_BACK, result.message
    assert (result.old_digest, result.new_digest) == (old, broken)
    assert "previous spec is back" in result.message
    assert "paused" in result.message  # the swarm saw the task fail; no timeout was needed
    assert spec_of(manager, service.id)["TaskTemplate"]["ContainerSpec"]["Image"] == (
        f"{tagged}@{old}"
    )
    wait_running(manager, service.id, f"{tagged}@{old}")


async def test_service_pinned_by_digest_alone_is_refused_untouched(
    manager: docker.DockerClient, registries: Registries, images: ImageFactory, updater: Updater
) -> None:
    anon = registries.anonymous
    repository = f"dwservice/{_unique('pinned')}"
    old = images.push(anon, repository, "v1", version=1)
    pinned = f"{anon.host}/{repository}@{old}"
    name = _unique("dwsvc")
    service = manager.services.create(pinned, name=name, command=SLEEPER)
    version = manager.api.inspect_service(service.id)["Version"]["Index"]

    result = await updater.update(name)

    assert result.outcome is UpdateOutcome.FAILED
    assert "pinned" in result.message and "nothing was changed" in result.message
    assert manager.api.inspect_service(service.id)["Version"]["Index"] == version

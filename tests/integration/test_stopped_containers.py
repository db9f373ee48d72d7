"""Stopped containers on the real engine: checked only when asked, updated and left stopped."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import docker
import pytest

from bot.check.checker import Checker
from bot.domain.model import CheckStatus, UpdateOutcome
from bot.engines.docker import DockerEngine
from bot.errors import ContainerNotFound
from bot.registry.client import RegistryClient
from bot.store.db import Store
from bot.update.updater import Updater
from tests.services.containers import ContainerFactory
from tests.services.images import ImageFactory
from tests.services.registry import Registries

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]


def _outdated(client: docker.DockerClient, images: ImageFactory, registries: Registries
              ) -> tuple[str, str, str]:
    """A tag whose registry holds v2 while the engine has v1: (reference, old id, new digest)."""
    registry = registries.anonymous
    repo = f"dwstopped/app-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    ref = f"{registry.host}/{repo}:1"
    images.push(registry, repo, "1", version=1, cmd=SLEEPER, volumes=["/anon"])
    old_id = client.images.get(ref).id
    new_digest = images.push(registry, repo, "1", version=2, cmd=SLEEPER, volumes=["/anon"])
    client.images.remove(ref)
    client.api.tag(old_id, f"{registry.host}/{repo}", "1")
    return ref, old_id, new_digest


def _stopped(containers: ContainerFactory, ref: str, **run: Any) -> Any:
    container = containers.run(ref, **run)
    container.stop(timeout=1)
    return container


@pytest.fixture
async def updater(engine: DockerEngine, db: Store, registry: RegistryClient
                  ) -> AsyncIterator[Updater]:
    yield Updater(engine, registry, db, health_timeout=30.0, grace_period=1.0,
                  include_stopped=True)


async def test_a_stopped_container_is_skipped_by_default_and_checked_with_the_setting(
    engine: DockerEngine, registry: RegistryClient, docker_client: docker.DockerClient,
    images: ImageFactory, registries: Registries, containers: ContainerFactory,
) -> None:
    ref, _, new_digest = _outdated(docker_client, images, registries)
    name = _stopped(containers, ref).name

    default = Checker(engine, registry, label_enable=False, default_policy="approve")
    with pytest.raises(ContainerNotFound):
        await default.check([name])
    including = Checker(engine, registry, label_enable=False, default_policy="approve",
                        include_stopped=True)
    [result] = (await including.check([name])).results

    assert result.status is CheckStatus.UPDATE_AVAILABLE
    assert result.remote_digest == new_digest


async def test_an_update_of_a_stopped_container_leaves_it_created_on_the_new_digest(
    updater: Updater, docker_client: docker.DockerClient, images: ImageFactory,
    registries: Registries, containers: ContainerFactory, db: Store,
) -> None:
    ref, old_id, new_digest = _outdated(docker_client, images, registries)
    named = containers.volume()
    old = containers.run(ref, environment={"KEEP": "me"},
                         volumes={named.name: {"bind": "/named", "mode": "rw"}})
    old.exec_run(["sh", "-c", "echo anon > /anon/f && echo named > /named/f"])
    old.stop(timeout=1)
    old.reload()
    volumes_before = {m["Destination"]: m["Name"] for m in old.attrs["Mounts"]}

    result = await updater.update(old.name, actor="test")

    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert result.new_digest == new_digest
    new = docker_client.api.inspect_container(old.name)
    assert new["Id"] != old.id
    assert new["State"]["Status"] == "created" and not new["State"]["Running"]
    assert new["Image"] != old_id
    running_image = docker_client.api.inspect_image(new["Image"])
    assert any(d.endswith(new_digest) for d in running_image["RepoDigests"])
    assert "KEEP=me" in new["Config"]["Env"]
    assert {m["Destination"]: m["Name"] for m in new["Mounts"]} == volumes_before
    assert not docker_client.containers.list(all=True, filters={"id": old.id})
    assert db.journal_open() == []

"""An approved newer version tag, end to end on the real engine and registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import docker
import pytest

from bot.chat.messages import AlertKind, Sender
from bot.config.settings import Settings
from bot.engines.docker import DockerEngine
from bot.entrypoints.bootstrap import Core, build_checker, build_core
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from bot.store.db import Store
from bot.update.updater import Updater
from tests.integration.tag_repos import unique
from tests.unit.fakes import FakeAdapter, cmd

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]
OPERATOR = Sender("console", 0, "operator", in_alert_place=True)


@pytest.fixture
async def core(
    docker_host: str, db: Store, docker_config: Any
) -> AsyncIterator[tuple[Core, FakeAdapter]]:
    config = docker_config({})
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        docker_host=docker_host, docker_config=config, db=db.path,
        health_timeout=30.0, grace_period=1.0, semver="minor",
    )
    adapter = FakeAdapter()
    engine = DockerEngine(docker_host)
    credentials = DockerCredentials(config)
    try:
        async with RegistryClient(credentials=credentials) as registry:
            updater = Updater(engine, registry, db, health_timeout=30.0, grace_period=1.0,
                              credentials=credentials)
            checker = build_checker(settings, engine, registry)
            yield build_core(settings, db, checker, updater, [adapter], retry_delay=0), adapter
    finally:
        engine.close()


async def test_approved_tag_update_recreates_the_container_on_the_new_tag_with_its_data(
    core: tuple[Core, FakeAdapter], docker_client: docker.DockerClient, images: Any,
    registries: Any, containers: Any, db: Store,
) -> None:
    bot, _ = core
    registry = registries.anonymous
    repository = unique("approve")
    name = f"{registry.host}/{repository}"
    options: dict[str, Any] = dict(cmd=SLEEPER, volumes=["/anon"])
    images.push(registry, repository, "1.2.3", version=1, **options)
    new_digest = images.push(registry, repository, "1.3.0", version=2, **options)
    images.push(registry, repository, "2.0.0", version=3, **options)  # a major: not offered
    docker_client.images.remove(f"{name}:1.3.0")  # the update has to pull it
    named = containers.volume()
    old = containers.run(
        f"{name}:1.2.3", environment={"KEEP": "me"},
        labels={"com.docker.compose.project.config_files": "/srv/app/compose.yaml"},
        volumes={named.name: {"bind": "/named", "mode": "rw"}},
    )
    old.exec_run(["sh", "-c", "echo a > /anon/f && echo n > /named/f"])

    found = await bot.runner.run([old.name])
    [alert] = [a for a in found.alerts if a.container == old.name]
    assert alert.kind is AlertKind.UPDATE_AVAILABLE
    assert f"{repository.rsplit('/', 1)[-1]} 1.2.3 → 1.3.0 available (minor)." in alert.text
    assert alert.actions[0].verb == "approve"
    assert alert.extra["digest"] == new_digest

    reply = await bot.router.dispatch(cmd("approve", alert.update_id or "", sender=OPERATOR))

    new = docker_client.api.inspect_container(old.name)
    assert new["Id"] != old.id and new["State"]["Running"], reply.text
    assert new["Config"]["Image"] == f"{name}:1.3.0"
    assert f"{name}@{new_digest}" in docker_client.api.inspect_image(new["Image"])["RepoDigests"]
    assert "KEEP=me" in new["Config"]["Env"]
    code, out = docker_client.containers.get(old.name).exec_run(["cat", "/anon/f", "/named/f"])
    assert (code, out.decode().split()) == (0, ["a", "n"])
    assert "/srv/app/compose.yaml still names 1.2.3" in reply.text, reply.text
    update = db.get_update(alert.update_id or "")
    assert update is not None and update.state == "applied" and update.new_tag == "1.3.0"


async def test_tag_update_whose_new_image_exits_is_rolled_back_to_the_old_tag(
    core: tuple[Core, FakeAdapter], docker_client: docker.DockerClient, images: Any,
    registries: Any, containers: Any,
) -> None:
    bot, _ = core
    registry = registries.anonymous
    repository = unique("rollback")
    name = f"{registry.host}/{repository}"
    images.push(registry, repository, "1.2.3", version=1, cmd=SLEEPER)
    images.push(registry, repository, "1.2.4", version=2, cmd=["sh", "-c", "exit 3"])
    old = containers.run(f"{name}:1.2.3")

    found = await bot.runner.run([old.name])
    [alert] = [a for a in found.alerts if a.container == old.name]
    assert "1.2.3 → 1.2.4 available (patch)." in alert.text
    reply = await bot.router.dispatch(cmd("approve", alert.update_id or "", sender=OPERATOR))

    now = docker_client.api.inspect_container(old.name)
    assert now["Id"] == old.id and now["State"]["Running"], reply.text
    assert now["Config"]["Image"] == f"{name}:1.2.3"
    assert "rolled_back" in reply.text and "exited with code 3" in reply.text

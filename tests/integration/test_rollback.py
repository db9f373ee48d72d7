"""Roll back after the fact, on the real engine and registry: `rollback`, /rollback, the button."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from bot.chat.messages import AlertKind, Sender
from bot.config.settings import Settings
from bot.domain.model import UpdateOutcome
from bot.engines.docker import DockerEngine
from bot.entrypoints.bootstrap import Core, build_checker, build_core
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from bot.store.connection import utcnow
from bot.store.db import Store
from bot.update.rollback import RollbackOutcome, RollbackPlan, Rollbacks
from bot.update.updater import Updater
from tests.services.containers import OwnNetwork
from tests.unit.fakes import FakeAdapter, cmd

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]
GRACE = 1.0
HEALTH_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[2]
OPERATOR = Sender("console", 0, "operator", in_alert_place=True)


class Released:
    """A tag whose registry holds v2 while the engine runs v1 (a release came out)."""

    def __init__(self, client: docker.DockerClient, images: Any, registry: Any, stem: str,
                 v1: dict[str, Any] | None = None, **options: Any) -> None:
        self.repo = f"dwrollback/{stem}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.name = f"{registry.host}/{self.repo}"
        self.ref = f"{self.name}:1"
        self.old_digest = images.push(registry, self.repo, "1", version=1, cmd=SLEEPER,
                                      env={"APP_MODE": "v1"}, **{**options, **(v1 or {})})
        self.old_id = client.images.get(self.ref).id
        self.new_digest = images.push(registry, self.repo, "1", version=2, cmd=SLEEPER,
                                      env={"APP_MODE": "v2"}, **options)
        client.images.remove(self.ref)  # the updater pulls v2 itself
        client.api.tag(self.old_id, self.name, "1")


@pytest.fixture
def containers(containers: Any) -> OwnNetwork:
    """containers.run(...) on a user-defined network unless the test chooses one."""
    return OwnNetwork(containers)


@pytest.fixture
async def updater(
    engine: DockerEngine, db: Store, docker_config: Any
) -> AsyncIterator[Updater]:
    credentials = DockerCredentials(docker_config({}))
    async with RegistryClient(credentials=credentials) as registry:
        yield Updater(engine, registry, db, health_timeout=HEALTH_TIMEOUT, grace_period=GRACE,
                      credentials=credentials, remove_old_images=True,
                      rollback_keep=timedelta(days=7))


@pytest.fixture
def anonymous_volumes_of(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Containers whose volumes (anonymous ones too) are removed with them at teardown."""
    names: list[str] = []
    yield names
    doomed: set[str] = set()
    for name in names:
        for c in docker_client.containers.list(all=True, filters={"name": name}):
            doomed.update(m["Name"] for m in c.attrs.get("Mounts") or () if m.get("Name"))
            c.remove(force=True)
    for volume in doomed:
        try:
            docker_client.volumes.get(volume).remove(force=True)
        except docker.errors.APIError:
            pass


def _exec(client: docker.DockerClient, name: str, command: str) -> str:
    code, out = client.containers.get(name).exec_run(["sh", "-c", command])
    assert code == 0, out
    return str(out.decode().strip())


def _runs(client: docker.DockerClient, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    container = dict(client.api.inspect_container(name))
    return container, dict(client.api.inspect_image(container["Image"]))


async def test_update_then_rollback_runs_the_old_digest_keeping_configuration_and_volumes(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any, anonymous_volumes_of: list[str], db: Store,
) -> None:
    image = Released(docker_client, images, registries.anonymous, "full", volumes=["/anon"])
    net = containers.network()
    named = containers.volume()
    name = containers.unique_name("dwt-rb")
    anonymous_volumes_of.append(name)
    endpoint = docker_client.api.create_endpoint_config(aliases=["web"])
    containers.run(
        image.ref, name=name, environment={"KEEP": "mine"}, labels={"team": "a"},
        network=net.name, networking_config={net.name: endpoint},
        volumes={named.name: {"bind": "/named", "mode": "rw"}},
        restart_policy={"Name": "unless-stopped"},
    )
    _exec(docker_client, name, "echo anon-v1 > /anon/f && echo named-v1 > /named/f")
    updated = await updater.update(name, actor="test")
    assert updated.outcome is UpdateOutcome.UPDATED, updated.message
    # Kept for the rollback although DOCKWARDEN_REMOVE_OLD_IMAGES is on.
    assert "kept for a rollback until" in updated.message
    assert docker_client.images.get(image.old_id).id == image.old_id
    _exec(docker_client, name, "echo anon-v2 >> /anon/f && echo named-v2 >> /named/f")

    plan = await Rollbacks(updater).plan(name)  # what `dockwarden rollback` asks about
    assert plan == RollbackPlan(name, image.ref, image.new_digest, image.old_digest)

    result = await Rollbacks(updater).rollback(name, actor="test")

    assert result.outcome is RollbackOutcome.ROLLED_BACK, result.message
    assert (result.old_digest, result.new_digest) == (image.new_digest, image.old_digest)
    container, running = _runs(docker_client, name)
    assert container["State"]["Running"] and container["Image"] == image.old_id
    assert f"{image.name}@{image.old_digest}" in running["RepoDigests"]
    assert container["Config"]["Image"] == image.ref
    env = set(container["Config"]["Env"])
    assert {"KEEP=mine", "APP_MODE=v1"} <= env and "APP_MODE=v2" not in env
    assert container["Config"]["Labels"]["team"] == "a"
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert "web" in container["NetworkSettings"]["Networks"][net.name]["Aliases"]
    assert _exec(docker_client, name, "cat /anon/f /named/f") == \
        "anon-v1\nanon-v2\nnamed-v1\nnamed-v2"
    assert db.journal_open() == []
    assert db.history(name)[0].action == "rollback"
    # Once is enough: the record is used, so a second rollback has nothing to do.
    assert await Rollbacks(updater).plan(name) is None
    again = await Rollbacks(updater).rollback(name)
    assert again.outcome is RollbackOutcome.NOTHING
    assert docker_client.api.inspect_container(name)["Id"] == container["Id"]


async def test_a_rollback_whose_old_image_fails_its_health_check_leaves_the_new_one_running(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any,
) -> None:
    image = Released(docker_client, images, registries.anonymous, "unhealthy",
                     v1={"healthcheck": ["false"]}, healthcheck=["true"])
    old = containers.run(image.ref)
    assert (await updater.update(old.name)).outcome is UpdateOutcome.UPDATED
    updated = docker_client.api.inspect_container(old.name)["Id"]

    result = await Rollbacks(updater).rollback(old.name)

    assert result.outcome is RollbackOutcome.FAILED, result.message
    assert (result.old_digest, result.new_digest) == (image.new_digest, image.new_digest)
    container, running = _runs(docker_client, old.name)
    assert container["Id"] == updated and container["State"]["Running"]
    assert f"{image.name}@{image.new_digest}" in running["RepoDigests"]
    assert docker_client.images.get(image.ref).id == container["Image"]  # the tag went back
    assert {c.name for c in docker_client.containers.list(
        all=True, filters={"name": old.name})} == {old.name}


async def test_previous_image_goes_after_the_keep_time_and_then_there_is_nothing_to_roll_back(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any,
) -> None:
    image = Released(docker_client, images, registries.anonymous, "expire")
    old = containers.run(image.ref)
    assert (await updater.update(old.name)).outcome is UpdateOutcome.UPDATED
    soon = Rollbacks(updater, clock=lambda: utcnow() + timedelta(days=6))
    assert await soon.expire() == 0
    assert docker_client.images.get(image.old_id).id == image.old_id

    later = Rollbacks(updater, clock=lambda: utcnow() + timedelta(days=8))
    assert await later.expire() == 1

    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(image.old_id)
    assert (await later.rollback(old.name)).outcome is RollbackOutcome.NOTHING


@pytest.fixture
async def auto_core(
    engine: DockerEngine, db: Store, updater: Updater, docker_host: str
) -> tuple[Core, FakeAdapter]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        docker_host=docker_host, db=db.path, default_policy="auto",
        health_timeout=HEALTH_TIMEOUT, grace_period=GRACE,
    )
    adapter = FakeAdapter()
    checker = build_checker(settings, engine, updater.registry)
    core = build_core(settings, db, checker, updater, [adapter], retry_delay=0,
                      rollbacks=Rollbacks(updater))
    return core, adapter


async def test_after_a_rollback_auto_offers_that_digest_for_approval_instead_of_applying_it(
    auto_core: tuple[Core, FakeAdapter], docker_client: docker.DockerClient, images: Any,
    registries: Any, containers: Any,
) -> None:
    bot, adapter = auto_core
    image = Released(docker_client, images, registries.anonymous, "auto")
    old = containers.run(image.ref)
    await bot.runner.run([old.name])  # auto applies v2
    [done] = [a for a in adapter.alerts if a.kind is AlertKind.UPDATE_SUCCEEDED]
    [button] = done.actions
    assert (button.verb, button.target, button.text) == ("rollback", old.name, "Roll back")

    # The button is a /rollback for admins only.
    stranger = Sender("telegram", 99, "stranger", in_alert_place=True)
    refused = await bot.router.dispatch(cmd(button.verb, button.target, sender=stranger))
    assert refused.refused
    reply = await bot.router.dispatch(cmd(button.verb, button.target, sender=OPERATOR))
    assert "rolled_back" in reply.text, reply.text
    assert docker_client.api.inspect_container(old.name)["Image"] == image.old_id
    assert any(a.title == f"Rolled back: {old.name}" for a in adapter.alerts)
    adapter.alerts.clear()

    await bot.runner.run([old.name])  # the next pass sees v2 again

    assert docker_client.api.inspect_container(old.name)["Image"] == image.old_id
    [offer] = adapter.alerts
    assert offer.kind is AlertKind.UPDATE_AVAILABLE and offer.extra["digest"] == image.new_digest
    assert [a.verb for a in offer.actions] == ["approve", "ignore", "snooze"]
    assert "not applied automatically" in offer.text
    await bot.runner.run([old.name])  # and it stays that way
    assert docker_client.api.inspect_container(old.name)["Image"] == image.old_id


def test_dockwarden_rollback_json_says_when_there_is_nothing_to_roll_back(
    docker_client: docker.DockerClient, images: Any, registries: Any, containers: Any,
    docker_host: str, tmp_path: Path,
) -> None:
    image = Released(docker_client, images, registries.anonymous, "cli")
    old = containers.run(image.ref)
    env = {**os.environ, "DOCKER_HOST": docker_host, "DOCKWARDEN_DB": str(tmp_path / "c.db")}

    done = subprocess.run(
        [sys.executable, "-m", "bot", "rollback", old.name, "--yes", "--json"], cwd=ROOT,
        env=env, capture_output=True, text=True, timeout=120,
    )

    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document == {
        "container": old.name, "host": "local", "outcome": "nothing_to_roll_back",
        "old_digest": None,
        "new_digest": None, "message": document["message"],
    }
    assert docker_client.api.inspect_container(old.name)["Id"] == old.id


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_swarm_service_goes_back_to_its_previous_spec_once(
    swarm: Any, registries: Any, images: Any, tmp_path: Path,
) -> None:
    from tests.integration.test_service_update import running_service, spec_of, wait_running

    swarm.mirror(registries.anonymous)
    manager = swarm.client
    anon = registries.anonymous
    service, repository, old = running_service(manager, images, anon, "rb", command=SLEEPER,
                                               env=["KEEP=me"])
    tagged = f"{anon.host}/{repository}:v1"
    new = images.push(anon, repository, "v1", version=2)
    engine = DockerEngine(swarm.url)
    store = Store(tmp_path / "swarm.db")
    credentials = DockerCredentials(str(tmp_path))
    try:
        async with RegistryClient(credentials=credentials) as registry:
            updater = Updater(engine, registry, store, health_timeout=30.0, grace_period=1.0,
                              credentials=credentials)
            assert (await updater.update(service.name)).outcome is UpdateOutcome.UPDATED

            result = await Rollbacks(updater).rollback(service.name)

            assert result.outcome is RollbackOutcome.ROLLED_BACK, result.message
            assert (result.old_digest, result.new_digest) == (new, old)
            wait_running(manager, service.id, f"{tagged}@{old}")
            container_spec = spec_of(manager, service.id)["TaskTemplate"]["ContainerSpec"]
            assert container_spec["Env"] == ["KEEP=me"]
            # The swarm's previous spec is now the one rolled back from: not gone back to.
            again = await Rollbacks(updater).rollback(service.name)
            assert again.outcome is RollbackOutcome.NOTHING
    finally:
        store.close()
        engine.close()
        service.remove()

"""An update of a container Compose made, checked with real Compose v2: `up -d` changes nothing."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import docker
import pytest

from bot.domain.model import UpdateOutcome
from bot.engines.docker import DockerEngine
from bot.registry.client import RegistryClient
from bot.store.db import Store
from bot.update.updater import Updater
from tests.services.compose import Compose
from tests.services.containers import ContainerFactory
from tests.services.images import ImageFactory
from tests.services.registry import Registries

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]


@pytest.fixture
async def updater(engine: DockerEngine, db: Store, registry: RegistryClient
                  ) -> AsyncIterator[Updater]:
    yield Updater(engine, registry, db, health_timeout=30.0, grace_period=1.0)


def _outdated(client: docker.DockerClient, images: ImageFactory, registries: Registries,
              stem: str) -> tuple[str, str]:
    """A tag whose registry holds v2 while the engine has only v1: (reference, v2's digest)."""
    registry = registries.anonymous
    repo = f"dwcompose/{stem}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    ref = f"{registry.host}/{repo}:1"
    images.push(registry, repo, "1", version=1, cmd=SLEEPER)
    old_id = client.images.get(ref).id
    new_digest = images.push(registry, repo, "1", version=2, cmd=SLEEPER)
    # The engine knows only v1 under the tag, as before a release was pulled.
    client.images.remove(ref)
    client.api.tag(old_id, f"{registry.host}/{repo}", "1")
    return ref, new_digest


def _project_containers(client: docker.DockerClient, project: str) -> dict[str, dict[str, object]]:
    """Service name -> inspect of each container of `project`."""
    found = client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"})
    return {c.labels["com.docker.compose.service"]: dict(c.attrs) for c in found}


async def test_compose_up_changes_nothing_after_an_update_and_the_dependent_restarted_after_it(
    updater: Updater, compose: Compose, docker_client: docker.DockerClient,
    images: ImageFactory, registries: Registries, tmp_path: Path,
) -> None:
    ref, new_digest = _outdated(docker_client, images, registries, "web")
    app_image = f"dwcompose-app-{os.getpid()}-{uuid.uuid4().hex[:6]}:1"
    images.build_local(app_image, cmd=SLEEPER)
    project = f"dwc{uuid.uuid4().hex[:8]}"
    services = {
        "web": {"image": ref},
        "app": {"image": app_image, "depends_on": ["web"]},
        "linker": {"image": app_image, "links": ["web:backend"]},
    }
    with compose.project(tmp_path, project, services):
        before = _project_containers(docker_client, project)
        web_name = str(before["web"]["Name"]).lstrip("/")

        result = await updater.update(web_name, actor="test")

        assert result.outcome is UpdateOutcome.UPDATED, result.message
        assert result.new_digest == new_digest
        after = _project_containers(docker_client, project)
        assert after["web"]["Id"] != before["web"]["Id"]
        web_state = after["web"]["State"]
        assert isinstance(web_state, dict)
        # The dependents (depends_on, links) were restarted after web came up on the new image.
        for service in ("app", "linker"):
            assert after[service]["Id"] == before[service]["Id"]
            state = after[service]["State"]
            assert isinstance(state, dict)
            assert state["Running"] and state["StartedAt"] > web_state["StartedAt"]
            name = str(after[service]["Name"]).lstrip("/")
            assert f"restarted {name}, which depends on it" in result.message

        again = compose.run(tmp_path, "up", "-d")

        said = again.stderr + again.stdout
        assert "Recreate" not in said and "Recreated" not in said, said
        assert {s: c["Id"] for s, c in _project_containers(docker_client, project).items()} == {
            s: c["Id"] for s, c in after.items()}


async def test_a_container_linked_to_the_updated_one_is_recreated_linked_to_the_new_one(
    updater: Updater, docker_client: docker.DockerClient, images: ImageFactory,
    registries: Registries, containers: ContainerFactory,
) -> None:
    ref, _ = _outdated(docker_client, images, registries, "linked")
    app_image = f"dwcompose-linker-{os.getpid()}-{uuid.uuid4().hex[:6]}:1"
    images.build_local(app_image, cmd=SLEEPER)
    web = containers.run(ref, network_mode="bridge")
    app = containers.run(app_image, network_mode="bridge", links={web.name: "backend"},
                         environment={"KEEP": "me"})

    result = await updater.update(web.name, actor="test")

    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert f"recreated {app.name}, linked to it" in result.message
    new_web = docker_client.api.inspect_container(web.name)
    new_app = docker_client.containers.get(app.name)
    assert new_app.id != app.id and new_app.attrs["State"]["Running"]
    assert new_app.attrs["HostConfig"]["Links"] == [f"/{web.name}:/{app.name}/backend"]
    assert "KEEP=me" in new_app.attrs["Config"]["Env"]
    assert new_app.attrs["Config"]["Image"] == app_image  # its reference, not an image id
    hosts = new_app.exec_run(["cat", "/etc/hosts"]).output.decode()
    assert new_web["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] in hosts
    new_app.restart(timeout=1)  # the link holds: it starts again

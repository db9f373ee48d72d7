"""DockerEngine against the real engine: what a running container looks like to the checker."""

from __future__ import annotations

import gc
import os
import uuid
from typing import Any

import docker
import pytest

from bot.domain import Workload
from bot.engines.docker import DockerEngine
from bot.errors import EngineUnavailable


def _repo(stem: str) -> str:
    return f"dwengine/{stem}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _find(engine: DockerEngine, name: str) -> Workload:
    by_name = {w.name: w for w in engine.list_workloads()}
    return by_name[name]


@pytest.fixture
def engine(docker_host: str) -> Any:
    engine = DockerEngine(docker_host)
    yield engine
    engine.close()


def test_running_container_carries_its_reference_digests_and_labels(
    engine: DockerEngine, registries: Any, images: Any, containers: Any
) -> None:
    repo = _repo("plain")
    digest = images.push(registries.anonymous, repo, "v1", version=1)
    ref = f"{registries.anonymous.host}/{repo}:v1"
    c = containers.run(ref, labels={"dockwarden.policy": "notify"})
    w = _find(engine, c.name)
    assert w.image == ref
    assert w.id == c.id
    assert w.image_id == c.image.id
    assert f"{registries.anonymous.host}/{repo}@{digest}" in w.repo_digests
    assert w.labels["dockwarden.policy"] == "notify"
    assert w.kind == "container"


def test_container_whose_tag_moved_on_keeps_the_reference_it_was_created_from(
    engine: DockerEngine, registries: Any, images: Any, containers: Any
) -> None:
    repo = _repo("moved")
    old = images.push(registries.anonymous, repo, "v1", version=1)
    ref = f"{registries.anonymous.host}/{repo}:v1"
    c = containers.run(ref)
    # v2 lands under the same tag locally: the list API now shows the image id instead.
    new = images.push(registries.anonymous, repo, "v1", version=2)
    assert new != old
    w = _find(engine, c.name)
    assert w.image == ref
    assert w.image_id == c.image.id
    assert f"{registries.anonymous.host}/{repo}@{old}" in w.repo_digests
    assert f"{registries.anonymous.host}/{repo}@{new}" not in w.repo_digests


def test_local_image_has_no_repo_digests(
    engine: DockerEngine, images: Any, containers: Any
) -> None:
    name_tag = f"dwengine-local-{os.getpid()}-{uuid.uuid4().hex[:6]}:1"
    images.build_local(name_tag, 1)
    c = containers.run(name_tag)
    w = _find(engine, c.name)
    assert w.image == name_tag
    assert w.repo_digests == ()


def test_stopped_containers_are_not_listed(
    engine: DockerEngine, images: Any, containers: Any
) -> None:
    name_tag = f"dwengine-stop-{os.getpid()}-{uuid.uuid4().hex[:6]}:1"
    images.build_local(name_tag, 1)
    c = containers.run(name_tag)
    c.stop(timeout=0)
    assert c.name not in {w.name for w in engine.list_workloads()}


def test_api_version_is_negotiated_with_the_engine(
    engine: DockerEngine, docker_client: docker.DockerClient
) -> None:
    assert engine.api_version == docker_client.version()["ApiVersion"]
    assert engine.version()["ApiVersion"] == engine.api_version


# The SDK's unix-socket connect leaks its socket object when the connect fails; collect it here
# so the warning belongs to this test, not to whichever test the collector next runs in.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_no_engine_gives_engine_unavailable_naming_where_and_what_to_do(tmp_path: Any) -> None:
    where = f"unix://{tmp_path}/no-docker.sock"
    with pytest.raises(EngineUnavailable) as caught:
        DockerEngine(where)
    gc.collect()
    message = str(caught.value)
    assert where in message
    assert "start Docker or set DOCKER_HOST" in message


def test_engine_that_is_not_a_swarm_manager_has_no_services(
    engine: DockerEngine, docker_client: docker.DockerClient
) -> None:
    if docker_client.info()["Swarm"].get("ControlAvailable"):
        pytest.skip("this engine manages a swarm")
    assert engine.list_services() == []

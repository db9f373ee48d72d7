"""Check and update on the engines beside the classic store: Docker 26.1 with the containerd
image store, and Podman's Docker-compatible API."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.check.checker import Checker
from bot.domain.model import CheckStatus, SkipReason, UpdateOutcome
from bot.engines.docker import DockerEngine
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from bot.store.db import Store
from bot.update import selfinfo
from bot.update.updater import Updater
from tests.integration.engines import EngineUnderTest, proc_files_of
from tests.services import newer_engine
from tests.services.containers import ContainerFactory
from tests.services.images import MEDIA_TYPES

# PID 1 ignores SIGTERM unless it traps it: this keeps `docker stop` quick.
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]


@pytest.fixture(params=["containerd", "podman"])
def other(request: pytest.FixtureRequest) -> EngineUnderTest:
    """Docker 26.1 (containerd store), then Podman."""
    found: EngineUnderTest = request.getfixturevalue(f"{request.param}_engine")
    return found


@pytest.fixture
def made(other: EngineUnderTest) -> Iterator[ContainerFactory]:
    factory = other.containers()
    yield factory
    factory.cleanup()


@pytest.fixture
def engine(other: EngineUnderTest) -> Iterator[DockerEngine]:
    engine = DockerEngine(other.url)
    yield engine
    engine.close()


@pytest.fixture
def registry_credentials(tmp_path: Path) -> DockerCredentials:
    config = tmp_path / "docker-config"
    config.mkdir()
    return DockerCredentials(str(config))


@pytest.fixture
async def registry(registry_credentials: DockerCredentials) -> AsyncIterator[RegistryClient]:
    async with RegistryClient(credentials=registry_credentials) as client:
        yield client


def _repo(stem: str) -> str:
    return f"dwother/{stem}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _published(other: EngineUnderTest, registry: Any, repo: str, tag: str, version: int) -> str:
    """Push, then pull back as a user would (Podman keeps the digest of its own local copy
    after a push, not the registry's); the registry's digest."""
    digest = other.images.push(registry, repo, tag, version=version, cmd=SLEEPER)
    image_id = other.client.api.inspect_image(f"{registry.host}/{repo}:{tag}")["Id"]
    other.client.api.remove_image(image_id, force=True)
    other.images.pull(registry, repo, tag)
    return digest


def _outdated(other: EngineUnderTest, registry: Any, stem: str,
              new_cmd: list[str] = SLEEPER) -> tuple[str, str, str]:
    """v1 pulled here, v2 under the same tag in the registry only: (reference, v1, v2)."""
    repo = _repo(stem)
    ref = f"{registry.host}/{repo}:1"
    old = _published(other, registry, repo, "1", 1)
    new = other.images.push(registry, repo, "2", version=2, cmd=new_cmd)
    accept = ", ".join(MEDIA_TYPES["oci"][:2] + MEDIA_TYPES["docker"][:2])
    got = httpx.get(f"{registry.url}/v2/{repo}/manifests/2", headers={"Accept": accept})
    httpx.put(f"{registry.url}/v2/{repo}/manifests/1", content=got.content,
              headers={"Content-Type": got.headers["Content-Type"]}).raise_for_status()
    other.client.api.remove_image(f"{registry.host}/{repo}:2")
    return ref, old, new


async def test_check_tells_current_outdated_and_built_here_apart(
    other: EngineUnderTest, made: ContainerFactory, engine: DockerEngine,
    registry: RegistryClient, registries: Any,
) -> None:
    anon = registries.anonymous
    repo = _repo("cur")
    current_digest = _published(other, anon, repo, "1", 1)
    current = made.run(f"{anon.host}/{repo}:1")
    ref, old, new = _outdated(other, anon, "old")
    outdated = made.run(ref)
    local_tag = f"{anon.host}/dwother/local-{os.getpid()}-{uuid.uuid4().hex[:6]}:1"
    other.images.build_local(local_tag, 1)
    local = made.run(local_tag)

    assert engine.store() == other.store
    checker = Checker(engine, registry, label_enable=False, default_policy="approve")
    results = {r.container: r for r in
               (await checker.check([current.name, outdated.name, local.name])).results}

    assert results[current.name].status is CheckStatus.UP_TO_DATE
    assert results[current.name].local_digest == current_digest
    assert results[outdated.name].status is CheckStatus.UPDATE_AVAILABLE
    assert (results[outdated.name].local_digest, results[outdated.name].remote_digest) == (
        old, new)
    assert (results[local.name].status, results[local.name].reason) == (
        CheckStatus.SKIPPED, SkipReason.LOCAL_IMAGE)
    assert results[local.name].error is None


async def test_update_pulls_the_new_digest_and_recreates_the_container(
    other: EngineUnderTest, made: ContainerFactory, engine: DockerEngine,
    registry: RegistryClient, registries: Any, db: Store, registry_credentials: Any,
) -> None:
    anon = registries.anonymous
    ref, old, new = _outdated(other, anon, "upd")
    name = made.unique_name("dwt-other")
    made.run(ref, name=name, environment={"KEEP": "me"})
    updater = Updater(engine, registry, db, health_timeout=30, grace_period=1.0,
                      credentials=registry_credentials)

    result = await updater.update(name)

    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert (result.old_digest, result.new_digest) == (old, new)
    after = other.client.api.inspect_container(name)
    assert after["State"]["Running"]
    assert after["Config"]["Image"] == ref
    assert "KEEP=me" in after["Config"]["Env"]
    image = other.client.api.inspect_image(after["Image"])
    assert any(d.endswith(f"@{new}") for d in image.get("RepoDigests") or ())
    checker = Checker(engine, registry, label_enable=False, default_policy="approve")
    (again,) = (await checker.check([name])).results
    assert again.status is CheckStatus.UP_TO_DATE


def test_process_in_a_container_is_told_inside_it_and_the_host_is_not(
    other: EngineUnderTest, made: ContainerFactory, registries: Any, tmp_path: Path,
) -> None:
    local_tag = f"dwother-self-{os.getpid()}-{uuid.uuid4().hex[:6]}:1"
    other.images.build_local(local_tag, 1)
    script = "cat /proc/self/cgroup; echo =====; cat /proc/self/mountinfo; sleep 86400"
    inside = made.run(local_tag, command=["sh", "-c", script])
    beside = made.run(local_tag)
    proc = proc_files_of(inside, tmp_path)
    assert selfinfo.runs_inside(inside.id, proc=proc)
    assert not selfinfo.runs_inside(beside.id, proc=proc)
    # This test process, on the host: in none of them (updates are not refused as its own).
    assert not selfinfo.runs_inside(inside.id)
    assert not selfinfo.runs_inside(beside.id)


@pytest.mark.parametrize("other", ["containerd"], indirect=True)
async def test_update_after_a_pull_over_the_tag_removed_the_running_image(
    other: EngineUnderTest, made: ContainerFactory, engine: DockerEngine,
    registry: RegistryClient, registries: Any, db: Store, registry_credentials: Any,
) -> None:
    # `docker compose pull` without `up`: on the containerd store the old image is gone.
    anon = registries.anonymous
    ref, old, new = _outdated(other, anon, "pulled")
    name = made.unique_name("dwt-other")
    made.run(ref, name=name)
    repo = ref.split("/", 1)[1].rsplit(":", 1)[0]
    other.images.pull(anon, repo, "1")
    updater = Updater(engine, registry, db, health_timeout=30, grace_period=1.0,
                      credentials=registry_credentials)

    result = await updater.update(name)

    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert (result.old_digest, result.new_digest) == (old, new)


async def test_new_image_that_exits_at_once_is_rolled_back_to_the_old_container(
    other: EngineUnderTest, made: ContainerFactory, engine: DockerEngine,
    registry: RegistryClient, registries: Any, db: Store, registry_credentials: Any,
) -> None:
    ref, old, new = _outdated(other, registries.anonymous, "exits", ["sh", "-c", "exit 3"])
    name = made.unique_name("dwt-other")
    before = made.run(ref, name=name)
    updater = Updater(engine, registry, db, health_timeout=30, grace_period=1.0,
                      credentials=registry_credentials)

    result = await updater.update(name)

    assert result.outcome is UpdateOutcome.ROLLED_BACK, result.message
    after = other.client.api.inspect_container(name)
    assert after["Id"] == before.id and after["State"]["Running"]
    assert {c["Names"][0].lstrip("/") for c in other.client.api.containers(
        all=True, filters={"name": name})} == {name}


@pytest.mark.parametrize("other", ["classic", "containerd", "podman"], indirect=True)
@pytest.mark.parametrize("family", ["oci", "docker"])
async def test_multiarch_index_of_either_family_is_updated_along_its_index_digest(
    other: EngineUnderTest, made: ContainerFactory, engine: DockerEngine,
    registry: RegistryClient, registries: Any, db: Store, registry_credentials: Any,
    family: str,
) -> None:
    anon = registries.anonymous
    repo = _repo(f"multi-{family}")
    old = other.images.push_multiarch(anon, repo, "1", version=1, family=family)
    other.images.pull(anon, repo, "1")
    name = made.unique_name("dwt-other")
    # busybox sleep as PID 1 ignores SIGTERM: SIGKILL keeps the stop quick.
    made.run(f"{anon.host}/{repo}:1", name=name, stop_signal="SIGKILL")
    new = other.images.push_multiarch(anon, repo, "1", version=2, family=family)
    checker = Checker(engine, registry, label_enable=False, default_policy="approve")
    (found,) = (await checker.check([name])).results
    assert (found.status, found.remote_digest) == (CheckStatus.UPDATE_AVAILABLE, new)
    if other.store != "podman":  # Podman lists the platform manifest's digest first
        assert found.local_digest == old
    updater = Updater(engine, registry, db, health_timeout=30, grace_period=1.0,
                      credentials=registry_credentials)

    result = await updater.update(name, expected_digest=new)

    assert result.outcome is UpdateOutcome.UPDATED, result.message
    (again,) = (await checker.check([name])).results
    assert (again.status, again.local_digest) == (CheckStatus.UP_TO_DATE, new)


def test_debian13_docker_is_unpacked_beside_the_systems_not_over_it() -> None:
    if not newer_engine.unpacked():
        pytest.skip("Debian 13's Docker is not unpacked (python -m tests.services prepare)")
    version = subprocess.run([str(newer_engine.DOCKERD), "--version"], capture_output=True,
                             text=True, check=True).stdout
    assert "26.1" in version
    assert shutil.which("dockerd") != str(newer_engine.DOCKERD)
    assert "trixie" in (newer_engine.TRIXIE_ROOT / "apt" / "sources.list").read_text()
    # Cached: a second prepare does nothing (no apt run, so it is quick and offline-safe).
    newer_engine.fetch(newer_engine.TRIXIE_ROOT / "unused.log")
    assert not (newer_engine.TRIXIE_ROOT / "unused.log").exists()

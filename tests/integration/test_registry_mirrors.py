"""Docker Hub images on an engine with a registry mirror are checked through that mirror.

The second engine pulls Docker Hub names through the session's anonymous registry (its
`--registry-mirror`); every lookup here is answered by a mirror, so nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.check.checker import Checker
from bot.check.image_info import VERSION as VERSION_LABEL
from bot.config.settings import load_settings
from bot.domain.model import CheckStatus, Policy, UpdateOutcome
from bot.domain.reference import parse_reference
from bot.engines.docker import DockerEngine
from bot.entrypoints.bootstrap import build_checker, build_updater
from bot.entrypoints.doctor_cli import doctor
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from bot.registry.mirrors import MirroredDigests, engine_mirrors, parse_mirror
from bot.store.db import Store
from tests.integration.engines import *  # noqa: F403 - on the second engine
from tests.integration.engines import EngineUnderTest
from tests.services.containers import ContainerFactory
from tests.services.images import ImageFactory
from tests.services.offline import guarded_getaddrinfo
from tests.services.registry import DeadRegistry, Registries, RegistryService

REPO_ROOT = Path(__file__).resolve().parents[2]
# PID 1 ignores SIGTERM unless it traps it: this keeps `docker stop` quick.
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a lookup go past the mirror, Docker Hub's name does not resolve."""
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)


@pytest.fixture
def engine_under_test(second_engine: EngineUnderTest) -> EngineUnderTest:
    """`engine`, `containers`, `images` and `docker_host` here are the second engine's."""
    return second_engine


def _hub_image_running(images: ImageFactory, mirror: RegistryService,
                       containers: ContainerFactory) -> tuple[str, str, str]:
    """Push library/<name>:v1 to the mirror, pull `<name>:v1` on the second engine and run it;
    (container name, Docker Hub name, digest)."""
    name = f"dwmirror-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    digest = images.push(mirror, f"library/{name}", "v1", version=1, cmd=SLEEPER)
    images.client.images.pull(name, tag="v1")
    container = containers.run(f"{name}:v1")
    return container.name, name, digest


async def test_docker_hub_image_is_checked_through_the_engines_mirror(
    images: ImageFactory, mirror: RegistryService, containers: ContainerFactory,
    engine: DockerEngine, registry: RegistryClient,
) -> None:
    container, name, v1 = _hub_image_running(images, mirror, containers)
    checker = Checker(engine, MirroredDigests(registry, lambda: engine_mirrors(engine.info())),
                      label_enable=False, default_policy=Policy.APPROVE)

    (fresh,) = (await checker.check([container])).results
    images.push(mirror, f"library/{name}", "v1", version=2)
    (stale,) = (await checker.check([container])).results

    assert fresh.image == f"docker.io/library/{name}:v1"
    assert (fresh.status, fresh.remote_digest, fresh.endpoint) == (
        CheckStatus.UP_TO_DATE, v1, mirror.url)
    assert stale.status is CheckStatus.UPDATE_AVAILABLE
    assert (stale.local_digest, stale.endpoint) == (v1, mirror.url)
    assert stale.remote_digest not in (None, v1)
    # Only the mirror was asked: Docker Hub would have been a registry of its own.
    assert registry.stats["head"] == 2


async def test_without_the_mirror_the_same_image_is_asked_of_docker_hub(
    images: ImageFactory, mirror: RegistryService, containers: ContainerFactory,
    engine: DockerEngine, registry: RegistryClient,
) -> None:
    container, _, _ = _hub_image_running(images, mirror, containers)
    checker = Checker(engine, MirroredDigests(registry, lambda: ()),
                      label_enable=False, default_policy=Policy.APPROVE)

    (result,) = (await checker.check([container])).results

    # Docker Hub, kept out of reach here: what the mirror spared the check.
    assert result.status is CheckStatus.ERROR
    assert result.error is not None and result.error.registry == "docker.io"
    assert result.endpoint is None and "endpoint" not in result.as_json()


async def test_a_mirror_that_does_not_answer_is_passed_over_for_the_next(
    images: ImageFactory, mirror: RegistryService, containers: ContainerFactory,
    engine: DockerEngine, registry: RegistryClient,
    dead_registry: DeadRegistry,
) -> None:
    container, _, v1 = _hub_image_running(images, mirror, containers)
    settings = load_settings(
        _env_file=None, DOCKWARDEN_REGISTRY_MIRRORS=f"{dead_registry.url},{mirror.url}/"
    )
    checker = build_checker(settings, engine, registry)

    (result,) = (await checker.check([container])).results

    assert (result.status, result.remote_digest) == (CheckStatus.UP_TO_DATE, v1)
    assert result.as_json()["endpoint"] == mirror.url


def test_check_json_says_the_mirror_answered(
    images: ImageFactory, mirror: RegistryService, containers: ContainerFactory,
    docker_host: str, tmp_path: Path,
) -> None:
    container, _, v1 = _hub_image_running(images, mirror, containers)
    config = tmp_path / "docker-config"
    config.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DOCKWARDEN_", "TELEGRAM_", "DISCORD_", "DOCKER_"))}
    env.update(DOCKER_HOST=docker_host, DOCKER_CONFIG=str(config), HOME=str(tmp_path),
               PYTHONPATH=str(REPO_ROOT))

    # Guarded: should the check go past the mirror, Docker Hub's name does not resolve.
    argv = [sys.executable, "-m", "tests.services.offline", "bot", "check", "--json", container]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)

    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert (result["status"], result["remote_digest"]) == ("up_to_date", v1)
    assert result["endpoint"] == mirror.url


async def test_an_update_takes_the_digest_the_mirror_has_and_pulls_it_through_the_mirror(
    images: ImageFactory, mirror: RegistryService, containers: ContainerFactory,
    engine: DockerEngine, registry: RegistryClient, db: Store, tmp_path: Path,
) -> None:
    container, name, v1 = _hub_image_running(images, mirror, containers)
    v2 = images.push(mirror, f"library/{name}", "v1", version=2, cmd=SLEEPER)
    settings = load_settings(_env_file=None, DOCKER_CONFIG=str(tmp_path),
                             DOCKWARDEN_GRACE_PERIOD="1")

    result = await build_updater(settings, engine, registry, db).update(container)

    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert (result.old_digest, result.new_digest) == (v1, v2)


async def test_a_semver_rule_proposes_the_newer_tag_listed_by_the_mirror_while_hub_is_away(
    images: ImageFactory, mirror: RegistryService, containers: ContainerFactory,
    engine: DockerEngine, registry: RegistryClient,
) -> None:
    name = f"dwmirror-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    images.push(mirror, f"library/{name}", "1.0.0", version=1, cmd=SLEEPER,
                labels={VERSION_LABEL: "1.0.0"})
    images.client.images.pull(name, tag="1.0.0")
    newer = images.push(mirror, f"library/{name}", "1.1.0", version=2, cmd=SLEEPER,
                        labels={VERSION_LABEL: "1.1.0"})
    container = containers.run(f"{name}:1.0.0", labels={"dockwarden.semver": "minor"})
    checker = build_checker(load_settings(_env_file=None), engine, registry)

    (result,) = (await checker.check([container.name])).results

    assert result.status is CheckStatus.UPDATE_AVAILABLE, result.error
    assert (result.new_tag, result.remote_digest, result.endpoint) == (
        "1.1.0", newer, mirror.url)
    # What the update brings was read from the mirror too (Docker Hub does not resolve here).
    assert (result.current_version, result.new_version) == ("1.0.0", "1.1.0")
    assert (registry.stats["tags"], registry.stats["blob"]) == (1, 1)


def test_doctor_says_docker_hub_images_are_checked_through_the_engines_mirror(
    mirror: RegistryService, docker_host: str, tmp_path: Path,
) -> None:
    settings = load_settings(_env_file=None, DOCKER_HOST=docker_host,
                             DOCKER_CONFIG=str(tmp_path), DOCKWARDEN_DB=str(tmp_path / "db"))

    findings, engine_answered = doctor(settings)

    assert engine_answered
    (said,) = [f for f in findings if f.subject == "docker.io mirrors"]
    assert said.ok and f"checked through {mirror.url}, then Docker Hub" in said.text


async def test_a_mirror_without_the_image_is_passed_over_and_a_token_mirror_is_logged_into(
    images: ImageFactory, registries: Registries, docker_config: Callable[..., str],
) -> None:
    token = registries.token
    name = f"dwmirror-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    # Pushed straight to the token registry; the anonymous one (the first mirror) lacks it.
    pushed = images.push(token, f"library/{name}", "v1")
    config = docker_config({token.host: {"username": token.username,
                                         "password": token.password}})
    mirrors = (parse_mirror(registries.anonymous.url), parse_mirror(token.url))
    async with RegistryClient(credentials=DockerCredentials(config)) as client:
        mirrored = MirroredDigests(client, lambda: mirrors)
        ref = parse_reference(f"{name}:v1")

        answers = await mirrored.remote_digests([ref])

    assert answers == {ref: pushed}
    assert mirrored.answered_by == {ref: token.url}
    assert any(f"repository:library/{name}:pull" in asked.scopes and asked.user == token.username
               for asked in token.token_requests)

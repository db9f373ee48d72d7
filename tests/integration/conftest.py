"""The engines the check and update tests run on: Docker 20.10 (classic store), Docker 26.1
with the containerd image store, and Podman. Each is started once per session; the registries
are the session's own, shared by all three.

A test module opts in to running on both Docker engines with
`from tests.integration.engines import *` (see tests/integration/engines.py); the others keep
the session's one engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.engines.docker import DockerEngine
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from bot.store.db import Store
from tests.conftest import _stoppers
from tests.integration.engines import EngineUnderTest
from tests.integration.hosts import compose, mirror, own_engine, second_engine  # noqa: F401
from tests.services.engine import Engine
from tests.services.images import ImageFactory
from tests.services.newer_engine import ContainerdStoreEngine, NewerEngineUnavailable
from tests.services.podman import RUN_DEFAULTS, PodmanEngine, PodmanUnavailable
from tests.services.registry import Registries


@pytest.fixture(scope="session")
def containerd_engine(registries: Registries) -> Iterator[EngineUnderTest]:
    """Docker 26.1 (Debian 13) with the containerd image store; skips where it cannot run."""
    yield from own_engine(
        ContainerdStoreEngine(), "containerd",
        "Docker 26.1 with the containerd image store cannot run here",
        (NewerEngineUnavailable, RuntimeError, OSError),
    )


@pytest.fixture(scope="session")
def podman_engine(registries: Registries, services_dir: Path) -> Iterator[EngineUnderTest]:
    """Podman's Docker-compatible API (storage of the session's own); skips where it cannot
    run."""
    engine = PodmanEngine(services_dir / "podman")
    _stoppers.append(engine.stop)
    try:
        engine.start()
    except PodmanUnavailable as exc:
        pytest.skip(f"Podman cannot run here: {exc}")
    yield EngineUnderTest("podman", engine.url, engine.client, ImageFactory(engine.client),
                          RUN_DEFAULTS)
    engine.stop()


@pytest.fixture(scope="session")
def classic_engine(_engine: Engine, registries: Registries) -> EngineUnderTest:
    """The session's engine (Docker 20.10 here, classic store)."""
    return EngineUnderTest("classic", _engine.url, _engine.client, ImageFactory(_engine.client))


@pytest.fixture(scope="session", params=["classic", "containerd"])
def engine_under_test(request: pytest.FixtureRequest) -> EngineUnderTest:
    """Each Docker engine in turn: the session's (classic store), then Docker 26.1's."""
    found: EngineUnderTest = request.getfixturevalue(f"{request.param}_engine")
    return found


@pytest.fixture
def engine(docker_host: str) -> Iterator[DockerEngine]:
    """DockWarden's engine client on the module's engine (DOCKER_HOST as the test sees it)."""
    engine = DockerEngine(docker_host)
    yield engine
    engine.close()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store in the test's own folder."""
    store = Store(tmp_path / "dockwarden.db")
    yield store
    store.close()


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[RegistryClient]:
    """DockWarden's registry client with an empty Docker config of the test's own."""
    config = tmp_path / "docker-config"
    config.mkdir(exist_ok=True)
    async with RegistryClient(credentials=DockerCredentials(str(config))) as client:
        yield client

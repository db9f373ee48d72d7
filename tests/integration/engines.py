"""Fixtures that run a test module on each Docker engine in turn (see conftest.py here).

`from tests.integration.engines import *` in a module replaces its `docker_host`,
`docker_client`, `images` and `containers` by those of `engine_under_test`, which pytest
parametrizes over the classic store and the containerd image store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.services.containers import ContainerFactory
from tests.services.images import ImageFactory

__all__ = ["containers", "docker_client", "docker_host", "images"]


@dataclass
class EngineUnderTest:
    """One engine as the tests use it."""

    store: str  # classic | containerd | podman
    url: str
    client: docker.DockerClient
    images: ImageFactory
    run_defaults: dict[str, Any] = field(default_factory=dict)

    def containers(self) -> ContainerFactory:
        """A ContainerFactory on this engine (its cleanup() is the caller's)."""
        return ContainerFactory(self.client, self.run_defaults)


@pytest.fixture
def docker_host(engine_under_test: EngineUnderTest) -> str:
    """The URL of the engine under test."""
    return engine_under_test.url


@pytest.fixture
def docker_client(engine_under_test: EngineUnderTest) -> docker.DockerClient:
    """A client of the engine under test."""
    return engine_under_test.client


@pytest.fixture
def images(engine_under_test: EngineUnderTest) -> ImageFactory:
    """ImageFactory on the engine under test (the session's registries)."""
    return engine_under_test.images


@pytest.fixture
def containers(engine_under_test: EngineUnderTest) -> Iterator[ContainerFactory]:
    """Labelled containers on the engine under test, removed after the test."""
    factory = engine_under_test.containers()
    yield factory
    factory.cleanup()


def proc_files_of(container: Any, where: Path) -> str:
    """A directory holding the container's /proc/self/cgroup and mountinfo, as its own process
    printed them (its command: cat cgroup, a line "=====", cat mountinfo, then sleep)."""
    deadline = time.monotonic() + 30
    while True:
        cgroup, sep, mountinfo = container.logs().decode().partition("=====\n")
        if sep and mountinfo.endswith("\n"):
            break
        assert time.monotonic() < deadline, "the container printed nothing"
        time.sleep(0.1)
    (where / "cgroup").write_text(cgroup)
    (where / "mountinfo").write_text(mountinfo)
    return str(where)

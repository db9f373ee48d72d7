"""Fixtures for the image tests: DockWarden's image built once per session (reused by hash)."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from tests.image.build import build_image


@pytest.fixture(scope="session")
def dockwarden_image(docker_client: docker.DockerClient, services_dir: Path) -> str:
    """The image's tag, built from a locally made Debian base and the host's wheels."""
    return build_image(docker_client, services_dir / "image")


@pytest.fixture(scope="session")
def engine_socket(docker_host: str) -> str:
    """The engine's unix socket on this machine, to mount into DockWarden's container."""
    if not docker_host.startswith("unix://"):
        pytest.skip(f"the engine is not on a local unix socket ({docker_host})")
    return docker_host.removeprefix("unix://")

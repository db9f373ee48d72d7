"""Fixtures of the fault suite (the session's engine and registries come from tests/conftest)."""

from __future__ import annotations

from typing import Any

import docker
import pytest

from tests.faults.kit import AppImage, make_app_image


@pytest.fixture(scope="session")
def app_image(docker_client: docker.DockerClient, images: Any, registries: Any) -> AppImage:
    """One outdated app image for the whole suite (the local tag is reset for each use)."""
    return make_app_image(docker_client, images, registries.anonymous)

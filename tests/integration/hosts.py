"""Fixtures for several Docker hosts, a registry mirror and Compose v2 (registered from
conftest.py here): each is started once per session, only when a test asks for it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _stoppers
from tests.integration.engines import EngineUnderTest
from tests.services.compose import Compose, ComposeUnavailable
from tests.services.engine import Engine, remove_session_resources
from tests.services.images import ImageFactory
from tests.services.registry import Registries, RegistryService
from tests.services.second_engine import SecondEngine


@pytest.fixture(scope="session")
def mirror(registries: Registries) -> RegistryService:
    """The registry the second engine mirrors Docker Hub through (the anonymous one): push
    `library/<name>` there and `docker pull <name>` on the second engine finds it."""
    return registries.anonymous


def own_engine(engine: Engine, store: str, cannot: str,
               errors: tuple[type[Exception], ...] = (RuntimeError, OSError)
               ) -> Iterator[EngineUnderTest]:
    """For a session fixture: start `engine` (a skip saying `cannot`, and why, when it fails),
    yield it as the tests use it, then remove what the session made there and stop it."""
    _stoppers.append(engine.stop)
    try:
        engine.start()
    except errors as exc:
        engine.stop()
        pytest.skip(f"{cannot}: {exc}")
    remove_session_resources(engine.client, dead_only=True)
    yield EngineUnderTest(store, engine.url, engine.client, ImageFactory(engine.client))
    with contextlib.suppress(Exception):
        remove_session_resources(engine.client, dead_only=False, session=os.getpid())
    engine.stop()


@pytest.fixture(scope="session")
def second_engine(mirror: RegistryService) -> Iterator[EngineUnderTest]:
    """A second dockerd (own socket, data root, bridge) whose Docker Hub mirror is `mirror`;
    skips where it cannot run."""
    yield from own_engine(SecondEngine(mirror.url), "second", "a second dockerd cannot run here")


@pytest.fixture(scope="session")
def compose(_engine: Engine, services_dir: Path) -> Compose:
    """Compose v2 (Debian 13's) on the session's engine; skips saying why where it is not
    unpacked."""
    try:
        return Compose(_engine.url, services_dir / "compose-config")
    except ComposeUnavailable as exc:
        pytest.skip(str(exc))

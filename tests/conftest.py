"""Session fixtures: the real Docker engine, registries and images every integration test uses."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import docker
import pytest

from tests.services import WORK_ROOT
from tests.services.containers import ContainerFactory, write_docker_config
from tests.services.engine import Engine, remove_session_resources
from tests.services.images import ImageFactory
from tests.services.odd_registry import OddRegistry
from tests.services.procs import free_port, pid_alive
from tests.services.registry import DeadRegistry, Registries
from tests.services.swarm import SwarmEngine, SwarmUnavailable

_stoppers: list[Callable[[], None]] = []


def _stop_all() -> None:
    """Stop whatever the session started, newest first (also at exit and on SIGTERM)."""
    while _stoppers:
        with contextlib.suppress(Exception):
            _stoppers.pop()()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # pytest only unwinds (and tears fixtures down) on KeyboardInterrupt.
    raise KeyboardInterrupt


atexit.register(_stop_all)


def pytest_configure(config: pytest.Config) -> None:
    """Let SIGTERM unwind like Ctrl-C so services stop; only if nobody else handles it."""
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/integration, tests/faults and tests/e2e carry their marker without
    repeating it."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts or "faults" in parts:
            item.add_marker(pytest.mark.integration)
        elif "e2e" in parts:
            item.add_marker(pytest.mark.e2e)


def _session_dir() -> Path:
    """This session's directory under WORK_ROOT; dead sessions' directories are removed."""
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    for old in [*WORK_ROOT.glob("session-*"), *WORK_ROOT.glob("engine-*")]:
        with contextlib.suppress(ValueError):
            if not pid_alive(int(old.name.split("-", 1)[1])) and not _daemon_alive(old):
                shutil.rmtree(old, ignore_errors=True)
    path = WORK_ROOT / f"session-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _daemon_alive(root: Path) -> bool:
    """Whether a private engine dir's dockerd still runs (its session died without it)."""
    try:
        return pid_alive(int((root / "docker.pid").read_text().strip()))
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def services_dir() -> Iterator[Path]:
    """Directory for this session's service state and logs (removed at the end)."""
    path = _session_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def _engine() -> Iterator[Engine]:
    engine = Engine()
    engine.start()
    _stoppers.append(engine.stop)
    saved = os.environ.get("DOCKER_HOST")
    if engine.started:
        # Code under test (and `dockwarden` subprocesses) find the engine the usual way.
        os.environ["DOCKER_HOST"] = engine.url
    try:
        remove_session_resources(engine.client, dead_only=True)
        yield engine
    finally:
        with contextlib.suppress(Exception):
            remove_session_resources(engine.client, dead_only=False, session=os.getpid())
        if engine.started:
            if saved is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = saved
        engine.stop()


@pytest.fixture(scope="session")
def docker_client(_engine: Engine) -> docker.DockerClient:
    """A docker.DockerClient on the real engine (one is started if none answers)."""
    return _engine.client


@pytest.fixture(scope="session")
def docker_host(_engine: Engine) -> str:
    """The engine's URL, as DOCKER_HOST would hold it."""
    return _engine.url


@pytest.fixture(scope="session")
def registries(services_dir: Path) -> Iterator[Registries]:
    """Three real registries: `.anonymous`, `.basic` (htpasswd) and `.token` (bearer)."""
    regs = Registries(services_dir / "registries")
    regs.start()
    _stoppers.append(regs.stop)
    yield regs
    regs.stop()


@pytest.fixture(scope="session")
def swarm() -> Iterator[SwarmEngine]:
    """A swarm manager of the session's own (see tests/services/swarm.py); skips where none
    can be started."""
    engine = SwarmEngine()
    _stoppers.append(engine.stop)
    try:
        engine.start()
    except SwarmUnavailable as exc:
        engine.stop()
        pytest.skip(str(exc))
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def images(docker_client: docker.DockerClient, registries: Registries) -> ImageFactory:
    """ImageFactory: push/push_multiarch/pull/build_local of distinct busybox images."""
    return ImageFactory(docker_client)


@pytest.fixture
def containers(docker_client: docker.DockerClient) -> Iterator[ContainerFactory]:
    """containers.run(image, name=None, **kwargs): labelled containers removed after the test."""
    factory = ContainerFactory(docker_client)
    yield factory
    factory.cleanup()


@pytest.fixture
def docker_config(tmp_path: Path) -> Callable[..., str]:
    """docker_config(auths, **extra) -> a DOCKER_CONFIG dir holding config.json."""
    counter = iter(range(1_000_000))

    def make(auths: dict[str, Any], **extra: Any) -> str:
        return write_docker_config(tmp_path / f"docker-config-{next(counter)}", auths, **extra)

    return make


@pytest.fixture(scope="session")
def _odd_registry_server(registries: Registries) -> Iterator[OddRegistry]:
    odd = OddRegistry(registries.anonymous)
    odd.start()
    _stoppers.append(odd.stop)
    yield odd
    odd.stop()


@pytest.fixture
def odd_registry(_odd_registry_server: OddRegistry) -> OddRegistry:
    """A programmable misbehaving front of the anonymous registry, reset for each test."""
    _odd_registry_server.reset()
    return _odd_registry_server


@pytest.fixture
def dead_registry() -> DeadRegistry:
    """"127.0.0.1:PORT" (a str, also with .host/.url) where nothing listens."""
    return DeadRegistry(f"127.0.0.1:{free_port()}")

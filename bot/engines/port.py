"""The engine port: every engine call the update path makes, typed, and nothing else.

`DockerEngine` (bot/engines/docker.py) is the real implementation over the Docker SDK;
tests/unit/fake_engine.py is an in-memory one. Each call raises an EngineError whose message is
the engine's own words (EngineUnavailable when the engine went away); `doing` puts what the
caller was doing in front, as the update's messages say it. Containers and images come back as
typed views (bot/engines/inspect.py), swarm services and their tasks too (bot/engines/swarm.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

from bot.engines.inspect import (
    ContainerInspect,
    ContainerSummary,
    Endpoint,
    ImageInspect,
    JsonValue,
)
from bot.engines.swarm import ServiceInspect, ServiceTask
from bot.errors import EngineError, EngineUnavailable


class Engine(Protocol):
    """The container engine as the update path uses it; every method runs off the event loop."""

    async def inspect_container(self, ref: str) -> ContainerInspect | None:
        """The container named or identified by `ref`; None when there is none."""

    async def inspect_image(self, ref: str) -> ImageInspect | None:
        """The image named or identified by `ref`; None when there is none."""

    async def list_containers(self) -> list[ContainerSummary]:
        """The running containers."""

    async def pull(
        self, repository: str, digest: str, auth: Mapping[str, str] | None
    ) -> ImageInspect:
        """Pull `repository@digest` (with these credentials, else Docker's own); the image."""

    async def tag(self, image: str, repository: str, tag: str | None) -> None:
        """Let `repository:tag` name `image`."""

    async def remove_image(self, image: str) -> None:
        """Remove an image; refused while a container or another tag still uses it."""

    async def stop(self, container_id: str, *, timeout: int) -> None:
        """Stop a container with its own stop signal, killing it after `timeout` seconds."""

    async def rename(self, container_id: str, name: str) -> None:
        """Give a container another name."""

    async def create(self, name: str, body: Mapping[str, JsonValue]) -> str:
        """Create a container from an engine API create body; its id."""

    async def connect(self, container_id: str, endpoint: Endpoint) -> None:
        """Connect a container to one more network, with these settings there."""

    async def start(self, container_id: str) -> None:
        """Start a container."""

    async def restart(self, container_id: str) -> None:
        """Restart a container."""

    async def remove_container(
        self, container_id: str, *, volumes: bool = False, force: bool = False
    ) -> None:
        """Remove a container (with the anonymous volumes it made itself, when `volumes`)."""

    async def inspect_service(self, ref: str) -> ServiceInspect | None:
        """A swarm service; None without it (or without a manager here)."""

    async def service_tasks(self, service_id: str) -> list[ServiceTask]:
        """A swarm service's tasks."""

    async def update_service(
        self, service_id: str, version: int, task_template: Mapping[str, JsonValue]
    ) -> None:
        """Give a swarm service a new task template, the rest of its spec as the swarm has it."""


@contextmanager
def doing(what: str) -> Iterator[None]:
    """Put what the caller was doing in front of an engine error raised inside."""
    try:
        yield
    except EngineUnavailable as exc:
        raise EngineUnavailable(f"{what}: {exc}") from None
    except EngineError as exc:
        if type(exc) is not EngineError:
            raise
        raise EngineError(f"{what}: {exc}") from None


async def require_image(engine: Engine, ref: str, what: str) -> ImageInspect:
    """The image `ref`; an EngineError saying `what` failed when the engine has none."""
    with doing(what):
        image = await engine.inspect_image(ref)
        if image is None:
            raise EngineError(f"no such image: {ref}")
    return image

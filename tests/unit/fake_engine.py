"""An in-memory engine behind the engine port (bot/engines/port.py), for fast update tests.

Containers and images live in dicts; every answer goes through the real inspect parsers, so the
update path sees exactly the views it gets from Docker. `refuse` makes a call fail as the
engine would; `on_start` decides what a started container does (exit, turn unhealthy, ...);
`calls` records every engine call in order. Legacy links (`--link`) behave as Docker's do: kept
in inspect's `/target:/self/alias` form, moved along when their target is renamed, and a
container linked to one that is not running refuses to start.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.engines.inspect import (
    ContainerInspect,
    ContainerSummary,
    Endpoint,
    ImageInspect,
    JsonValue,
    parse_container,
    parse_image,
    parse_summary,
)
from bot.engines.swarm import ServiceInspect, ServiceTask
from bot.errors import EngineError


@dataclass
class FakeContainer:
    """One container as the fake engine keeps it."""

    id: str
    name: str
    image_id: str
    config: dict[str, Any]
    host_config: dict[str, Any] = field(default_factory=dict)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    running: bool = False
    exit_code: int = 0
    started_at: str = ""
    restart_count: int = 0
    health: str | None = None

    def inspect(self) -> dict[str, Any]:
        """The engine's inspect document of this container."""
        state: dict[str, Any] = {
            "Running": self.running, "Restarting": False, "ExitCode": self.exit_code,
            "StartedAt": self.started_at,
        }
        if self.health is not None:
            state["Health"] = {"Status": self.health, "Log": [
                {"ExitCode": 0 if self.health == "healthy" else 1, "Output": "probe\n"}
            ]}
        return {
            "Id": self.id, "Name": f"/{self.name}", "Image": self.image_id,
            "RestartCount": self.restart_count, "State": state, "Config": self.config,
            "HostConfig": self.host_config, "Mounts": [],
            "NetworkSettings": {"Networks": self.networks},
        }


@dataclass
class _Refusal:
    why: str
    when: Callable[[str], bool]
    times: int | None


class FakeEngine:
    """The engine port over dicts; see the module docstring."""

    def __init__(self) -> None:
        self.containers: dict[str, FakeContainer] = {}
        self.images: dict[str, dict[str, Any]] = {}  # by image id
        self.registry: dict[str, dict[str, Any]] = {}  # pullable images, by "repo@digest"
        self.calls: list[tuple[str, str]] = []  # (method, first argument)
        self.on_start: Callable[[FakeContainer], None] | None = None
        self._refusals: dict[str, list[_Refusal]] = {}
        self._ids = itertools.count(1)

    # ---- setting the scene -----------------------------------------------------------------

    def add_image(self, repo_tag: str, *, digest: str, config: dict[str, Any] | None = None
                  ) -> str:
        """An image pulled as `repo_tag` at `digest`; its id."""
        image_id = f"sha256:{next(self._ids):064x}"
        repo = repo_tag.rsplit(":", 1)[0]
        self.images[image_id] = {
            "Id": image_id, "RepoTags": [repo_tag], "RepoDigests": [f"{repo}@{digest}"],
            "Config": config or {},
        }
        return image_id

    def publish(self, repo: str, digest: str, config: dict[str, Any] | None = None) -> None:
        """Let `repo@digest` be pulled."""
        self.registry[f"{repo}@{digest}"] = {"Config": config or {}}

    def run(self, name: str, image: str, **config: Any) -> FakeContainer:
        """A running container created from `image` (a reference the fake knows)."""
        image_id = self._image_id(image)
        if image_id is None:
            raise AssertionError(f"no image {image}")
        container = FakeContainer(
            id=f"{next(self._ids):064x}", name=name, image_id=image_id,
            config={"Image": image, **config}, running=True, started_at="t0",
        )
        self.containers[container.id] = container
        return container

    def refuse(self, method: str, why: str, *, when: Callable[[str], bool] = lambda _: True,
               times: int | None = None) -> None:
        """Make `method` fail with `why` when its first argument satisfies `when`."""
        self._refusals.setdefault(method, []).append(_Refusal(why, when, times))

    def named(self, name: str) -> FakeContainer | None:
        """The container under `name`, if any."""
        return next((c for c in self.containers.values() if c.name == name), None)

    # ---- the port ------------------------------------------------------------------------------

    def _call(self, method: str, target: str) -> None:
        self.calls.append((method, target))
        for refusal in self._refusals.get(method, []):
            if refusal.times != 0 and refusal.when(target):
                if refusal.times is not None:
                    refusal.times -= 1
                raise EngineError(refusal.why)

    def _find(self, ref: str) -> FakeContainer | None:
        for container in self.containers.values():
            if ref in (container.id, container.name) or (
                len(ref) >= 12 and container.id.startswith(ref)
            ):
                return container
        return None

    def _get(self, ref: str) -> FakeContainer:
        container = self._find(ref)
        if container is None:
            raise EngineError(f"No such container: {ref}")
        return container

    def _image_id(self, ref: str) -> str | None:
        if ref in self.images:
            return ref
        for image_id, image in self.images.items():
            if ref in image["RepoTags"] or ref in image["RepoDigests"]:
                return image_id
        return None

    async def inspect_container(self, ref: str) -> ContainerInspect | None:
        self._call("inspect_container", ref)
        found = self._find(ref)
        return None if found is None else parse_container(found.inspect())

    async def inspect_image(self, ref: str) -> ImageInspect | None:
        self._call("inspect_image", ref)
        image_id = self._image_id(ref)
        return None if image_id is None else parse_image(self.images[image_id])

    async def list_containers(self) -> list[ContainerSummary]:
        self._call("list_containers", "")
        return [
            parse_summary({"Id": c.id, "Names": [f"/{c.name}"], "Image": c.config.get("Image"),
                           "ImageID": c.image_id, "Labels": c.config.get("Labels") or {},
                           "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode")}})
            for c in self.containers.values()
            if c.running
        ]

    async def pull(
        self, repository: str, digest: str, auth: Mapping[str, str] | None
    ) -> ImageInspect:
        self._call("pull", f"{repository}@{digest}")
        published = self.registry.get(f"{repository}@{digest}")
        if published is None:
            raise EngineError(f"manifest for {repository}@{digest} not found")
        image_id = self._image_id(f"{repository}@{digest}")
        if image_id is None:
            image_id = f"sha256:{next(self._ids):064x}"
            self.images[image_id] = {"Id": image_id, "RepoTags": [],
                                     "RepoDigests": [f"{repository}@{digest}"], **published}
        return parse_image(self.images[image_id])

    async def tag(self, image: str, repository: str, tag: str | None) -> None:
        self._call("tag", image)
        image_id = self._image_id(image)
        if image_id is None:
            raise EngineError(f"No such image: {image}")
        name = f"{repository}:{tag or 'latest'}"
        for other in self.images.values():
            if name in other["RepoTags"]:
                other["RepoTags"].remove(name)
        self.images[image_id]["RepoTags"].append(name)

    async def remove_image(self, image: str) -> None:
        self._call("remove_image", image)
        image_id = self._image_id(image)
        if image_id is None:
            raise EngineError(f"No such image: {image}")
        if any(c.image_id == image_id for c in self.containers.values()):
            raise EngineError(f"conflict: unable to remove {image}: image is being used")
        del self.images[image_id]

    async def stop(self, container_id: str, *, timeout: int) -> None:
        self._call("stop", container_id)
        container = self._get(container_id)
        container.running, container.exit_code = False, 0

    async def rename(self, container_id: str, name: str) -> None:
        self._call("rename", container_id)
        container = self._get(container_id)
        if self.named(name) not in (None, container):
            raise EngineError(f"Conflict. The container name \"/{name}\" is already in use")
        for other in self.containers.values():  # the engine moves links along with the name
            links = other.host_config.get("Links") or []
            other.host_config["Links"] = [
                f"/{name}:{link.split(':', 1)[1]}" if link.startswith(f"/{container.name}:")
                else link for link in links] if links else links
        container.name = name

    async def create(self, name: str, body: Mapping[str, JsonValue]) -> str:
        self._call("create", name)
        if self.named(name) is not None:
            raise EngineError(f"Conflict. The container name \"/{name}\" is already in use")
        given = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
        image_id = self._image_id(str(given.get("Image")))
        if image_id is None:
            raise EngineError(f"No such image: {given.get('Image')}")
        # As Docker does: what the body leaves unset, the image's config decides.
        config = {**self.images[image_id]["Config"],
                  **{k: v for k, v in given.items() if v is not None}}
        document: dict[str, Any] = dict(body)
        host_config = dict(document.get("HostConfig") or {})
        if host_config.get("Links"):  # "target:alias" as given, "/target:/self/alias" inspected
            host_config["Links"] = [
                f"/{target.lstrip('/')}:/{name}/{alias or target.lstrip('/')}"
                for target, _, alias in (str(link).partition(":") for link in
                                         host_config["Links"])]
        container = FakeContainer(
            id=f"{next(self._ids):064x}", name=name, image_id=image_id, config=config,
            host_config=host_config,
            networks=dict((document.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}),
        )
        self.containers[container.id] = container
        return container.id

    async def connect(self, container_id: str, endpoint: Endpoint) -> None:
        self._call("connect", container_id)
        self._get(container_id).networks[endpoint.network] = endpoint.endpoint_config()

    async def start(self, container_id: str) -> None:
        self._call("start", container_id)
        container = self._get(container_id)
        for link in container.host_config.get("Links") or []:
            target, _, alias = link.partition(":")
            linked = self.named(target.lstrip("/"))
            if linked is None or not linked.running:
                raise EngineError(f"Cannot link to a non running container: {target} AS {alias}")
        container.running, container.started_at = True, f"t{next(self._ids)}"
        # A container with a HEALTHCHECK passes it unless `on_start` says otherwise.
        check = (container.config.get("Healthcheck") or {}).get("Test") or ["NONE"]
        container.health = None if check[0] == "NONE" else "healthy"
        if self.on_start is not None:
            self.on_start(container)

    async def restart(self, container_id: str) -> None:
        self._call("restart", container_id)
        container = self._get(container_id)
        container.running, container.started_at = True, f"t{next(self._ids)}"

    async def remove_container(
        self, container_id: str, *, volumes: bool = False, force: bool = False
    ) -> None:
        self._call("remove_container", container_id)
        container = self._get(container_id)
        if container.running and not force:
            raise EngineError(f"cannot remove running container {container_id[:12]}")
        del self.containers[container.id]

    async def inspect_service(self, ref: str) -> ServiceInspect | None:
        self._call("inspect_service", ref)
        return None  # no swarm here

    async def service_tasks(self, service_id: str) -> list[ServiceTask]:
        self._call("service_tasks", service_id)
        return []

    async def update_service(
        self, service_id: str, version: int, task_template: Mapping[str, JsonValue]
    ) -> None:
        self._call("update_service", service_id)
        raise EngineError("This node is not a swarm manager.")

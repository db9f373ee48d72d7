"""The Docker engine: the connection, the SDK's errors translated (here only), the engine port.

`DockerEngine` is the real implementation of the engine port (bot/engines/port.py): its async
methods run the synchronous SDK in a worker thread and answer typed views (bot/engines/
inspect.py). Its synchronous methods (version, info, list_workloads, ...) serve the checker and
doctor, which run them with `asyncio.to_thread`; bot/engines/workloads.py lists the containers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.tls import TLSConfig

from bot.domain.model import Workload
from bot.engines.hosts import DEFAULT_SOCKET, shown_url
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
from bot.engines.port import doing, require_image
from bot.engines.swarm import ServiceInspect, ServiceTask, parse_service, parse_task
from bot.engines.workloads import (
    STORE_CLASSIC,
    STORE_CONTAINERD,
    STORE_PODMAN,
    list_workloads,
)
from bot.errors import EngineError, EngineUnavailable

log = logging.getLogger(__name__)

# `docker info`'s DriverStatus on an engine that keeps images in containerd's store.
_CONTAINERD_DRIVER_TYPE = "io.containerd.snapshotter.v1"

# Lost connections and timeouts mean the engine went away, not that it refused one request.
_CONNECTION_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    ConnectionError,
)


class _APIClient(docker.APIClient):  # type: ignore[misc]
    """An API client that keeps the engine's last /version answer."""

    # Connecting asks /version for the API version; the same answer says whether the engine is
    # Podman, which DockerEngine.store() would otherwise ask again on a check's first listing.
    last_version: dict[str, Any] | None = None

    def version(self, api_version: bool = True) -> dict[str, Any]:
        """The engine's /version document, kept."""
        found: dict[str, Any] = super().version(api_version)
        self.last_version = found
        return found


class _Client(docker.DockerClient):  # type: ignore[misc]
    """A DockerClient on an `_APIClient` (docker.from_env's, otherwise)."""

    def __init__(self, **kwargs: Any) -> None:
        self.api = _APIClient(**kwargs)


class _OwnTLSAPIClient(_APIClient):
    """An API client whose TLS verification is its own, whatever REQUESTS_CA_BUNDLE says."""

    def merge_environment_settings(self, *args: Any) -> dict[str, Any]:
        """requests' merge, except that the session's verify (a context's CA, or False) wins."""
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace the session's CA file:
        # a context's engine would then be checked against the system's CAs.
        merged: dict[str, Any] = super().merge_environment_settings(*args)
        merged["verify"] = self.verify
        return merged


class _OwnTLSClient(docker.DockerClient):  # type: ignore[misc]
    """A DockerClient on an `_OwnTLSAPIClient`."""

    def __init__(self, **kwargs: Any) -> None:
        self.api = _OwnTLSAPIClient(**kwargs)


class DockerEngine:
    """A connection to one Docker engine, with the API version negotiated at start.

    With `lazy` (one of several hosts), an engine that does not answer at start is not an
    error yet: the connection is tried again at each use from a worker thread (the event loop
    is never held up by a connect), and each use until then raises EngineUnavailable.
    """

    _info: dict[str, Any] | None = None  # the last /info document the engine gave

    def __init__(self, base_url: str | None = None, *, tls: TLSConfig | bool | None = None,
                 timeout: float = 60.0, lazy: bool = False,
                 advice: str = "start Docker or set DOCKER_HOST") -> None:
        # DOCKER_TLS_VERIFY and DOCKER_CERT_PATH are Docker's own settings: let the SDK read them,
        # with the engine address DockWarden was configured with taking precedence. A `tls` given
        # (a Docker context's, bot/engines/hosts.py) replaces them.
        environment = dict(os.environ)
        if base_url:
            environment["DOCKER_HOST"] = base_url
        url = environment.get("DOCKER_HOST") or DEFAULT_SOCKET
        self.where = shown_url(url)
        self._open = (url, environment, tls, int(timeout))
        self._advice = advice
        self._client: Any = None
        self._failure = f"no Docker engine answers at {self.where} yet"
        self._connecting = threading.Lock()
        self._store: str | None = None
        try:
            self._client = self._connect()
        except EngineUnavailable:
            if not lazy:
                raise

    def _connect(self) -> Any:
        url, environment, tls, timeout = self._open
        failure = ""
        try:
            # version="auto" asks the engine for its API version (GET /version): that request is
            # also the proof that an engine answers, and it makes API 1.41 up to current work.
            if tls is None:
                return _Client.from_env(version="auto", timeout=timeout, environment=environment)
            return _OwnTLSClient(base_url=url, tls=tls, version="auto", timeout=timeout)
        except (docker.errors.DockerException, *_CONNECTION_ERRORS) as exc:
            failure = self._failure = self._unavailable(exc)
        # Raised outside the handler so the SDK's exception chain (and the socket its failed
        # connect left in a frame) is not kept alive by ours.
        raise EngineUnavailable(failure)

    @property
    def docker(self) -> Any:
        """The SDK client; connected now when a lazy engine did not answer before."""
        client = self._client
        if client is not None:
            return client
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # a worker thread: a connect may take its time here
        else:
            raise EngineUnavailable(self._failure)
        with self._connecting:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _unavailable(self, exc: BaseException) -> str:
        why = _root_cause(exc)
        return f"no Docker engine answers at {self.where}: {why}; {self._advice}"

    @contextmanager
    def calls(self, what: str | None = None) -> Iterator[None]:
        """The one translation of the SDK's failures into DockWarden's engine errors.

        With `what`, the message says what the engine refused; without (the port's calls), it
        is the engine's own words, for the caller to put in context (bot/engines/port.doing).
        """
        try:
            yield
        except _CONNECTION_ERRORS as exc:
            during = f" while {what}" if what else ""
            raise EngineUnavailable(
                f"the Docker engine at {self.where} stopped answering{during}: "
                f"{_root_cause(exc)}"
            ) from None
        except docker.errors.APIError as exc:
            why = exc.explanation or exc
            raise EngineError(f"the Docker engine refused {what}: {why}" if what else str(why)) \
                from None
        except docker.errors.DockerException as exc:
            raise EngineError(f"the Docker engine failed {what}: {exc}" if what else str(exc)) \
                from None

    async def _run(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One SDK call in a worker thread, its failures translated."""
        with self.calls():
            return await asyncio.to_thread(call, *args, **kwargs)

    async def _found(self, call: Callable[[str], Any], ref: str) -> Any:
        """An SDK inspect call in a worker thread; None when the engine has no such object."""

        def found() -> Any:
            try:
                return call(ref)
            except docker.errors.NotFound:
                return None

        return await self._run(found)

    @property
    def api_version(self) -> str:
        """The API version negotiated with the engine."""
        return str(self.docker.api.api_version)

    def version(self) -> dict[str, Any]:
        """The engine's /version document (Version, ApiVersion, Os, Arch, ...)."""
        with self.calls("reporting its version"):
            return dict(self.docker.version())

    def info(self) -> dict[str, Any]:
        """The engine's /info document (RegistryConfig, Driver, ...)."""
        with self.calls("reporting its settings"):
            found = dict(self.docker.info())
        self._info = found  # what store() reads its storage from, when it has not yet asked
        return found

    def image_document(self, reference: str) -> dict[str, Any] | None:
        """`docker image inspect` of a local image, whole; None when the engine will not say."""
        try:
            with self.calls():
                return dict(self.docker.api.inspect_image(reference))
        except EngineUnavailable:
            raise
        except EngineError:  # no such image, or a refusal: the registry is asked instead
            return None

    def list_workloads(self, *, stopped: bool = False) -> list[Workload]:
        """The running containers (stopped ones too with `stopped`), each with its reference."""
        return list_workloads(self, stopped=stopped)

    def store(self) -> str:
        """Where the engine keeps images: "classic", "containerd" or "podman" (asked once).

        The classic store records RepoDigests only on pull and push; the containerd image store
        and Podman give every image, built or imported too, a RepoDigest of its own digest.
        """
        if self._store is None:
            said = self.docker.api.last_version  # the answer the API version was negotiated with
            if said is None:
                with self.calls("reporting its version"):
                    said = self.docker.version()
            components = said.get("Components") or []
            if any("podman" in str(c.get("Name", "")).lower() for c in components):
                self._store = STORE_PODMAN
            else:
                self._store = STORE_CONTAINERD if self._containerd_store() else STORE_CLASSIC
        return self._store

    def list_services(self) -> list[Workload]:
        """Swarm services when this engine is a swarm manager; otherwise none."""
        from bot.engines.swarm import list_services

        with self.calls("listing swarm services"):
            return list_services(self.docker)

    def close(self) -> None:
        """Release the engine connection."""
        if self._client is not None:
            self._client.close()

    # ---- the engine port (bot/engines/port.py) ------------------------------------------

    async def inspect_container(self, ref: str) -> ContainerInspect | None:
        """The container named or identified by `ref`; None when there is none."""
        found = await self._found(self.docker.api.inspect_container, ref)
        return None if found is None else parse_container(found)

    async def inspect_image(self, ref: str) -> ImageInspect | None:
        """The image named or identified by `ref`; None when there is none."""
        found = await self._found(self.docker.api.inspect_image, ref)
        return None if found is None else parse_image(found)

    async def list_containers(self) -> list[ContainerSummary]:
        """The running containers."""
        return [parse_summary(c) for c in await self._run(self.docker.api.containers)]

    async def pull(
        self, repository: str, digest: str, auth: Mapping[str, str] | None
    ) -> ImageInspect:
        """Pull `repository@digest` (with these credentials, else Docker's own); the image."""
        with doing("pulling"):
            events = await self._run(
                self.docker.api.pull, repository, tag=digest, stream=True, decode=True,
                auth_config=dict(auth) if auth is not None else None,
            )

        def drain() -> None:
            # A failed pull is an event in the stream, not an HTTP error.
            for event in events:
                if isinstance(event, dict) and event.get("error"):
                    raise EngineError(str(event["error"]))

        await self._run(drain)
        return await require_image(self, f"{repository}@{digest}", "inspecting the pulled image")

    async def tag(self, image: str, repository: str, tag: str | None) -> None:
        """Let `repository:tag` name `image`."""
        await self._run(self.docker.api.tag, image, repository, tag)

    async def remove_image(self, image: str) -> None:
        """Remove an image; refused while a container or another tag still uses it."""
        await self._run(self.docker.api.remove_image, image)

    async def stop(self, container_id: str, *, timeout: int) -> None:
        """Stop a container with its own stop signal, killing it after `timeout` seconds."""
        await self._run(self.docker.api.stop, container_id, timeout=timeout)

    async def rename(self, container_id: str, name: str) -> None:
        """Give a container another name."""
        await self._run(self.docker.api.rename, container_id, name)

    async def create(self, name: str, body: Mapping[str, JsonValue]) -> str:
        """Create a container from an engine API create body; its id."""
        created = await self._run(
            self.docker.api.create_container_from_config, dict(body), name
        )
        return str(created["Id"])

    async def connect(self, container_id: str, endpoint: Endpoint) -> None:
        """Connect a container to one more network, with these settings there."""
        await self._run(
            self.docker.api.connect_container_to_network,
            container_id,
            endpoint.network,
            ipv4_address=endpoint.ipv4_address,
            ipv6_address=endpoint.ipv6_address,
            aliases=list(endpoint.aliases) or None,
            links=list(endpoint.links) or None,
            link_local_ips=list(endpoint.link_local_ips) or None,
            driver_opt=dict(endpoint.driver_opts) if endpoint.driver_opts else None,
        )

    async def start(self, container_id: str) -> None:
        """Start a container."""
        await self._run(self.docker.api.start, container_id)

    async def restart(self, container_id: str) -> None:
        """Restart a container."""
        await self._run(self.docker.api.restart, container_id)

    async def remove_container(
        self, container_id: str, *, volumes: bool = False, force: bool = False
    ) -> None:
        """Remove a container (with the anonymous volumes it made itself, when `volumes`)."""
        await self._run(self.docker.api.remove_container, container_id, v=volumes, force=force)

    async def inspect_service(self, ref: str) -> ServiceInspect | None:
        """A swarm service; None without it (or without a manager here)."""

        def found() -> Any:
            try:
                return self.docker.api.inspect_service(ref)
            except docker.errors.NotFound:
                return None
            except docker.errors.APIError as exc:
                if exc.status_code == 503:  # "This node is not a swarm manager"
                    return None
                raise

        service = await self._run(found)
        return None if service is None else parse_service(service)

    async def service_tasks(self, service_id: str) -> list[ServiceTask]:
        """A swarm service's tasks."""
        tasks = await self._run(self.docker.api.tasks, filters={"service": service_id})
        return [parse_task(task) for task in tasks]

    async def update_service(
        self, service_id: str, version: int, task_template: Mapping[str, JsonValue]
    ) -> None:
        """Give a swarm service a new task template, the rest of its spec as the swarm has it."""
        await self._run(
            self.docker.api.update_service, service_id, version,
            task_template=dict(task_template), fetch_current_spec=True,
        )

    def _containerd_store(self) -> bool:
        """Whether the engine keeps its images in containerd's store (GET /info, unless the
        engine already answered it: a check asks /info for its insecure registries first)."""
        try:
            info = self._info
            if info is None:
                with self.calls("reporting its storage"):
                    info = self.docker.info()
            status = info.get("DriverStatus") or []
        except EngineUnavailable:
            raise
        except EngineError as exc:
            # Socket proxies often refuse /info; the classic store is then the safe guess (a
            # built image's own RepoDigest then reads as a registry error, not as silence).
            log.info("storage of the engine at %s unknown (%s): classic store assumed",
                     self.where, exc)
            return False
        return any(isinstance(pair, list) and _CONTAINERD_DRIVER_TYPE in pair for pair in status)

def _root_cause(exc: BaseException) -> str:
    """The OS-level reason under the SDK's wrapping ("Connection refused"), else the message."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        pending.extend([current.__cause__, current.__context__, *current.args])
        pending.append(getattr(current, "reason", None))
    return str(exc).strip() or type(exc).__name__

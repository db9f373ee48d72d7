"""Typed, frozen views of what the update path reads from `docker inspect`.

The engine's answers are parsed here, once, at the engine boundary: `parse_container`,
`parse_image` and `parse_summary` turn the SDK's dicts into `ContainerInspect`, `ImageInspect`
and `ContainerSummary`, and raise `MalformedInspect` (an EngineError) when a field has the wrong
shape. Only `Config` and `HostConfig` stay JSON documents (read-only), because recreating a
container posts them back to the engine nearly as they are (bot/update/spec.py).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeAlias

from bot.errors import MalformedInspect

JsonValue: TypeAlias = (
    "str | int | float | bool | None | list[JsonValue] | dict[str, JsonValue]"
)
JsonObject: TypeAlias = "dict[str, JsonValue]"

_EMPTY: Mapping[str, JsonValue] = MappingProxyType({})


@dataclass(frozen=True)
class HealthProbe:
    """One run of a HEALTHCHECK as the engine logged it."""

    exit_code: int | None
    output: str


@dataclass(frozen=True)
class ContainerState:
    """A container's State: running or not, and how its health check says it is."""

    running: bool = False
    restarting: bool = False
    exit_code: int | None = None
    started_at: str | None = None
    health: str | None = None  # "starting", "healthy", "unhealthy"; None without a check
    health_log: tuple[HealthProbe, ...] = ()


@dataclass(frozen=True)
class Mount:
    """A mount: of the container's `Mounts` (destination) or its HostConfig's (target)."""

    type: str
    destination: str
    name: str | None = None
    source: str | None = None
    rw: bool = True


@dataclass(frozen=True)
class Endpoint:
    """A container's settings on one network: as inspect shows them, as create and connect
    take them."""

    network: str
    network_id: str = ""
    aliases: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    link_local_ips: tuple[str, ...] = ()
    driver_opts: Mapping[str, str] | None = None

    def endpoint_config(self) -> JsonObject:
        """The engine API's EndpointSettings for create."""
        ipam: JsonObject = {}
        if self.ipv4_address:
            ipam["IPv4Address"] = self.ipv4_address
        if self.ipv6_address:
            ipam["IPv6Address"] = self.ipv6_address
        if self.link_local_ips:
            ipam["LinkLocalIPs"] = list(self.link_local_ips)
        endpoint: JsonObject = {}
        if ipam:
            endpoint["IPAMConfig"] = ipam
        if self.aliases:
            endpoint["Aliases"] = list(self.aliases)
        if self.links:
            endpoint["Links"] = list(self.links)
        if self.driver_opts:
            endpoint["DriverOpts"] = dict(self.driver_opts)
        return endpoint


@dataclass(frozen=True)
class ContainerInspect:
    """What the update path knows of one container (`docker inspect <container>`)."""

    id: str
    name: str  # without docker's leading slash
    image_id: str  # the image it runs ("Image")
    image: str  # the reference it was created from ("Config.Image"), as written
    labels: Mapping[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()
    user: str = ""
    state: ContainerState = ContainerState()
    restart_count: int = 0
    stop_timeout: int | None = None
    healthcheck: tuple[str, ...] = ()  # Config.Healthcheck.Test
    auto_remove: bool = False
    network_mode: str = "default"
    volumes_from: tuple[str, ...] = ()
    binds: tuple[str, ...] = ()
    host_mounts: tuple[Mount, ...] = ()  # HostConfig.Mounts (`--mount`), by target
    mounts: tuple[Mount, ...] = ()  # every mount as it is now, anonymous volumes too
    networks: tuple[Endpoint, ...] = ()
    # The whole Config and HostConfig, read-only, for the create spec.
    config: Mapping[str, JsonValue] = field(default_factory=lambda: _EMPTY)
    host_config: Mapping[str, JsonValue] = field(default_factory=lambda: _EMPTY)

    @property
    def running(self) -> bool:
        """Running, and not in a restart loop."""
        return self.state.running and not self.state.restarting

    @property
    def has_healthcheck(self) -> bool:
        """Whether it runs a HEALTHCHECK (its own or its image's, not disabled)."""
        return bool(self.healthcheck) and self.healthcheck[0] != "NONE"


@dataclass(frozen=True)
class ImageInspect:
    """What the update path knows of one image (`docker image inspect`)."""

    id: str
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    # The image's defaults (Env, Cmd, Labels, ...), read-only.
    config: Mapping[str, JsonValue] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class ContainerSummary:
    """One entry of the container list (`docker ps`)."""

    id: str
    names: tuple[str, ...] = ()
    image: str = ""
    image_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    network_mode: str = ""


class _Reader:
    """Typed reads from one JSON object, naming the document and the key in every error."""

    def __init__(self, raw: object, what: str, where: str = "") -> None:
        if not isinstance(raw, Mapping):
            raise MalformedInspect(what, where or "the answer", "is not an object")
        self.raw: Mapping[str, object] = raw
        self.what = what
        self.where = where

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _bad(self, key: str, why: str) -> MalformedInspect:
        return MalformedInspect(self.what, self._key(key), why)

    def required_str(self, key: str) -> str:
        value = self.raw.get(key)
        if not isinstance(value, str) or not value:
            raise self._bad(key, "is missing" if value is None else "is not a non-empty string")
        return value

    def text(self, key: str, default: str = "") -> str:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._bad(key, "is not a string")
        return value

    def opt_str(self, key: str) -> str | None:
        return self.text(key) or None

    def flag(self, key: str) -> bool:
        value = self.raw.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self._bad(key, "is not true or false")
        return value

    def opt_int(self, key: str) -> int | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, "is not a whole number")
        return value

    def strs(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, "is not a list of strings")
        return tuple(value)

    def str_map(self, key: str) -> dict[str, str]:
        value = self.raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self._bad(key, "is not a map of strings")
        return dict(value)

    def obj(self, key: str) -> _Reader:
        value = self.raw.get(key)
        return _Reader({} if value is None else value, self.what, self._key(key))

    def objs(self, key: str) -> list[_Reader]:
        value = self.raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._bad(key, "is not a list")
        return [_Reader(v, self.what, f"{self._key(key)}[{i}]") for i, v in enumerate(value)]

    def json(self, key: str) -> Mapping[str, JsonValue]:
        """A sub-document kept whole: a private deep copy, read-only."""
        value = self.raw.get(key)
        if value is None:
            return _EMPTY
        if not isinstance(value, Mapping):
            raise self._bad(key, "is not an object")
        copied: JsonObject = copy.deepcopy(dict(value))
        return MappingProxyType(copied)


def parse_container(raw: object) -> ContainerInspect:
    """The typed view of a container's inspect answer; MalformedInspect when it cannot be."""
    top = _Reader(raw, "a container")
    container_id = top.required_str("Id")
    top.what = f"container {container_id[:12]}"
    config, host = top.obj("Config"), top.obj("HostConfig")
    return ContainerInspect(
        id=container_id,
        name=top.text("Name").lstrip("/"),
        image_id=top.text("Image"),
        image=config.text("Image"),
        labels=config.str_map("Labels"),
        env=config.strs("Env"),
        user=config.text("User"),
        state=_state(top.obj("State")),
        restart_count=top.opt_int("RestartCount") or 0,
        stop_timeout=config.opt_int("StopTimeout"),
        healthcheck=config.obj("Healthcheck").strs("Test"),
        auto_remove=host.flag("AutoRemove"),
        network_mode=host.text("NetworkMode") or "default",
        volumes_from=host.strs("VolumesFrom"),
        binds=host.strs("Binds"),
        host_mounts=tuple(
            Mount(
                type=m.text("Type"), destination=m.text("Target"), source=m.opt_str("Source"),
                rw=not m.flag("ReadOnly"),
            )
            for m in host.objs("Mounts")
        ),
        mounts=tuple(
            Mount(
                type=m.text("Type"), destination=m.text("Destination"), name=m.opt_str("Name"),
                source=m.opt_str("Source"), rw=m.raw.get("RW", True) is not False,
            )
            for m in top.objs("Mounts")
        ),
        networks=_endpoints(top.obj("NetworkSettings").obj("Networks")),
        config=top.json("Config"),
        host_config=top.json("HostConfig"),
    )


def _state(state: _Reader) -> ContainerState:
    health = state.obj("Health")
    return ContainerState(
        running=state.flag("Running"),
        restarting=state.flag("Restarting"),
        exit_code=state.opt_int("ExitCode"),
        started_at=state.opt_str("StartedAt"),
        health=health.opt_str("Status"),
        health_log=tuple(
            HealthProbe(exit_code=probe.opt_int("ExitCode"), output=probe.text("Output"))
            for probe in health.objs("Log")
        ),
    )


def _endpoints(networks: _Reader) -> tuple[Endpoint, ...]:
    out = []
    for name in networks.raw:
        settings = networks.obj(name)
        ipam = settings.obj("IPAMConfig")
        driver_opts = settings.str_map("DriverOpts")
        out.append(
            Endpoint(
                network=name,
                network_id=settings.text("NetworkID"),
                aliases=settings.strs("Aliases"),
                links=settings.strs("Links"),
                ipv4_address=ipam.opt_str("IPv4Address"),
                ipv6_address=ipam.opt_str("IPv6Address"),
                link_local_ips=ipam.strs("LinkLocalIPs"),
                driver_opts=driver_opts or None,
            )
        )
    return tuple(out)


def parse_image(raw: object) -> ImageInspect:
    """The typed view of an image's inspect answer; MalformedInspect when it cannot be."""
    top = _Reader(raw, "an image")
    image_id = top.required_str("Id")
    top.what = f"image {image_id[:19]}"
    return ImageInspect(
        id=image_id,
        repo_tags=top.strs("RepoTags"),
        repo_digests=top.strs("RepoDigests"),
        config=top.json("Config"),
    )


def parse_summary(raw: object) -> ContainerSummary:
    """The typed view of one entry of the container list."""
    top = _Reader(raw, "a listed container")
    return ContainerSummary(
        id=top.required_str("Id"),
        names=top.strs("Names"),
        image=top.text("Image"),
        image_id=top.text("ImageID"),
        labels=top.str_map("Labels"),
        network_mode=top.obj("HostConfig").text("NetworkMode"),
    )

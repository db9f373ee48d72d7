"""Turn a container's inspect data into the arguments that recreate it on another image.

Pure functions, no engine calls: the updater feeds them the typed inspect views of the container
and of the image it was created from (bot/engines/inspect.py), and hands what they return to the
engine port's `create` and `connect` (bot/engines/port.py).

What the container only had because its old image set it (an Env entry, Cmd, Entrypoint, a
label, ...) is dropped, so the new image's defaults apply; what someone set explicitly is kept.
Anonymous volumes are mounted again by name at the same destination, as `docker compose up`
does, so their data survives.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.engines.inspect import (
    ContainerInspect,
    Endpoint,
    ImageInspect,
    JsonObject,
    JsonValue,
    Mount,
)
from bot.update.compose import carry_compose_labels

# Networks docker manages itself: no aliases, no static addresses, nothing to connect to.
_BUILTIN_NETWORK_MODES = {"default", "bridge", "host", "none"}

# Config fields whose value falls back to the image's when left unset at create time.
_IMAGE_SCALARS = ("WorkingDir", "User", "Healthcheck", "StopSignal", "Shell")
_IMAGE_MAPS = ("ExposedPorts", "Volumes")  # dict keys, each compared on its own


@dataclass(frozen=True)
class CreateSpec:
    """Everything needed to recreate a container: the create body, then extra networks."""

    name: str
    body: JsonObject  # POST /containers/create: Config fields, HostConfig, NetworkingConfig
    extra_networks: tuple[Endpoint, ...] = field(default=())


def build_create_spec(
    container: ContainerInspect,
    old_image: ImageInspect,
    *,
    image: str,
    image_id: str | None = None,
    network_container: str | None = None,
    shared_destinations: Iterable[str] = (),
) -> CreateSpec:
    """Create arguments for `container` on `image`, dropping what only the old image set.

    `image_id` is the image `image` names now: Compose's labels are written for it (see
    bot/update/compose.py). `network_container` replaces the target of a `container:<id>`
    network mode (the container whose namespace is shared was itself recreated).
    `shared_destinations` are mount points that arrive through VolumesFrom and so must not be
    mounted again.
    """
    config: dict[str, Any] = strip_image_defaults(container.config, old_image.config)
    if image_id is not None and config.get("Labels"):
        config["Labels"] = carry_compose_labels(config["Labels"], image_id)
    host_config: dict[str, Any] = copy.deepcopy(dict(container.host_config))
    short_id = container.id[:12]
    network_mode = container.network_mode
    if network_container is not None and network_mode.startswith("container:"):
        network_mode = f"container:{network_container}"
        host_config["NetworkMode"] = network_mode

    # Docker gives each container its short id as hostname; the new one must get its own.
    if config.get("Hostname") == short_id or network_mode.startswith("container:"):
        config.pop("Hostname", None)
    if network_mode.startswith("container:"):
        # The engine refuses these beside a shared network namespace.
        for key in ("Domainname", "MacAddress", "ExposedPorts"):
            config.pop(key, None)

    host_config["Links"] = legacy_links(host_config.get("Links")) or None
    if host_config.get("Ulimits"):
        host_config["Ulimits"] = docker_ulimits(host_config["Ulimits"])
    _carry_anonymous_volumes(container, host_config, set(shared_destinations))

    body: JsonObject = {**config, "Image": image, "HostConfig": host_config}
    primary, extras = network_attachments(container, network_mode)
    if primary is not None:
        body["NetworkingConfig"] = {"EndpointsConfig": {primary.network: primary.endpoint_config()}}
    return CreateSpec(name=container.name, body=body, extra_networks=tuple(extras))


def strip_image_defaults(
    config: Mapping[str, JsonValue], image_config: Mapping[str, JsonValue]
) -> JsonObject:
    """The container's Config minus every value that equals the old image's default."""
    out: dict[str, Any] = copy.deepcopy(dict(config))
    image: Mapping[str, Any] = image_config  # JSON read below by key, its shape as Docker's
    for key in ("Image", "OnBuild", "ArgsEscaped"):
        out.pop(key, None)

    image_env = set(image.get("Env") or ())
    env = [entry for entry in out.get("Env") or () if entry not in image_env]
    out["Env"] = env or None

    image_labels = image.get("Labels") or {}
    labels = {k: v for k, v in (out.get("Labels") or {}).items() if image_labels.get(k) != v}
    out["Labels"] = labels or None

    for key in _IMAGE_MAPS:
        image_keys = set(image.get(key) or {})
        kept = {k: v for k, v in (out.get(key) or {}).items() if k not in image_keys}
        out[key] = kept or None

    for key in _IMAGE_SCALARS:
        if key in out and _same(out[key], image.get(key)):
            out.pop(key)

    # The engine takes the image's Cmd only when no Entrypoint is given, so a Cmd beside an
    # explicit Entrypoint was explicit too, whatever it equals.
    if _same(out.get("Entrypoint"), image.get("Entrypoint")):
        out.pop("Entrypoint", None)
        if _same(out.get("Cmd"), image.get("Cmd")):
            out.pop("Cmd", None)
    return out


def _same(value: Any, default: Any) -> bool:
    """Equal, counting None, "" and empty collections as the same unset value."""
    return (value or None) == (default or None)


def docker_ulimits(ulimits: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Ulimits as create takes them: Podman's inspect says "RLIMIT_NOFILE" for "nofile"."""
    named = []
    for entry in ulimits:
        name = str(entry.get("Name") or "")
        if name.upper().startswith("RLIMIT_"):
            name = name[len("RLIMIT_"):].lower()
        named.append({**entry, "Name": name})
    return named


def legacy_links(links: Iterable[str] | None) -> list[str]:
    """Inspect's `/target:/self/alias` links in the create form `target:alias`."""
    out = []
    for link in links or ():
        target, _, alias_path = link.partition(":")
        out.append(f"{target.lstrip('/')}:{alias_path.rsplit('/', 1)[-1]}")
    return out


def anonymous_volumes(
    container: ContainerInspect, shared_destinations: Iterable[str] = ()
) -> list[Mount]:
    """The container's volume mounts that nobody named: an image VOLUME, `-v /path`, ..."""
    named = set(shared_destinations)
    for bind in container.binds:
        parts = bind.split(":")
        if len(parts) >= 2:
            named.add(parts[1])
    named.update(m.destination for m in container.host_mounts if m.source)
    return [
        mount
        for mount in container.mounts
        if mount.type == "volume" and mount.destination not in named
    ]


def _carry_anonymous_volumes(
    container: ContainerInspect, host_config: dict[str, Any], shared: set[str]
) -> None:
    """Mount each anonymous volume of the old container by name at the same place."""
    by_target = {str(m.get("Target")): m for m in host_config.get("Mounts") or ()}
    binds = list(host_config.get("Binds") or ())
    for mount in anonymous_volumes(container, shared):
        name, destination = mount.name, mount.destination
        spec = by_target.get(destination)
        if spec is not None:  # a `--mount type=volume,target=...` without a source
            spec["Source"] = name
            continue
        binds.append(f"{name}:{destination}" + ("" if mount.rw else ":ro"))
    host_config["Binds"] = binds or None


def network_attachments(
    container: ContainerInspect, network_mode: str
) -> tuple[Endpoint | None, list[Endpoint]]:
    """The network given at create time (user-defined only) and the ones to connect after."""
    if network_mode in ("host", "none") or network_mode.startswith("container:"):
        return None, []
    networks = {endpoint.network: endpoint for endpoint in container.networks}
    short_id = container.id[:12]
    primary_name = "bridge" if network_mode == "default" else network_mode
    if primary_name not in networks:
        # NetworkMode may hold the network's id rather than its name.
        by_id = [n for n, e in networks.items() if e.network_id.startswith(network_mode)]
        primary_name = by_id[0] if by_id else primary_name
    primary: Endpoint | None = None
    extras = []
    for name, endpoint in networks.items():
        attachment = _attachment(endpoint, short_id)
        if name == primary_name:
            primary = None if name in _BUILTIN_NETWORK_MODES else attachment
        else:
            extras.append(attachment)
    return primary, extras


def _attachment(endpoint: Endpoint, short_id: str) -> Endpoint:
    # Docker adds the container's short id as an alias on user-defined networks; the new
    # container gets its own. The network's id is the engine's to give.
    aliases = tuple(a for a in endpoint.aliases if a != short_id)
    return dataclasses.replace(endpoint, network_id="", aliases=aliases)


def shares_network_of(container: ContainerInspect, target: ContainerInspect) -> bool:
    """Whether `container` runs in `target`'s network namespace (`network_mode: container:`)."""
    mode = container.network_mode
    if not mode.startswith("container:"):
        return False
    ref = mode.removeprefix("container:")
    return ref in (target.id, target.name) or (len(ref) >= 12 and target.id.startswith(ref))

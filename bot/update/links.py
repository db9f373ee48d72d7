"""Containers linked to an updated one with `docker run --link`: recreated, linked to it again.

When the updated container is renamed aside, the engine moves the links that name it to the old
container; once that one is removed, a linked container runs on with a stale address and refuses
to start again ("Cannot link to a non running container"). Links are fixed when a container is
created, so each such container is recreated on its own image (journalled and health-gated like
any replacement, bot/update/replace.py) with its links naming the new container.

Not while the updated container is stopped (DOCKWARDEN_INCLUDE_STOPPED): the engine creates a
container linked to a stopped one but refuses to start it ("Cannot link to a non running
container"), so the recreated one would fail its start and be rolled back, stopping and starting
a running container for nothing. It is left running as it is, and the note says to recreate it
once the updated container runs.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from bot.engines.inspect import ContainerInspect, JsonValue
from bot.engines.port import Engine, doing, require_image
from bot.errors import EngineError
from bot.update import selfinfo
from bot.update.replace import Replacer
from bot.update.spec import build_create_spec

# Legacy links exist only on the default bridge network.
_BRIDGE_MODES = ("default", "bridge")


def _links(container: ContainerInspect) -> list[str]:
    links = container.host_config.get("Links")
    return [str(link) for link in links] if isinstance(links, list) else []


def renamed_links(links: list[str], aside: str, name: str) -> list[str]:
    """Inspect's `/target:/self/alias` links with target `aside` pointed at `name` again."""
    return [f"/{name}:{link.split(':', 1)[1]}" if link.split(":", 1)[0] == f"/{aside}" else link
            for link in links]


async def _reference(engine: Engine, container: ContainerInspect) -> str:
    """The container's reference if it still names the image it runs, else the image id."""
    try:
        current = await require_image(engine, container.image, "inspecting an image")
    except EngineError:
        return container.image_id
    return container.image if current.id == container.image_id else container.image_id


async def relink(engine: Engine, replacer: Replacer, name: str, aside: str) -> str:
    """Recreate the running containers whose links moved to `aside`, linked to `name` again."""
    try:
        with doing("listing containers"):
            summaries = await engine.list_containers()
        linkers = []
        for summary in summaries:
            if summary.network_mode in _BRIDGE_MODES:
                found = await engine.inspect_container(summary.id)
                if found is not None and any(
                    link.startswith(f"/{aside}:") for link in _links(found)
                ):
                    linkers.append(found)
        new = await engine.inspect_container(name) if linkers else None
    except EngineError as exc:
        return f"; could not look for containers linked to {name}: {exc}"
    if new is not None and not new.state.running:
        return "; " + "; ".join(
            f"left {linker.name}, linked to it, as it is: a container linked to a stopped one "
            f"cannot start (recreate {linker.name} once {name} runs)" for linker in linkers)
    notes = []
    for linker in linkers:
        links: list[JsonValue] = list(renamed_links(_links(linker), aside, name))
        fixed = dataclasses.replace(
            linker, host_config=MappingProxyType({**linker.host_config, "Links": links}))
        try:
            image = await require_image(engine, linker.image_id, "inspecting an image")
            spec = build_create_spec(fixed, image, image=await _reference(engine, linker))
        except EngineError as exc:
            notes.append(f"could not recreate {linker.name}, linked to it: {exc}")
            continue
        journal = {"kind": "dependent", "owner": selfinfo.process_identity()}
        done = await replacer.replace(linker, spec, journal)
        notes.append(f"recreated {linker.name}, linked to it" if done.ok
                     else f"could not recreate {linker.name}, linked to it: {done.detail}")
    return "; " + "; ".join(notes) if notes else ""

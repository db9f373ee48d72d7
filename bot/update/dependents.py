"""Containers that share another's network namespace (`--network container:X`).

A recreated container has a new namespace: the containers sharing the old one are found before
the replacement, recreated into the new one after it (each on its own image, journalled), and
only restarted when the old container came back instead. `volumes_from_destinations` is the
other thing a create spec needs from neighbours: mount points that arrive via `--volumes-from`.
"""

from __future__ import annotations

import asyncio

from bot.domain.model import UpdateOutcome
from bot.engines.inspect import ContainerInspect
from bot.engines.port import Engine, doing, require_image
from bot.errors import EngineError
from bot.store.db import Store
from bot.update import selfinfo
from bot.update.replace import Replacer
from bot.update.spec import build_create_spec, shares_network_of


async def volumes_from_destinations(engine: Engine, container: ContainerInspect) -> set[str]:
    """Mount points that come from `--volumes-from` containers."""
    destinations: set[str] = set()
    for source in container.volumes_from:
        other = await engine.inspect_container(source.split(":")[0])
        destinations.update(m.destination for m in (other.mounts if other else ()))
    return destinations


class Dependents:
    """Finds and recreates the containers sharing one container's network namespace."""

    def __init__(self, engine: Engine, replacer: Replacer, store: Store) -> None:
        self.engine = engine
        self.replacer = replacer
        self.store = store

    async def of(self, target: ContainerInspect) -> list[ContainerInspect]:
        """Running containers that share `target`'s network namespace."""
        found = []
        with doing("listing containers"):
            summaries = await self.engine.list_containers()
        for summary in summaries:
            if summary.id == target.id:
                continue
            if summary.network_mode.startswith("container:"):
                other = await self.engine.inspect_container(summary.id)
                if other is not None and shares_network_of(other, target):
                    found.append(other)
        return found

    async def recreate(self, dependents: list[ContainerInspect], new_id: str) -> str:
        """Recreate each dependent on its own image, now in the new container's namespace."""
        notes = []
        for dep in dependents:
            image = await require_image(self.engine, dep.image_id, "inspecting an image")
            spec = build_create_spec(
                dep, image, image=await self._same_image(dep), network_container=new_id,
                shared_destinations=await volumes_from_destinations(self.engine, dep),
            )
            journal = {"kind": "dependent", "owner": selfinfo.process_identity()}
            done = await self.replacer.replace(dep, spec, journal)
            await asyncio.to_thread(
                self.store.record, "recreate",
                UpdateOutcome.UPDATED if done.ok else UpdateOutcome.ROLLED_BACK,
                container=self.replacer.scope.key(dep.name), detail=done.detail,
            )
            state = "recreated in its network namespace" if done.ok else f"failed: {done.detail}"
            notes.append(f"{dep.name} {state}")
        return "; " + "; ".join(notes) if notes else ""

    async def _same_image(self, container: ContainerInspect) -> str:
        """The container's reference if it still names the image it runs, else the image id."""
        text = container.image
        try:
            current = await require_image(self.engine, text, "inspecting an image")
        except EngineError:
            return container.image_id
        return text if current.id == container.image_id else container.image_id

    async def rejoin(self, name: str, dependent_names: list[str]) -> str:
        """Recreate the sharers still pointing at the namespace of `name`'s old container."""
        target = await self.engine.inspect_container(name)
        if target is None:
            return ""
        stale = []
        for dep_name in dependent_names:
            dep = await self.engine.inspect_container(dep_name)
            if dep is not None and not shares_network_of(dep, target):
                stale.append(dep)
        return await self.recreate(stale, target.id)

    async def restart(self, dependents: list[ContainerInspect]) -> str:
        """After a rollback the old container has a fresh namespace: its sharers rejoin it."""
        notes = []
        for dep in dependents:
            try:
                with doing("restarting a dependent"):
                    await self.engine.restart(dep.id)
                notes.append(f"restarted {dep.name}")
            except EngineError as exc:
                notes.append(f"could not restart {dep.name}: {exc}")
        return "; " + "; ".join(notes) if notes else ""

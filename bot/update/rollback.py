"""Roll back after the fact: put a container back on the image it ran before its last update.

Every successful update records the image it replaced, kept for DOCKWARDEN_ROLLBACK_KEEP
(bot/update/kept_images.py). A rollback is an update in reverse along the same path
(bot/update/swap.py: the journalled Replacer, configuration and volumes kept, health gate, and
the container put back on the newer image when the older one does not come up). The digest
rolled back from is never applied by the `auto` policy again: it is offered for approval
instead. A Swarm service goes back to the swarm's previous spec.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.domain.model import NOTHING_CHANGED, Change, UpdateOutcome, short_digest
from bot.domain.reference import ImageRef, split_digest
from bot.engines.inspect import ContainerInspect, ImageInspect, JsonValue
from bot.engines.port import require_image
from bot.engines.swarm import ServiceInspect
from bot.errors import ContainerNotFound, EngineError, NotUpdatable, StoreError
from bot.store.connection import utcnow
from bot.store.safety import PreviousImage, SafetyStore
from bot.update import selfinfo
from bot.update.swap import Ended, Move, swap
from bot.update.target import container_reference

if TYPE_CHECKING:
    from bot.update.updater import Updater

log = logging.getLogger(__name__)


class RollbackOutcome(StrEnum):
    """Outcome of one rollback (the JSON contract's `outcome`)."""

    ROLLED_BACK = "rolled_back"
    NOTHING = "nothing_to_roll_back"
    FAILED = "failed"


@dataclass(frozen=True)
class RollbackResult(Change[RollbackOutcome]):
    """What one rollback did: old = the digest it ran, new = the digest it runs now."""

    @classmethod
    def rolled_back(cls, container: str, now: str | None, back: str | None,
                    message: str) -> RollbackResult:
        """The container runs `back` again instead of `now`."""
        return cls(container, RollbackOutcome.ROLLED_BACK, now, back, message)

    @classmethod
    def nothing(cls, container: str, message: str) -> RollbackResult:
        """There is nothing to roll back."""
        return cls(container, RollbackOutcome.NOTHING, None, None, message)

    @classmethod
    def failed(cls, container: str, now: str | None, message: str) -> RollbackResult:
        """The rollback failed; the container runs `now` as before."""
        return cls(container, RollbackOutcome.FAILED, now, now, message)

    @classmethod
    def untouched(
        cls, container: str, now: str | None, why: str, *, note: str = ""
    ) -> RollbackResult:
        """The rollback failed before anything was touched: "WHY; nothing was changed[NOTE]"."""
        return cls.failed(container, now, f"{why}; {NOTHING_CHANGED}{note}")


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback of one container would do: from which digest back to which."""

    container: str
    image: str
    running: str | None
    back_to: str | None


class Rollbacks:
    """Rolls containers and services back, and lets kept images go after the keep time."""

    def __init__(self, updater: Updater, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.updater = updater
        self.store = updater.store
        self.safety = SafetyStore(updater.store)
        self.clock = clock

    async def plan(self, name: str) -> RollbackPlan | None:
        """What `rollback name` would do; None when there is nothing to roll back."""
        scope = self.updater.scope
        old = await self.updater.engine.inspect_container(scope.name(name))
        if old is None:
            service = await self.updater.services.find(scope.name(name))
            if service is None:
                raise ContainerNotFound(name)
            found = self._service_previous(service)
            if found is None:
                return None
            now_digest, back_digest, _ = found
            return RollbackPlan(scope.key(service.name), service.image, now_digest, back_digest)
        record = await asyncio.to_thread(self.safety.last_update, scope.key(old.name))
        if record is None or old.image_id != record.new_image_id:
            return None
        return RollbackPlan(record.container, record.image, record.new_digest, record.old_digest)

    async def rollback(self, name: str, *, actor: str | None = None) -> RollbackResult:
        """Put `name` back on what it ran before its last update (ContainerNotFound if none)."""
        updater = self.updater
        name = updater.scope.name(name)
        with updater.claims.hold(name) as claim:
            old = await updater.engine.inspect_container(name)
            if old is not None:
                claim(old.id)
                claim(old.name)
                await updater.reconciler.refuse_foreign_update(old.name)
                result = await self._container(old)
            else:
                service = await updater.services.find(name)
                if service is None:
                    raise ContainerNotFound(updater.scope.key(name))
                result = await self._service(service)
        result = dataclasses.replace(
            result, container=updater.scope.key(result.container), host=updater.scope.host
        )
        try:
            await asyncio.to_thread(
                self.store.record, "rollback", result.outcome.value,
                container=result.container, actor=actor, detail=result.message,
            )
        except StoreError:
            log.exception("could not record the rollback of %s in the history", result.container)
        log.info("rollback of %s: %s (%s)", result.container, result.outcome, result.message)
        return result

    async def _container(self, old: ContainerInspect) -> RollbackResult:
        name = old.name
        record = await asyncio.to_thread(self.safety.last_update, self.updater.scope.key(name))
        if record is None:
            return RollbackResult.nothing(
                name,
                f"no update of {name} is recorded within DOCKWARDEN_ROLLBACK_KEEP; "
                "nothing to roll back",
            )
        if old.image_id != record.new_image_id:
            return RollbackResult.nothing(
                name,
                f"{name} no longer runs the image its last update put there; nothing to roll "
                f"back, {NOTHING_CHANGED}",
            )
        now = record.new_digest
        if selfinfo.runs_inside(old.id):
            return RollbackResult.untouched(
                name, now, f"{name} runs DockWarden itself; roll it back from outside"
            )
        try:
            ref = container_reference(old, record.image, stopped_ok=self.updater.include_stopped)
        except NotUpdatable as exc:
            return RollbackResult.untouched(name, now, str(exc))
        try:
            image_id = await self._previous_image(record, ref)
            current_image = await require_image(
                self.updater.engine, old.image_id, "inspecting the image")
        except EngineError as exc:
            return RollbackResult.untouched(
                name, now,
                f"the image {name} ran before is gone and could not be pulled again: {exc}",
            )
        return await self._replace(old, record, ref, current_image, image_id)

    async def _previous_image(self, record: PreviousImage, ref: ImageRef) -> str:
        """The kept image's id; pulled again by its digest when it was removed meanwhile."""
        try:
            image = await require_image(
                self.updater.engine, record.old_image_id, "inspecting the previous image")
            return image.id
        except EngineError:
            if not record.old_digest:
                raise
        return await self.updater.images.pull(ref, record.old_digest)

    async def _replace(
        self,
        old: ContainerInspect,
        record: PreviousImage,
        ref: ImageRef,
        current_image: ImageInspect,
        image_id: str,
    ) -> RollbackResult:
        """Put `old` back on the previous image (bot/update/swap.py); the rollback's result."""
        updater = self.updater
        name = old.name
        now, back = record.new_digest, record.old_digest
        # The reference it ran before (another tag when the update moved it to a newer one).
        move = Move(
            kind="rollback", done_as=UpdateOutcome.ROLLED_BACK, image_text=record.image, ref=ref,
            digest=back, old_digest=now, new_image_id=image_id, image_is="the previous image",
        )
        swapped = await swap(updater.engine, updater.replacer, updater.dependents, old,
                             current_image, move)
        if swapped.ended is Ended.UNTAGGED:
            return RollbackResult.untouched(
                name, now, f"could not tag the previous image: {swapped.detail}"
            )
        if swapped.ended is Ended.UNJOURNALLED:
            return RollbackResult.untouched(
                name, now, f"could not journal the rollback of {name}: {swapped.detail}",
                note=swapped.notes,
            )
        if swapped.ended is Ended.UNDONE:
            return RollbackResult.failed(
                name, now,
                f"the rollback of {name} to {short_digest(back)} failed: {swapped.detail}; it "
                f"runs {short_digest(now)} as before{swapped.notes}",
            )
        await asyncio.to_thread(self._settle, record, name, now)
        return RollbackResult.rolled_back(
            name, now, back,
            f"{name} is back on {ref.familiar} at {short_digest(back)}; {short_digest(now)} is "
            f"offered for approval only from now on; {swapped.detail}{swapped.notes}",
        )

    def _settle(self, record: PreviousImage | None, name: str, digest: str | None) -> None:
        """After a rollback: the record is used, and the digest is never applied by `auto`."""
        name = self.updater.scope.key(name)
        try:
            if record is not None:
                self.safety.set_state(record.id, "rolled_back")
            if digest:
                self.safety.block(name, digest)
                self.safety.reopen(name, digest)
        except StoreError:
            log.exception("could not record the rollback of %s", name)

    # -- swarm services ------------------------------------------------------------------------

    def _service_previous(
        self, service: ServiceInspect
    ) -> tuple[str | None, str | None, Mapping[str, JsonValue]] | None:
        """(digest now, digest before, previous task template), or None when there is none."""
        template = service.previous_template
        container_spec = template.get("ContainerSpec")
        before = str(container_spec.get("Image") or "") if isinstance(container_spec, dict) else ""
        if not before or before == service.image:
            return None
        _, now_digest = split_digest(service.image)
        _, back_digest = split_digest(before)
        key = self.updater.scope.key(service.name)
        if back_digest and self.safety.is_blocked(key, back_digest):
            return None  # the previous spec is the one a rollback left: no ping-pong
        return now_digest, back_digest, template

    async def _service(self, service: ServiceInspect) -> RollbackResult:
        name = service.name
        found = await asyncio.to_thread(self._service_previous, service)
        if found is None:
            return RollbackResult.nothing(
                name, f"service {name} has no previous spec to go back to; nothing to roll back"
            )
        now, back, template = found
        services = self.updater.services
        current = service.task_template
        try:
            await services.set_template(service, template)
        except EngineError as exc:
            return RollbackResult.untouched(
                name, now, f"the swarm refused the rollback of {name}: {exc}"
            )
        try:
            state, message = await services.rollout(service)
        except EngineError as exc:
            state, message = "", str(exc)
        if state == "completed":
            await asyncio.to_thread(self._settle, None, name, now)
            return RollbackResult.rolled_back(
                name, now, back,
                f"service {name} is back on its previous spec ({short_digest(back)}); "
                f"{short_digest(now)} is offered for approval only from now on",
            )
        why = message or "no reason given"
        undone = await services.roll_back(name, current, now, back or "", why)
        restored = undone.outcome is UpdateOutcome.ROLLED_BACK
        return RollbackResult.failed(
            name, now,
            f"the rollback of service {name} failed ({why}); "
            + ("it runs the spec it had before" if restored else undone.message),
        )

    # -- retention -----------------------------------------------------------------------------

    async def expire(self) -> int:
        """Let previous images go once their keep time passed (bot/update/kept_images.py);
        returns how many records expired."""
        return await self.updater.kept.expire(self.clock())

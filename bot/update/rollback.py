"""Roll back after the fact: put a container back on the image it ran before its last update.

Every successful update records the image it replaced (`keep_previous`, called by the updater);
that image is kept for DOCKWARDEN_ROLLBACK_KEEP, even with DOCKWARDEN_REMOVE_OLD_IMAGES, and
removed by `Rollbacks.expire` afterwards. A rollback is an update in reverse under the same rules
(the journalled Replacer: configuration and volumes kept, health gate, and the container put back
on the newer image when the older one does not come up). The digest rolled back from is never
applied by the `auto` policy again: it is offered for approval instead. A Swarm service goes
back to the swarm's previous spec.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bot.chat.messages import Alert, AlertKind, Field
from bot.chat.text_safety import safe_text
from bot.domain.model import UpdateOutcome, short_digest
from bot.domain.reference import ImageRef, split_digest
from bot.engines.inspect import ContainerInspect, ImageInspect
from bot.engines.port import doing, require_image
from bot.engines.swarm import service_image, service_name
from bot.errors import ContainerNotFound, EngineError, InvalidReference, StoreError, UpdateError
from bot.store.connection import utcnow
from bot.store.safety import PreviousImage, SafetyStore
from bot.update import selfinfo
from bot.update.spec import build_create_spec

if TYPE_CHECKING:
    from bot.update.updater import Updater

log = logging.getLogger(__name__)


class RollbackOutcome(StrEnum):
    """Outcome of one rollback (the JSON contract's `outcome`)."""

    ROLLED_BACK = "rolled_back"
    NOTHING = "nothing_to_roll_back"
    FAILED = "failed"


@dataclass(frozen=True)
class RollbackResult:
    """What one rollback did: old = the digest it ran, new = the digest it runs now."""

    container: str
    outcome: RollbackOutcome
    old_digest: str | None
    new_digest: str | None
    message: str

    def as_json(self) -> dict[str, Any]:
        """The contract's `dockwarden rollback --json` document."""
        return {
            "container": self.container,
            "outcome": self.outcome.value,
            "old_digest": self.old_digest,
            "new_digest": self.new_digest,
            "message": self.message,
        }


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback of one container would do: from which digest back to which."""

    container: str
    image: str
    running: str | None
    back_to: str | None


async def keep_previous(
    updater: Updater,
    name: str,
    image: str,
    old_image_id: str,
    old_digest: str | None,
    new_image_id: str,
    new_digest: str | None,
) -> str:
    """After a successful update: remember the replaced image for a rollback; a note to add."""
    keep: timedelta = updater.rollback_keep
    safety = SafetyStore(updater.store)
    try:
        await asyncio.to_thread(
            safety.remember_update, name, image, old_image_id, old_digest, new_image_id,
            new_digest, utcnow() + keep,
        )
    except StoreError:
        log.exception("could not record the previous image of %s; it cannot be rolled back",
                      name)
        if updater.remove_old_images:
            return "; the old image is kept (the rollback record could not be written)"
        return ""
    if not updater.remove_old_images:
        return ""
    if keep > timedelta(0):
        until = (utcnow() + keep).strftime("%Y-%m-%d %H:%M UTC")
        return f"; the old image is kept for a rollback until {until}"
    return await updater._remove_old_image(old_image_id)


def rollback_alert(result: RollbackResult, actor: str | None) -> Alert:
    """update_succeeded (rolled back) or update_failed (the rollback failed) for the chats."""
    who = f" (by {actor})" if actor else ""
    ok = result.outcome is RollbackOutcome.ROLLED_BACK
    if ok:
        title = f"Rolled back: {result.container}"
        text = (f"{result.container} is back on {short_digest(result.new_digest)}{who}; "
                f"{short_digest(result.old_digest)} is offered for approval only from now on.")
    else:
        title = f"Rollback failed: {result.container}"
        text = f"{safe_text(result.message)}{who}"
    fields = [
        Field("Container", result.container),
        Field("Outcome", result.outcome.value),
        Field("Was", short_digest(result.old_digest)),
        Field("Now", short_digest(result.new_digest)),
    ]
    if actor:
        fields.append(Field("By", actor))
    return Alert(
        kind=AlertKind.UPDATE_SUCCEEDED if ok else AlertKind.UPDATE_FAILED,
        title=title,
        text=text,
        fields=tuple(fields),
        container=result.container,
        extra={"outcome": result.outcome.value, "message": result.message},
    )


class Rollbacks:
    """Rolls containers and services back, and lets kept images go after the keep time."""

    def __init__(self, updater: Updater, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.updater = updater
        self.store = updater.store
        self.safety = SafetyStore(updater.store)
        self.clock = clock

    async def plan(self, name: str) -> RollbackPlan | None:
        """What `rollback name` would do; None when there is nothing to roll back."""
        old = await self.updater.engine.inspect_container(name)
        if old is None:
            service = await self.updater.services.find(name)
            if service is None:
                raise ContainerNotFound(name)
            found = self._service_previous(service)
            if found is None:
                return None
            now_digest, back_digest, _ = found
            return RollbackPlan(service_name(service), service_image(service), now_digest,
                                back_digest)
        record = await asyncio.to_thread(self.safety.last_update, old.name)
        if record is None or old.image_id != record.new_image_id:
            return None
        return RollbackPlan(record.container, record.image, record.new_digest, record.old_digest)

    async def rollback(self, name: str, *, actor: str | None = None) -> RollbackResult:
        """Put `name` back on what it ran before its last update (ContainerNotFound if none)."""
        updater = self.updater
        updater._claim_or_raise(name)
        updater._busy.add(name)
        claimed = {name}
        try:
            old = await updater.engine.inspect_container(name)
            if old is not None:
                for key in (old.id, old.name):
                    if key not in claimed:
                        updater._claim_or_raise(key)
                        updater._busy.add(key)
                        claimed.add(key)
                await updater._refuse_foreign_update(old.name)
                result = await self._container(old)
            else:
                service = await updater.services.find(name)
                if service is None:
                    raise ContainerNotFound(name)
                result = await self._service(service)
        finally:
            updater._busy.difference_update(claimed)
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
        record = await asyncio.to_thread(self.safety.last_update, name)
        if record is None:
            return RollbackResult(
                name, RollbackOutcome.NOTHING, None, None,
                f"no update of {name} is recorded within DOCKWARDEN_ROLLBACK_KEEP; "
                "nothing to roll back",
            )
        if old.image_id != record.new_image_id:
            return RollbackResult(
                name, RollbackOutcome.NOTHING, None, None,
                f"{name} no longer runs the image its last update put there; nothing to roll "
                "back, nothing was changed",
            )
        now = record.new_digest
        if selfinfo.runs_inside(old.id):
            return RollbackResult(
                name, RollbackOutcome.FAILED, now, now,
                f"{name} runs DockWarden itself; roll it back from outside; nothing was changed",
            )
        try:
            ref = self.updater._reference(old, record.image)
        except (UpdateError, InvalidReference) as exc:
            return RollbackResult(name, RollbackOutcome.FAILED, now, now,
                                  f"{exc}; nothing was changed")
        try:
            image_id = await self._previous_image(record, ref)
            current_image = await require_image(
                self.updater.engine, old.image_id, "inspecting the image")
        except EngineError as exc:
            return RollbackResult(
                name, RollbackOutcome.FAILED, now, now,
                f"the image {name} ran before is gone and could not be pulled again: {exc}; "
                "nothing was changed",
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
        return await self.updater._pull(ref, record.old_digest)

    async def _replace(
        self,
        old: ContainerInspect,
        record: PreviousImage,
        ref: ImageRef,
        current_image: ImageInspect,
        image_id: str,
    ) -> RollbackResult:
        from bot.update.updater import _tagged

        updater = self.updater
        name = old.name
        now, back = record.new_digest, record.old_digest
        # The reference it ran before (another tag when the update moved it to a newer one).
        image_text = record.image
        dependents = await updater._dependents(old)
        spec = build_create_spec(
            old, current_image, image=image_text,
            shared_destinations=await updater._shared_destinations(old),
        )
        journal = {
            "kind": "rollback", "image": image_text, "digest": back, "old_digest": now,
            "old_image_id": old.image_id, "new_image_id": image_id,
            "retag": [ref.name, ref.tag] if _tagged(current_image, ref) else None,
            "owner": selfinfo.process_identity(),
            "dependents": [d.name for d in dependents],
        }
        try:
            # The container is recreated from its reference as written: the tag must name the
            # previous image first; a failed rollback gives it back to the current one.
            with doing("tagging the previous image"):
                await updater.engine.tag(image_id, ref.name, ref.tag)
        except EngineError as exc:
            return RollbackResult(name, RollbackOutcome.FAILED, now, now,
                                  f"could not tag the previous image: {exc}; nothing was changed")
        try:
            done = await updater.replacer.replace(old, spec, journal, keep_open=bool(dependents))
        except StoreError as exc:
            untag = await updater.replacer.restore_tag(journal)
            return RollbackResult(
                name, RollbackOutcome.FAILED, now, now,
                f"could not journal the rollback of {name}: {exc}; nothing was changed{untag}",
            )
        if not done.ok:
            notes = await updater._restart_dependents(dependents)
            return RollbackResult(
                name, RollbackOutcome.FAILED, now, now,
                f"the rollback of {name} to {short_digest(back)} failed: {done.detail}; it runs "
                f"{short_digest(now)} as before{notes}",
            )
        try:
            notes = await updater._recreate_dependents(dependents, str(done.new_id))
        finally:
            if dependents:
                await updater.replacer.finish(done.journal_id, "rolled_back")
        await asyncio.to_thread(self._settle, record, name, now)
        return RollbackResult(
            name, RollbackOutcome.ROLLED_BACK, now, back,
            f"{name} is back on {ref.familiar} at {short_digest(back)}; {short_digest(now)} is "
            f"offered for approval only from now on; {done.detail}{notes}",
        )

    def _settle(self, record: PreviousImage | None, name: str, digest: str | None) -> None:
        """After a rollback: the record is used, and the digest is never applied by `auto`."""
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
        self, service: Mapping[str, Any]
    ) -> tuple[str | None, str | None, dict[str, Any]] | None:
        """(digest now, digest before, previous task template), or None when there is none."""
        previous = service.get("PreviousSpec") or {}
        template = dict(previous.get("TaskTemplate") or {})
        before = str((template.get("ContainerSpec") or {}).get("Image") or "")
        now_image = service_image(service)
        if not before or before == now_image:
            return None
        _, now_digest = split_digest(now_image)
        _, back_digest = split_digest(before)
        if back_digest and self.safety.is_blocked(service_name(service), back_digest):
            return None  # the previous spec is the one a rollback left: no ping-pong
        return now_digest, back_digest, template

    async def _service(self, service: Mapping[str, Any]) -> RollbackResult:
        name = service_name(service)
        found = await asyncio.to_thread(self._service_previous, service)
        if found is None:
            return RollbackResult(name, RollbackOutcome.NOTHING, None, None,
                                  f"service {name} has no previous spec to go back to; "
                                  "nothing to roll back")
        now, back, template = found
        services = self.updater.services
        current = dict((service.get("Spec") or {}).get("TaskTemplate") or {})
        try:
            await services._set_template(service, template)
        except EngineError as exc:
            return RollbackResult(name, RollbackOutcome.FAILED, now, now,
                                  f"the swarm refused the rollback of {name}: {exc}; nothing "
                                  "was changed")
        try:
            state, message = await services._rollout(service)
        except EngineError as exc:
            state, message = "", str(exc)
        if state == "completed":
            await asyncio.to_thread(self._settle, None, name, now)
            return RollbackResult(
                name, RollbackOutcome.ROLLED_BACK, now, back,
                f"service {name} is back on its previous spec ({short_digest(back)}); "
                f"{short_digest(now)} is offered for approval only from now on",
            )
        why = message or "no reason given"
        undone = await services._roll_back(name, current, now, back or "", why)
        restored = undone.outcome is UpdateOutcome.ROLLED_BACK
        return RollbackResult(
            name, RollbackOutcome.FAILED, now, now,
            f"the rollback of service {name} failed ({why}); "
            + ("it runs the spec it had before" if restored else undone.message),
        )

    # -- retention -----------------------------------------------------------------------------

    async def expire(self) -> int:
        """Let previous images go once their keep time passed; removed with
        DOCKWARDEN_REMOVE_OLD_IMAGES unless still used. Returns how many records expired."""
        records = await asyncio.to_thread(self.safety.expired, self.clock())
        for record in records:
            await asyncio.to_thread(self.safety.set_state, record.id, "expired")
            if not self.updater.remove_old_images:
                continue
            if await asyncio.to_thread(self.safety.image_still_kept, record.old_image_id):
                continue
            note = await self.updater._remove_old_image(record.old_image_id)
            log.info("previous image of %s (%s) past its keep time%s", record.container,
                     record.old_image_id[:19], note)
        return len(records)

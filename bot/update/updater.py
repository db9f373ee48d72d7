"""The updater: pull exactly the approved digest, recreate the container on it, keep it or undo.

`update` is the one path behind a chat approval, `/pull` and `dockwarden update`: it pulls
`repo@digest` (never "whatever the tag points to a moment later", bot/update/images.py) and puts
the container on it through the path it shares with a rollback (bot/update/swap.py: tag,
journalled Replacer with health gate and rollback, namespace sharers). A Swarm service is rolled
out by the swarm (bot/update/swarm_rollout.py), DockWarden's own container by a helper
(bot/update/self_update.py). `reconcile` settles updates a dead process left half-done
(bot/update/reconcile.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from bot.check.checker import local_digests
from bot.domain.model import Basis, UpdateOutcome, UpdateResult, compose_of, short_digest
from bot.domain.reference import ImageRef
from bot.domain.targets import ONE_HOST, HostScope
from bot.engines.inspect import ContainerInspect, ImageInspect
from bot.engines.port import Engine, doing
from bot.engines.swarm import ServiceInspect
from bot.errors import (
    ContainerNotFound,
    EngineError,
    NotUpdatable,
    RegistryError,
    SelfUpdateRefused,
    StoreError,
)
from bot.store.db import Store
from bot.update import selfinfo
from bot.update.claims import Claims
from bot.update.dependents import Dependents
from bot.update.images import Images
from bot.update.kept_images import KeptImages
from bot.update.reconcile import Reconciler
from bot.update.replace import Replacer
from bot.update.swap import Ended, Move, swap
from bot.update.swarm_rollout import ServiceUpdater
from bot.update.target import (
    compose_note,
    container_reference,
    refuse_stale,
    service_target,
    with_tag,
)

if TYPE_CHECKING:
    from bot.registry.credentials import DockerCredentials

log = logging.getLogger(__name__)


class DigestSource(Protocol):
    """Where the current remote digest comes from (RegistryClient, or through mirrors)."""

    async def remote_digest(self, ref: ImageRef) -> str: ...


@dataclass(frozen=True)
class Preview:
    """What an update of one container would do: from which digest to which."""

    container: str
    image: str
    old_digest: str | None
    new_digest: str


class Updater:
    """Updates containers one at a time each, through the journalled Replacer."""

    def __init__(
        self,
        engine: Engine,
        registry: DigestSource,
        store: Store,
        *,
        health_timeout: float,
        grace_period: float,
        credentials: DockerCredentials | None = None,
        remove_old_images: bool = False,
        after_step: Callable[[str], None] | None = None,
        rollback_keep: timedelta = timedelta(0),
        include_stopped: bool = False,
        scope: HostScope = ONE_HOST,
    ) -> None:
        # The host this updater's engine is: container names in, keys (HOST/NAME with several
        # hosts) out, in results, history, journals and kept images.
        self.scope = scope
        self.registry = registry
        # DOCKWARDEN_INCLUDE_STOPPED: a stopped container is updated too, and stays stopped.
        self.include_stopped = include_stopped
        self.store = store
        self.engine = engine
        self.images = Images(engine, credentials)
        # The image each update replaced, kept for a rollback (DOCKWARDEN_ROLLBACK_KEEP).
        self.kept = KeptImages(store, self.images, keep=rollback_keep,
                               remove_old=remove_old_images, scope=scope)
        self.replacer = Replacer(
            engine,
            store,
            health_timeout=health_timeout,
            grace_period=grace_period,
            after_step=after_step,
            scope=scope,
        )
        self.dependents = Dependents(engine, self.replacer, store)
        self.claims = Claims()  # names and ids of containers and services being changed
        self.reconciler = Reconciler(store, self.replacer, self.dependents, self.claims)
        self.services = ServiceUpdater(engine, timeout=health_timeout + grace_period + 60)

    async def update(
        self,
        name: str,
        *,
        expected_digest: str | None = None,
        actor: str | None = None,
        made_for: Basis | None = None,
    ) -> UpdateResult:
        """Update one container to the approved (or else the current remote) digest.

        With `made_for`, raises StaleUpdate (touching nothing) unless the container still runs
        that reference at that digest: an approval never takes a container back. `name` may be
        this host's key (HOST/NAME).
        """
        name = self.scope.name(name)
        with self.claims.hold(name) as claim:
            old = await self.engine.inspect_container(name)
            if old is not None:
                claim(old.id)
                claim(old.name)
                await self.reconciler.refuse_foreign_update(old.name)
                result = await self._update(old, expected_digest, made_for)
                # The result alert names the container as the update alert did.
                result = dataclasses.replace(result, compose=compose_of(old.labels),
                                             stopped=not old.state.running)
            else:
                service = await self.services.find(name)
                if service is None:
                    raise ContainerNotFound(self.scope.key(name))
                result = await self._update_service(service, expected_digest, made_for)
        result = dataclasses.replace(
            result, container=self.scope.key(result.container), host=self.scope.host
        )
        try:
            await asyncio.to_thread(
                self.store.record,
                "update",
                result.outcome.value,
                container=result.container,
                actor=actor,
                detail=result.message,
            )
        except StoreError:
            # The containers are settled whatever the history says; the result still counts.
            log.exception("could not record the update of %s in the history", result.container)
        log.info("update of %s: %s (%s)", result.container, result.outcome, result.message)
        return result

    async def preview(self, name: str) -> Preview:
        """The digests an update of `name` would go from and to (raises when it cannot start)."""
        old = await self.engine.inspect_container(self.scope.name(name))
        if old is None:
            service = await self.services.find(self.scope.name(name))
            if service is None:
                raise ContainerNotFound(name)
            ref, old_digest = service_target(service)
            new = await self.registry.remote_digest(ref)
            return Preview(self.scope.key(service.name), str(ref), old_digest, new)
        ref, old_image = await self._target(old)
        old_digests = local_digests(ref, old_image.repo_digests)
        new = await self.registry.remote_digest(ref)
        return Preview(self.scope.key(old.name), str(ref),
                       old_digests[0] if old_digests else None, new)

    async def reconcile(self) -> list[str]:
        """Settle every update a dead process left open; the names of the containers settled.

        Called at start and then periodically (bot/update/reconcile.py).
        """
        return await self.reconciler.reconcile()

    # -- a container ---------------------------------------------------------------------------

    async def _target(self, old: ContainerInspect) -> tuple[ImageRef, ImageInspect]:
        """The reference to update `old` along, and the image it runs (NotUpdatable if none)."""
        ref = container_reference(old, old.image, stopped_ok=self.include_stopped)
        return ref, await self.images.running(old, ref)

    async def _update(
        self, old: ContainerInspect, expected: str | None, made_for: Basis | None
    ) -> UpdateResult:
        name = old.name
        try:
            ref, old_image = await self._target(old)
        except NotUpdatable as exc:
            return UpdateResult.untouched(name, str(exc))
        old_digests = local_digests(ref, old_image.repo_digests)
        old_digest = old_digests[0] if old_digests else None
        refuse_stale(name, ref, old_digests, expected, made_for)
        digest = await self._digest_to_apply(name, ref, old_digest, expected)
        if isinstance(digest, UpdateResult):
            return digest
        image_text = old.image
        if made_for is not None and made_for.new_tag and made_for.new_tag != ref.tag:
            # A newer version tag: the container is recreated on REPO:NEW_TAG, that digest.
            image_text = with_tag(image_text, ref, made_for.new_tag)
            ref = ref.with_tag(made_for.new_tag)
        elif digest in old_digests:
            return UpdateResult.up_to_date(name, old_digest, digest, name, ref.familiar)
        try:
            new_image_id = await self.images.pull(ref, digest)
        except EngineError as exc:
            return UpdateResult.untouched(
                name, f"could not pull {ref.name}@{digest}: {exc}", old_digest, digest
            )
        if selfinfo.runs_inside(old.id):
            # Stopping its own container would stop this update half-way: a helper container
            # from the new image does it from outside (raises SelfUpdateHandedOver).
            from bot.update.self_update import hand_over

            await hand_over(self.engine, self.store, old, ref, digest, old_digest, new_image_id,
                            None, made_for, key=self.scope.key(old.name))
        move = Move(
            kind="update", done_as=UpdateOutcome.UPDATED, image_text=image_text, ref=ref,
            digest=digest, old_digest=old_digest, new_image_id=new_image_id,
            image_is="the pulled image",
        )
        result = await self._replace(old, old_image, move)
        return compose_note(result, old, ref)

    async def _replace(
        self, old: ContainerInspect, old_image: ImageInspect, move: Move
    ) -> UpdateResult:
        """Put `old` on the pulled image (bot/update/swap.py); the update's result."""
        name, ref, digest, old_digest = old.name, move.ref, str(move.digest), move.old_digest
        swapped = await swap(self.engine, self.replacer, self.dependents, old, old_image, move)
        if swapped.ended is Ended.UNTAGGED:
            return UpdateResult.untouched(
                name, f"could not tag the pulled image as {ref.name}:{ref.tag}: {swapped.detail}",
                old_digest, digest,
            )
        if swapped.ended is Ended.UNJOURNALLED:
            return UpdateResult.untouched(
                name, f"could not journal the update of {name}: {swapped.detail}", old_digest,
                digest, note=swapped.notes,
            )
        if swapped.ended is Ended.UNDONE:
            return UpdateResult.rolled_back(
                name, old_digest, digest,
                f"the update of {name} to {short_digest(digest)} failed: "
                f"{swapped.detail}{swapped.notes}",
            )
        notes = swapped.notes
        if old.image_id != move.new_image_id:
            # Recorded for a rollback; removed now or after DOCKWARDEN_ROLLBACK_KEEP when asked.
            notes += await self.kept.remember(
                self.scope.key(name), old.image, old.image_id, old_digest, move.new_image_id,
                digest,
            )
        return UpdateResult.updated(
            name, old_digest, digest,
            f"{name} now runs {ref.familiar} at {short_digest(digest)}; {swapped.detail}{notes}",
        )

    async def _digest_to_apply(
        self, name: str, ref: ImageRef, old_digest: str | None, expected: str | None
    ) -> str | UpdateResult:
        """The approved digest, else the registry's current one; a failure when it won't say."""
        if expected:
            return expected
        try:
            return await self.registry.remote_digest(ref)
        except RegistryError as exc:
            return UpdateResult.untouched(
                name, f"could not ask {exc.registry} for {ref}: {exc}", old_digest
            )

    # -- a swarm service -----------------------------------------------------------------------

    async def _update_service(
        self, service: ServiceInspect, expected: str | None, made_for: Basis | None
    ) -> UpdateResult:
        """A swarm service: the swarm rolls it out on the digest (see swarm_rollout.py)."""
        name = service.name
        try:
            ref, old_digest = service_target(service)
            await self._refuse_own_service(service, name)
        except NotUpdatable as exc:
            return UpdateResult.untouched(name, str(exc))
        refuse_stale(f"service {name}", ref, [old_digest] if old_digest else [], expected,
                     made_for)
        digest = await self._digest_to_apply(name, ref, old_digest, expected)
        if isinstance(digest, UpdateResult):
            return digest
        if digest == old_digest:
            return UpdateResult.up_to_date(name, old_digest, digest, f"service {name}",
                                           ref.familiar)
        return await self.services.update(service, digest, old_digest, ref.familiar)

    async def _refuse_own_service(self, service: ServiceInspect, name: str) -> None:
        """The swarm would replace the task DockWarden runs in half-way through the wait."""
        with doing("listing the service's tasks"):
            tasks = await self.engine.service_tasks(service.id)
        for task in tasks:
            if task.container_id and selfinfo.runs_inside(task.container_id):
                raise SelfUpdateRefused(
                    f"service {name} runs DockWarden itself; replacing its task would stop the "
                    f"update half-way. Update it from outside (`docker service update --image "
                    f"... {name}` on a manager)"
                )

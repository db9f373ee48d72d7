"""The updater: pull exactly the approved digest, recreate the container on it, keep it or undo.

`update` is the one path behind a chat approval, `/pull` and `dockwarden update`: it pulls
`repo@digest` (never "whatever the tag points to a moment later"), tags it `repo:tag`, and hands
the container to the Replacer (bot/update/replace.py), which journals every step, gates on health
and rolls back. Containers sharing the updated one's network namespace are recreated after it.
`reconcile` settles updates a dead process left half-done.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from bot.check.checker import local_digests
from bot.domain.model import Basis, UpdateOutcome, UpdateResult, short_digest
from bot.domain.reference import ImageRef, is_image_id, parse_reference
from bot.engines.inspect import ContainerInspect, ImageInspect
from bot.engines.port import Engine, doing, require_image
from bot.engines.swarm import service_name, service_workload
from bot.errors import (
    ContainerNotFound,
    EngineError,
    InvalidReference,
    RegistryError,
    SelfUpdateRefused,
    StaleUpdate,
    StoreError,
    UpdateError,
    UpdateInProgress,
)
from bot.store.db import Store
from bot.store.journal import JournalEntry
from bot.update import selfinfo
from bot.update.replace import Replacer
from bot.update.rollback import keep_previous
from bot.update.spec import build_create_spec, shares_network_of
from bot.update.swarm_rollout import ServiceUpdater

if TYPE_CHECKING:
    from bot.registry.credentials import DockerCredentials

log = logging.getLogger(__name__)

SWARM_TASK_LABEL = "com.docker.swarm.task.id"
COMPOSE_FILES_LABEL = "com.docker.compose.project.config_files"


class DigestSource(Protocol):
    """Where the current remote digest comes from (RegistryClient, or through mirrors)."""

    async def remote_digest(self, ref: ImageRef) -> str: ...


class _Failed(UpdateError):
    """The update cannot start; nothing was touched."""


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
    ) -> None:
        self.registry = registry
        self.store = store
        # Without credentials, the Docker SDK reads Docker's own config.json for the pull.
        self.credentials = credentials
        self.remove_old_images = remove_old_images
        # How long the image an update replaced is kept for a rollback (bot/update/rollback.py).
        self.rollback_keep = rollback_keep
        self.engine = engine
        self.replacer = Replacer(
            self.engine,
            store,
            health_timeout=health_timeout,
            grace_period=grace_period,
            after_step=after_step,
        )
        self.services = ServiceUpdater(self.engine, timeout=health_timeout + grace_period + 60)
        self._busy: set[str] = set()  # names and ids of containers and services being updated

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
        that reference at that digest: an approval never takes a container back.
        """
        self._claim_or_raise(name)
        self._busy.add(name)
        claimed = {name}
        try:
            old = await self.engine.inspect_container(name)
            if old is not None:
                for key in (old.id, old.name):
                    if key not in claimed:
                        self._claim_or_raise(key)
                        self._busy.add(key)
                        claimed.add(key)
                await self._refuse_foreign_update(old.name)
                result = await self._update(old, expected_digest, made_for)
            else:
                service = await self.services.find(name)
                if service is None:
                    raise ContainerNotFound(name)
                result = await self._update_service(service, expected_digest, made_for)
        finally:
            self._busy.difference_update(claimed)
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

    async def _update_service(
        self, service: Mapping[str, Any], expected: str | None, made_for: Basis | None
    ) -> UpdateResult:
        """A swarm service: the swarm rolls it out on the digest (see swarm_rollout.py)."""
        name = service_name(service)
        try:
            ref, old_digest = self._service_target(service)
            await self._refuse_own_service(service, name)
        except _Failed as exc:
            return UpdateResult(
                name, UpdateOutcome.FAILED, None, None, f"{exc}; nothing was changed"
            )
        _refuse_stale(f"service {name}", ref, [old_digest] if old_digest else [], expected,
                      made_for)
        digest = await self._digest_to_apply(name, ref, old_digest, expected)
        if isinstance(digest, UpdateResult):
            return digest
        if digest == old_digest:
            return UpdateResult(
                name, UpdateOutcome.UP_TO_DATE, old_digest, digest,
                f"service {name} already runs {ref.familiar} at {short_digest(digest)}; "
                "nothing was changed",
            )
        return await self.services.update(service, digest, old_digest, ref.familiar)

    @staticmethod
    def _service_target(service: Mapping[str, Any]) -> tuple[ImageRef, str | None]:
        """The reference a service is updated along, and the digest its spec is pinned to."""
        name = service_name(service)
        workload = service_workload(service)
        if workload is None:
            raise _Failed(f"service {name} has no image")
        try:
            ref = parse_reference(workload.image)
        except InvalidReference as exc:
            raise _Failed(f"service {name} has no image reference: {exc}") from None
        if ref.digest is not None:
            raise _Failed(f"service {name} is pinned to {ref.digest}; change its image to "
                          "update it")
        known = local_digests(ref, workload.repo_digests)
        return ref, known[0] if known else None

    async def _digest_to_apply(
        self, name: str, ref: ImageRef, old_digest: str | None, expected: str | None
    ) -> str | UpdateResult:
        """The approved digest, else the registry's current one; a failure when it won't say."""
        if expected:
            return expected
        try:
            return await self.registry.remote_digest(ref)
        except RegistryError as exc:
            return UpdateResult(
                name, UpdateOutcome.FAILED, old_digest, None,
                f"could not ask {exc.registry} for {ref}: {exc}; nothing was changed",
            )

    async def _refuse_own_service(self, service: Mapping[str, Any], name: str) -> None:
        """The swarm would replace the task DockWarden runs in half-way through the wait."""
        with doing("listing the service's tasks"):
            tasks = await self.engine.service_tasks(str(service["ID"]))
        for task in tasks:
            container_id = ((task.get("Status") or {}).get("ContainerStatus") or {}).get(
                "ContainerID"
            )
            if container_id and selfinfo.runs_inside(str(container_id)):
                raise SelfUpdateRefused(
                    f"service {name} runs DockWarden itself; replacing its task would stop the "
                    f"update half-way. Update it from outside (`docker service update --image "
                    f"... {name}` on a manager)"
                )

    def _claim_or_raise(self, key: str) -> None:
        # Checked and claimed with no await in between: atomic on the one event loop.
        if key in self._busy or any(len(key) >= 12 and b.startswith(key) for b in self._busy):
            raise UpdateInProgress(f"an update of {key} is already running")

    async def _refuse_foreign_update(self, name: str) -> None:
        """Another live process is updating it, or a dead one left it half-done (settle it)."""
        for entry in await asyncio.to_thread(self.store.journal_open):
            if entry.container != name:
                continue
            if self._owner_alive(entry):
                raise UpdateInProgress(f"another DockWarden process is updating {name}")
            await self._settle(entry)

    def _owner_alive(self, entry: JournalEntry) -> bool:
        """Like journal_owner_alive, but a journal of this very process is alive only while
        this process still carries it out (else a failed write or a cancel left it open)."""
        if entry.data.get("owner") == selfinfo.process_identity():
            return entry.id in self.replacer.active
        return journal_owner_alive(entry)

    async def preview(self, name: str) -> Preview:
        """The digests an update of `name` would go from and to (raises when it cannot start)."""
        old = await self.engine.inspect_container(name)
        if old is None:
            service = await self.services.find(name)
            if service is None:
                raise ContainerNotFound(name)
            ref, old_digest = self._service_target(service)
            new = await self.registry.remote_digest(ref)
            return Preview(service_name(service), str(ref), old_digest, new)
        ref, old_image = await self._target(old)
        old_digests = local_digests(ref, old_image.repo_digests)
        new = await self.registry.remote_digest(ref)
        return Preview(old.name, str(ref), old_digests[0] if old_digests else None, new)

    async def _target(self, old: ContainerInspect) -> tuple[ImageRef, ImageInspect]:
        """The reference to update `old` along, and its current image's inspect data."""
        ref = self._reference(old, old.image)
        return ref, await self._old_image(old, ref)

    async def _old_image(self, old: ContainerInspect, ref: ImageRef) -> ImageInspect:
        """The inspect data of the image `old` runs; pulled back by digest when it is gone."""
        image_id = old.image_id
        with doing("inspecting the image"):
            found = await self.engine.inspect_image(image_id)
        if found is not None:
            return found
        # On the containerd image store a pull over the tag removes the image a container still
        # runs, and its id is the digest it was pulled as: pulled back, it gives the image's own
        # settings (not to be pinned on the new container) and a rollback its image.
        try:
            await self._pull(ref, image_id)
        except EngineError as exc:
            raise _Failed(f"the image {old.name} runs ({short_digest(image_id)}) is "
                          f"no longer here and could not be pulled back: {exc}") from None
        return await require_image(self.engine, image_id, "inspecting the image")

    async def _update(
        self, old: ContainerInspect, expected: str | None, made_for: Basis | None
    ) -> UpdateResult:
        name = old.name
        try:
            ref, old_image = await self._target(old)
        except _Failed as exc:
            return UpdateResult(
                name, UpdateOutcome.FAILED, None, None, f"{exc}; nothing was changed"
            )
        old_digests = local_digests(ref, old_image.repo_digests)
        old_digest = old_digests[0] if old_digests else None
        _refuse_stale(name, ref, old_digests, expected, made_for)
        digest = await self._digest_to_apply(name, ref, old_digest, expected)
        if isinstance(digest, UpdateResult):
            return digest
        image_text = old.image
        if made_for is not None and made_for.new_tag and made_for.new_tag != ref.tag:
            # A newer version tag: the container is recreated on REPO:NEW_TAG, that digest.
            image_text, ref = _with_tag(image_text, ref, made_for.new_tag), ref.with_tag(
                made_for.new_tag
            )
        elif digest in old_digests:
            return UpdateResult(
                name, UpdateOutcome.UP_TO_DATE, old_digest, digest,
                f"{name} already runs {ref.familiar} at {short_digest(digest)}; "
                "nothing was changed",
            )
        try:
            new_image_id = await self._pull(ref, digest)
        except EngineError as exc:
            return UpdateResult(
                name, UpdateOutcome.FAILED, old_digest, digest,
                f"could not pull {ref.name}@{digest}: {exc}; nothing was changed",
            )
        if selfinfo.runs_inside(old.id):
            # Stopping its own container would stop this update half-way: a helper container
            # from the new image does it from outside (raises SelfUpdateHandedOver).
            from bot.update.self_update import hand_over

            await hand_over(self.engine, self.store, old, ref, digest, old_digest, new_image_id,
                            None, made_for)
        result = await self._replace(
            old, old_image, ref, digest, old_digest, new_image_id, image_text
        )
        return _compose_note(result, old, ref)

    def _reference(self, old: ContainerInspect, image_text: str) -> ImageRef:
        name = old.name
        if SWARM_TASK_LABEL in old.labels:
            raise _Failed(f"{name} is a Swarm task; update its service instead")
        if old.auto_remove:
            raise _Failed(f"{name} was started with --rm: stopping it would delete it, so it "
                          "cannot be rolled back; recreate it yourself")
        if not old.state.running:
            raise _Failed(f"{name} is not running; start it first, or recreate it yourself")
        if is_image_id(image_text, old.image_id):
            raise _Failed(f"{name} was created from an image id, which has no newer version")
        try:
            ref = parse_reference(image_text)
        except InvalidReference as exc:
            raise _Failed(f"{name} was not created from an image reference: {exc}") from None
        if ref.digest is not None:
            raise _Failed(f"{name} is pinned to {ref.digest}; change its reference to update it")
        return ref

    async def _pull(self, ref: ImageRef, digest: str) -> str:
        """Pull `repo@digest`; the new image's id."""
        auth = await asyncio.to_thread(self._auth_config, ref)
        return (await self.engine.pull(ref.name, digest, auth)).id

    def _auth_config(self, ref: ImageRef) -> dict[str, str] | None:
        if self.credentials is None:
            return None  # the SDK falls back to Docker's own config.json
        found = self.credentials.lookup(ref.registry)
        if found is None:
            return None
        auth = {"serveraddress": ref.credentials_key}
        if found.identitytoken:
            auth["identitytoken"] = found.identitytoken
        elif found.basic:
            auth["username"], auth["password"] = found.basic
        return auth

    async def _replace(
        self,
        old: ContainerInspect,
        old_image: ImageInspect,
        ref: ImageRef,
        digest: str,
        old_digest: str | None,
        new_image_id: str,
        image_text: str | None = None,
    ) -> UpdateResult:
        name = old.name
        # The reference as written; for a newer version tag, the same with the new tag.
        image_text = image_text or old.image
        dependents = await self._dependents(old)
        spec = build_create_spec(
            old, old_image, image=image_text,
            shared_destinations=await self._shared_destinations(old),
        )
        retag = [ref.name, ref.tag] if _tagged(old_image, ref) else None
        journal = {
            "kind": "update", "image": image_text, "digest": digest, "old_digest": old_digest,
            "old_image_id": old.image_id, "new_image_id": new_image_id, "retag": retag,
            "owner": selfinfo.process_identity(),
            "dependents": [d.name for d in dependents],
        }
        try:
            # The new container is created from the reference as written, so the tag must name
            # the pulled image first; a rollback gives it back to the old image.
            with doing("tagging the pulled image"):
                await self.engine.tag(new_image_id, ref.name, ref.tag)
        except EngineError as exc:
            return UpdateResult(
                name, UpdateOutcome.FAILED, old_digest, digest,
                f"could not tag the pulled image as {ref.name}:{ref.tag}: {exc}; "
                "nothing was changed",
            )
        try:
            done = await self.replacer.replace(old, spec, journal, keep_open=bool(dependents))
        except StoreError as exc:
            # The journal could not be opened, so nothing was stopped: give the tag back.
            untag = await self.replacer.restore_tag(journal)
            return UpdateResult(
                name, UpdateOutcome.FAILED, old_digest, digest,
                f"could not journal the update of {name}: {exc}; nothing was changed{untag}",
            )
        if not done.ok:
            notes = await self._restart_dependents(dependents)
            return UpdateResult(
                name, UpdateOutcome.ROLLED_BACK, old_digest, digest,
                f"the update of {name} to {short_digest(digest)} failed: {done.detail}{notes}",
            )
        try:
            notes = await self._recreate_dependents(dependents, str(done.new_id))
        finally:
            if dependents:
                await self.replacer.finish(done.journal_id, "updated")
        if old.image_id != new_image_id:
            # Recorded for a rollback; removed now or after DOCKWARDEN_ROLLBACK_KEEP when asked.
            notes += await keep_previous(self, name, old.image, old.image_id, old_digest,
                                         new_image_id, digest)
        return UpdateResult(
            name, UpdateOutcome.UPDATED, old_digest, digest,
            f"{name} now runs {ref.familiar} at {short_digest(digest)}; {done.detail}{notes}",
        )

    async def _remove_old_image(self, image_id: str) -> str:
        """Remove the image the container ran before, unless anything else still uses it."""
        try:
            # Without force the engine refuses while any container (stopped ones too) uses it
            # or another tag names it: exactly the cases where it must stay.
            with doing("removing the old image"):
                await self.engine.remove_image(image_id)
        except EngineError as exc:
            log.info("old image %s kept: %s", image_id[:19], exc)
            return f"; the old image is kept ({exc})"
        return "; the old image was removed"

    async def _dependents(self, target: ContainerInspect) -> list[ContainerInspect]:
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

    async def _shared_destinations(self, container: ContainerInspect) -> set[str]:
        """Mount points that come from `--volumes-from` containers."""
        destinations: set[str] = set()
        for source in container.volumes_from:
            other = await self.engine.inspect_container(source.split(":")[0])
            destinations.update(m.destination for m in (other.mounts if other else ()))
        return destinations

    async def _recreate_dependents(self, dependents: list[ContainerInspect], new_id: str) -> str:
        """Recreate each dependent on its own image, now in the new container's namespace."""
        notes = []
        for dep in dependents:
            dep_name = dep.name
            image = await require_image(self.engine, dep.image_id, "inspecting an image")
            spec = build_create_spec(
                dep, image, image=await self._same_image(dep), network_container=new_id,
                shared_destinations=await self._shared_destinations(dep),
            )
            journal = {"kind": "dependent", "owner": selfinfo.process_identity()}
            done = await self.replacer.replace(dep, spec, journal)
            await asyncio.to_thread(
                self.store.record, "recreate", "updated" if done.ok else "rolled_back",
                container=dep_name, detail=done.detail,
            )
            state = "recreated in its network namespace" if done.ok else f"failed: {done.detail}"
            notes.append(f"{dep_name} {state}")
        return "; " + "; ".join(notes) if notes else ""

    async def _same_image(self, container: ContainerInspect) -> str:
        """The container's reference if it still names the image it runs, else the image id."""
        text = container.image
        try:
            current = await require_image(self.engine, text, "inspecting an image")
        except EngineError:
            return container.image_id
        return text if current.id == container.image_id else container.image_id

    async def _rejoin(self, name: str, dependent_names: list[str]) -> str:
        """Recreate the sharers still pointing at the namespace of `name`'s old container."""
        target = await self.engine.inspect_container(name)
        if target is None:
            return ""
        stale = []
        for dep_name in dependent_names:
            dep = await self.engine.inspect_container(dep_name)
            if dep is not None and not shares_network_of(dep, target):
                stale.append(dep)
        return await self._recreate_dependents(stale, target.id)

    async def _restart_dependents(self, dependents: list[ContainerInspect]) -> str:
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

    async def reconcile(self) -> list[str]:
        """Settle every update a dead process left open; the names of the containers settled.

        Called at start and then periodically: a journal that looked owned by a live process
        (another host's, until it expires) is settled once that is no longer so.
        """
        settled = []
        entries = await asyncio.to_thread(self.store.journal_open)
        # Namespace sharers first: settling their target may recreate them.
        entries.sort(key=lambda e: e.data.get("kind") != "dependent")
        for entry in entries:
            if self._owner_alive(entry) or entry.container in self._busy:
                continue  # still being carried out by a live process, or by this one
            self._busy.add(entry.container)
            try:
                await self._settle(entry)
            finally:
                self._busy.discard(entry.container)
            settled.append(entry.container)
        return settled

    async def _settle(self, entry: JournalEntry) -> str:
        try:
            outcome, text = await self.replacer.settle(entry)
            if outcome == "updated" and entry.data.get("dependents"):
                text += await self._rejoin(entry.data["name"], entry.data["dependents"])
        except EngineError as exc:
            outcome, text = "failed", f"{entry.container}: could not settle: {exc}"
        await asyncio.to_thread(self.store.journal_finish, entry.id, outcome)
        await asyncio.to_thread(
            self.store.record, "reconcile", outcome, container=entry.container,
            detail=f"after step {entry.step}: {text}",
        )
        log.warning("interrupted update settled (%s): %s", outcome, text)
        return text


def journal_owner_alive(entry: JournalEntry) -> bool:
    """Whether the process that opened the journal may still be carrying the update out."""
    owner = entry.data.get("owner") or {}
    if owner.get("host") == socket.gethostname():
        return selfinfo.is_alive(owner)
    # Written from another container or host: no pid to look at, but no update outlives its
    # stop timeout plus its health timeout, which the journal's expiry allows for.
    return time.time() < float(entry.data.get("expires") or 0)


def _refuse_stale(
    name: str,
    ref: ImageRef,
    current: Sequence[str],
    expected: str | None,
    made_for: Basis | None,
) -> None:
    """Raise StaleUpdate when `name` no longer runs what the approved update was made for."""
    if made_for is None:
        return
    if str(ref) == made_for.image:
        if expected is not None and expected in current:
            return  # it already runs the approved digest: reported as up to date
        if made_for.digest is None or made_for.digest in current:
            return
    now = short_digest(current[0]) if current else "an image with no registry digest"
    was = short_digest(made_for.digest) if made_for.digest else "an unknown digest"
    raise StaleUpdate(
        name,
        image=str(ref),
        digest=current[0] if current else None,
        message=(
            f"{name} now runs {ref.familiar} at {now}, not {made_for.image} at {was} as when the "
            "update was found; nothing was changed"
        ),
    )


def _with_tag(image_text: str, ref: ImageRef, new_tag: str) -> str:
    """The reference as the container was created with, naming `new_tag` instead."""
    if ref.tag and image_text.endswith(f":{ref.tag}"):
        return image_text[: -len(ref.tag)] + new_tag
    return str(ref.with_tag(new_tag))


def _compose_note(result: UpdateResult, old: ContainerInspect, ref: ImageRef) -> UpdateResult:
    """After a move to a newer tag: say when a compose file still names the old one."""
    files = old.labels.get(COMPOSE_FILES_LABEL)
    old_tag = _tag_of(old.image)
    if result.outcome is not UpdateOutcome.UPDATED or not files or old_tag == ref.tag:
        return result
    note = (
        f"; {files} still names {old_tag}: change it to {ref.tag}, or the next "
        "`docker compose up` goes back to the old version"
    )
    return replace(result, message=result.message + note)


def _tag_of(image_text: str) -> str | None:
    try:
        return parse_reference(image_text).tag
    except InvalidReference:
        return None


def _tagged(image: ImageInspect, ref: ImageRef) -> bool:
    """Whether the old image carries `ref`'s tag (so a rollback should give it back)."""
    for text in image.repo_tags:
        try:
            other = parse_reference(text)
        except InvalidReference:
            continue
        if other.name == ref.name and other.tag == ref.tag:
            return True
    return False


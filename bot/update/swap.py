"""Put a running container on another image of its repository: the one path an update and a
rollback share.

The tag the container was created from is moved to the image first (the new container is created
from the reference as written), then the journalled Replacer (bot/update/replace.py) stops,
recreates, gates on health and undoes; the containers sharing its network namespace follow it
(bot/update/dependents.py). Only the words differ between an update and a rollback: the caller
turns a `Swapped` into its result.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.domain.model import UpdateOutcome
from bot.domain.reference import ImageRef
from bot.engines.inspect import ContainerInspect, ImageInspect
from bot.engines.port import Engine, doing
from bot.errors import EngineError, StoreError
from bot.update import selfinfo
from bot.update.compose import restart_followers
from bot.update.dependents import Dependents, volumes_from_destinations
from bot.update.images import carries_tag
from bot.update.links import relink
from bot.update.replace import Replacer, aside_name
from bot.update.spec import build_create_spec


@dataclass(frozen=True)
class Move:
    """One container to put on another image: what the journal records about it."""

    kind: str  # "update" or "rollback": the journal's kind
    done_as: UpdateOutcome  # the journal's outcome once it succeeded
    image_text: str  # the reference the new container is created from, as written
    ref: ImageRef  # the repository:tag that must name the new image
    digest: str | None  # the digest moved to
    old_digest: str | None  # the digest moved from
    new_image_id: str
    image_is: str  # what the new image is, in the tag step's words ("the pulled image")


class Ended(StrEnum):
    """How far a swap got."""

    UNTAGGED = "untagged"  # the tag could not be moved: nothing was changed
    UNJOURNALLED = "unjournalled"  # the journal could not be opened: nothing was changed
    UNDONE = "undone"  # the replacement failed and the old container runs again
    DONE = "done"  # the container runs the new image


@dataclass(frozen=True)
class Swapped:
    """How a swap ended: the engine's or the Replacer's words, and notes to add after them."""

    ended: Ended
    detail: str
    notes: str = ""


async def swap(
    engine: Engine,
    replacer: Replacer,
    dependents: Dependents,
    old: ContainerInspect,
    current_image: ImageInspect,
    move: Move,
) -> Swapped:
    """Move the tag, replace `old` by a container of `move`'s image, and carry its sharers."""
    sharers = await dependents.of(old)
    spec = build_create_spec(
        old, current_image, image=move.image_text, image_id=move.new_image_id,
        shared_destinations=await volumes_from_destinations(engine, old),
    )
    ref = move.ref
    journal = {
        "kind": move.kind, "image": move.image_text, "digest": move.digest,
        "old_digest": move.old_digest, "old_image_id": old.image_id,
        "new_image_id": move.new_image_id,
        # A rollback of the replacement gives the tag back to the image that had it.
        "retag": [ref.name, ref.tag] if carries_tag(current_image, ref) else None,
        "owner": selfinfo.process_identity(),
        "dependents": [d.name for d in sharers],
    }
    try:
        # The new container is created from the reference as written, so the tag must name
        # the new image first.
        with doing(f"tagging {move.image_is}"):
            await engine.tag(move.new_image_id, ref.name, ref.tag)
    except EngineError as exc:
        return Swapped(Ended.UNTAGGED, str(exc))
    try:
        done = await replacer.replace(old, spec, journal, keep_open=bool(sharers))
    except StoreError as exc:
        # The journal could not be opened, so nothing was stopped: give the tag back.
        return Swapped(Ended.UNJOURNALLED, str(exc), await replacer.restore_tag(journal))
    if not done.ok:
        return Swapped(Ended.UNDONE, done.detail, await dependents.restart(sharers))
    try:
        notes = await dependents.recreate(sharers, str(done.new_id))
    finally:
        if sharers:
            await replacer.finish(done.journal_id, move.done_as)
    # As Compose does after recreating a service: what depends on it starts again after it.
    notes += await restart_followers(engine, old, skip=[d.name for d in sharers])
    notes += await relink(engine, replacer, old.name, aside_name(old.name, old.id))
    return Swapped(Ended.DONE, done.detail, notes)

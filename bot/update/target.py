"""What an update goes along: the reference a container or service is updated on, the checks
that refuse to start one (NotUpdatable, StaleUpdate), and the reference written for a newer tag.

Pure functions over the typed inspect views; nothing here calls the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bot.check.checker import local_digests
from bot.domain.model import Basis, UpdateOutcome, UpdateResult, short_digest
from bot.domain.reference import ImageRef, is_image_id, parse_reference
from bot.engines.inspect import ContainerInspect
from bot.engines.swarm import ServiceInspect
from bot.errors import InvalidReference, NotUpdatable, StaleUpdate

SWARM_TASK_LABEL = "com.docker.swarm.task.id"
COMPOSE_FILES_LABEL = "com.docker.compose.project.config_files"


def container_reference(
    old: ContainerInspect, image_text: str, *, stopped_ok: bool = False
) -> ImageRef:
    """The reference `old` is updated (or rolled back) along; NotUpdatable when there is none
    or recreating it would lose it (a Swarm task, --rm, an image id, pinned; stopped unless
    `stopped_ok`, DOCKWARDEN_INCLUDE_STOPPED)."""
    name = old.name
    if SWARM_TASK_LABEL in old.labels:
        raise NotUpdatable(f"{name} is a Swarm task; update its service instead")
    if old.auto_remove:
        raise NotUpdatable(f"{name} was started with --rm: stopping it would delete it, so it "
                           "cannot be rolled back; recreate it yourself")
    if not old.state.running and not stopped_ok:
        raise NotUpdatable(f"{name} is not running; start it first, or recreate it yourself")
    if is_image_id(image_text, old.image_id):
        raise NotUpdatable(f"{name} was created from an image id, which has no newer version")
    try:
        ref = parse_reference(image_text)
    except InvalidReference as exc:
        raise NotUpdatable(f"{name} was not created from an image reference: {exc}") from None
    if ref.digest is not None:
        raise NotUpdatable(
            f"{name} is pinned to {ref.digest}; change its reference to update it"
        )
    return ref


def service_target(service: ServiceInspect) -> tuple[ImageRef, str | None]:
    """The reference a service is updated along, and the digest its spec is pinned to."""
    name, workload = service.name, service.workload
    if workload is None:
        raise NotUpdatable(f"service {name} has no image")
    try:
        ref = parse_reference(workload.image)
    except InvalidReference as exc:
        raise NotUpdatable(f"service {name} has no image reference: {exc}") from None
    if ref.digest is not None:
        raise NotUpdatable(f"service {name} is pinned to {ref.digest}; change its image to "
                           "update it")
    known = local_digests(ref, workload.repo_digests)
    return ref, known[0] if known else None


def refuse_stale(
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


def with_tag(image_text: str, ref: ImageRef, new_tag: str) -> str:
    """The reference as the container was created with, naming `new_tag` instead."""
    if ref.tag and image_text.endswith(f":{ref.tag}"):
        return image_text[: -len(ref.tag)] + new_tag
    return str(ref.with_tag(new_tag))


def compose_note(result: UpdateResult, old: ContainerInspect, ref: ImageRef) -> UpdateResult:
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

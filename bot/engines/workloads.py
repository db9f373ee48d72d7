"""The running containers as Workloads: what the checker compares with the registries.

One pass lists the containers and the local images' RepoDigests in two requests, and inspects
a container or an image only where the list cannot say (a moved tag, a second name on the
containerd image store).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import docker.errors

from bot.domain.model import Workload
from bot.domain.reference import parse_reference
from bot.engines.swarm import SERVICE_ID_LABEL
from bot.errors import InvalidReference

if TYPE_CHECKING:
    from bot.engines.docker import DockerEngine

log = logging.getLogger(__name__)

# Where an engine keeps images (DockerEngine.store()).
STORE_CLASSIC, STORE_CONTAINERD, STORE_PODMAN = "classic", "containerd", "podman"


def list_workloads(engine: DockerEngine, *, stopped: bool = False) -> list[Workload]:
    """The running containers (stopped ones too with `stopped`), each with its reference."""
    with engine.calls("listing containers"):
        summaries: list[dict[str, Any]] = engine.docker.api.containers(all=stopped)
    listing = _Listing(engine)
    workloads = []
    for summary in summaries:
        if not is_watchable(summary):
            continue
        workload = listing.workload(summary)
        if workload is not None:
            workloads.append(workload)
    return workloads


def is_watchable(summary: dict[str, Any]) -> bool:
    """Whether a listed container is one to check: running, or stopped but no Swarm task."""
    # An exited Swarm task is the service's history: its service is checked, it is never
    # started again. (Running tasks are left to the checker, which knows the services.)
    return summary.get("State") in (None, "running") or not (
        (summary.get("Labels") or {}).get(SERVICE_ID_LABEL)
    )


class _Listing:
    """One pass over the containers: the images' digests asked once, inspects remembered."""

    def __init__(self, engine: DockerEngine) -> None:
        self.engine = engine
        self.images = self._image_digests()
        self.inspected_images: set[str] = set()
        self.store = engine.store()

    def _image_digests(self) -> dict[str, tuple[str, ...]]:
        """RepoDigests of every local image, by image id, in one request."""
        with self.engine.calls("listing images"):
            listed: list[dict[str, Any]] = self.engine.docker.api.images()
        return {img["Id"]: tuple(img.get("RepoDigests") or ()) for img in listed}

    def _repo_digests(self, image_id: str, image: str) -> tuple[str, ...]:
        known, inspected, store = self.images, self.inspected_images, self.store
        # The containerd image store lists one RepoDigest per image: an image with a second
        # name may lack the container's repository there, though its inspect has them all.
        listed = known.get(image_id)
        if listed is not None and (image_id in inspected or _names_repository(listed, image)):
            return listed
        inspected.add(image_id)
        with self.engine.calls("inspecting an image"):
            try:
                found = self.engine.docker.api.inspect_image(image_id)
            except docker.errors.NotFound:
                found = {}
        known[image_id] = tuple(found.get("RepoDigests") or ()) or known.get(image_id, ())
        if not found and store == STORE_CONTAINERD:
            # A pull over the tag removed the image the container still runs; on this store
            # its id is the digest of the manifest (or index) it was pulled as.
            return _own_digest(image, image_id)
        return known[image_id]

    def workload(self, summary: dict[str, Any]) -> Workload | None:
        """The container of one list entry; None when it went away meanwhile."""
        container_id: str = summary["Id"]
        image_id: str = summary.get("ImageID") or ""
        image: str = summary.get("Image") or ""
        # The list shows the image id instead of the reference when the tag has since moved to
        # another image (pulled but not yet recreated): only then is an inspect needed.
        if not image or image == image_id:
            with self.engine.calls("inspecting a container"):
                try:
                    inspected = self.engine.docker.api.inspect_container(container_id)
                except docker.errors.NotFound:
                    log.debug("container %s went away during the pass", container_id[:12])
                    return None
            image = inspected["Config"]["Image"]
            image_id = inspected.get("Image") or image_id
        return Workload(
            name=container_name(summary.get("Names") or [], container_id),
            id=container_id,
            image=image,
            image_id=image_id,
            repo_digests=self._repo_digests(image_id, image) if image_id else (),
            labels=dict(summary.get("Labels") or {}),
            digests_prove_pull=self.store == STORE_CLASSIC,
            stopped=summary.get("State") not in (None, "running"),
        )


def _names_repository(repo_digests: tuple[str, ...], image: str) -> bool:
    """Whether a RepoDigest names the repository of `image` (or `image` is no reference)."""
    try:
        wanted = parse_reference(image)
    except InvalidReference:
        return True  # an image id or the like: nothing an inspect could add
    return (wanted.registry, wanted.repository) in repositories_named(repo_digests)


@functools.lru_cache(maxsize=4096)
def repositories_named(repo_digests: tuple[str, ...]) -> frozenset[tuple[str, str]]:
    """The (registry, repository) pairs an image's RepoDigests name, parsed once per image.

    An image pushed under many names carries all of them on each of its containers' list
    entries; parsing them again for every container made a listing of 1000 containers of one
    such image take seconds.
    """
    named: set[tuple[str, str]] = set()
    for entry in repo_digests:
        try:
            have = parse_reference(entry)
        except InvalidReference:
            continue
        named.add((have.registry, have.repository))
    return frozenset(named)


def _own_digest(image: str, image_id: str) -> tuple[str, ...]:
    """`repository@<image id>` for a reference (nothing when `image` is none)."""
    try:
        return (f"{parse_reference(image).name}@{image_id}",)
    except InvalidReference:
        return ()


def container_name(names: list[str], container_id: str) -> str:
    """The container's own name from the list API's Names (links add "/other/alias" names)."""
    for name in names:
        stripped = name.lstrip("/")
        if "/" not in stripped:
            return stripped
    return names[0].lstrip("/") if names else container_id[:12]

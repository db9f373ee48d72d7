"""Containers Docker Compose made: the labels it compares, and the containers that follow one.

`docker compose up` recreates a container when what it recorded on it no longer matches the
project. Compose v2 (2.26 and later) compares two labels: `com.docker.compose.config-hash`, a
hash of the service's configuration that does not include the image, and
`com.docker.compose.image`, the id of the image the service's reference names locally, written
when it creates the container. After DockWarden moves the tag and recreates the container, the
configuration is the same but the image is not: `carry_compose_labels` writes the new image's id
there, as Compose would, so the next `up` finds nothing to do.

Compose restarts the containers that depend on one it recreates (`depends_on`, recorded as
`com.docker.compose.depends_on`, which Compose fills from `links` too); `followers` finds them and
`restart_followers` does the same after an update. (A `docker run --link` to the updated
container cannot merely be restarted: bot/update/links.py recreates it.)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from bot.domain.model import COMPOSE_PROJECT_LABEL, compose_of
from bot.engines.inspect import ContainerInspect
from bot.engines.port import Engine, doing
from bot.errors import EngineError

IMAGE_LABEL = "com.docker.compose.image"
DEPENDS_ON_LABEL = "com.docker.compose.depends_on"


def carry_compose_labels(labels: Mapping[str, str], image_id: str) -> dict[str, str]:
    """The labels with Compose's image label naming `image_id`, when Compose wrote one."""
    out = dict(labels)
    if out.get(IMAGE_LABEL):
        out[IMAGE_LABEL] = image_id
    return out


def depends_on(labels: Mapping[str, str]) -> set[str]:
    """The services a Compose container depends on: `web:service_started:false,db:...`."""
    return {
        entry.split(":", 1)[0].strip()
        for entry in labels.get(DEPENDS_ON_LABEL, "").split(",")
        if entry.strip()
    }


def links_to(container: ContainerInspect, target_name: str) -> bool:
    """Whether `container` links to `target_name` on a network (Compose `links`)."""
    # A network's links read `target:alias`.
    return any(link.split(":", 1)[0] == target_name
               for endpoint in container.networks for link in endpoint.links)


async def followers(
    engine: Engine, target: ContainerInspect, skip: Collection[str] = ()
) -> list[ContainerInspect]:
    """Running containers of `target`'s Compose project that depend on it (`depends_on`,
    `links`); not those in `skip`. None for a container Compose did not make."""
    project, _, service = (compose_of(target.labels) or "").partition("/")
    if not project:
        return []
    with doing("listing containers"):
        summaries = await engine.list_containers()
    found = []
    for summary in summaries:
        names = {n.lstrip("/") for n in summary.names}
        if summary.id == target.id or target.name in names or names & set(skip):
            continue
        if summary.labels.get(COMPOSE_PROJECT_LABEL) != project:
            continue
        other = await engine.inspect_container(summary.id)
        if other is None or other.name in skip:
            continue
        if service in depends_on(other.labels) or links_to(other, target.name):
            found.append(other)
    return found


async def restart_followers(
    engine: Engine, target: ContainerInspect, skip: Collection[str] = ()
) -> str:
    """Restart what depends on `target` after it was recreated; notes for the update's message."""
    if not target.state.running:
        return ""  # recreated stopped, as it was: what depends on it is left as it is
    notes = []
    try:
        found = await followers(engine, target, skip)
    except EngineError as exc:
        return f"; could not look for containers depending on {target.name}: {exc}"
    for follower in found:
        try:
            with doing("restarting a dependent"):
                await engine.restart(follower.id)
            notes.append(f"restarted {follower.name}, which depends on it")
        except EngineError as exc:
            notes.append(f"could not restart {follower.name}: {exc}")
    return "; " + "; ".join(notes) if notes else ""

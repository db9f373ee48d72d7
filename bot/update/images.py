"""The images an update moves between: pulled by exact digest with DockWarden's registry
credentials, the image a container runs (pulled back when it is gone), and the old one let go.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot.domain.model import short_digest
from bot.domain.reference import ImageRef, parse_reference
from bot.engines.inspect import ContainerInspect, ImageInspect
from bot.engines.port import Engine, doing, require_image
from bot.errors import EngineError, InvalidReference, NotUpdatable

if TYPE_CHECKING:
    from bot.registry.credentials import DockerCredentials

log = logging.getLogger(__name__)


class Images:
    """Pulls, inspects and removes images for the update path."""

    def __init__(self, engine: Engine, credentials: DockerCredentials | None) -> None:
        self.engine = engine
        # Without credentials, the Docker SDK reads Docker's own config.json for the pull.
        self.credentials = credentials

    async def pull(self, ref: ImageRef, digest: str) -> str:
        """Pull `repo@digest` (never whatever the tag names a moment later); the image's id."""
        auth = await asyncio.to_thread(self.auth_config, ref)
        return (await self.engine.pull(ref.name, digest, auth)).id

    def auth_config(self, ref: ImageRef) -> dict[str, str] | None:
        """The pull's credentials for `ref`'s registry; None leaves them to Docker's config."""
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

    async def running(self, old: ContainerInspect, ref: ImageRef) -> ImageInspect:
        """The image `old` runs; pulled back by digest when it is gone (NotUpdatable if not)."""
        image_id = old.image_id
        with doing("inspecting the image"):
            found = await self.engine.inspect_image(image_id)
        if found is not None:
            return found
        # On the containerd image store a pull over the tag removes the image a container still
        # runs, and its id is the digest it was pulled as: pulled back, it gives the image's own
        # settings (not to be pinned on the new container) and a rollback its image.
        try:
            await self.pull(ref, image_id)
        except EngineError as exc:
            raise NotUpdatable(
                f"the image {old.name} runs ({short_digest(image_id)}) is no longer here and "
                f"could not be pulled back: {exc}"
            ) from None
        return await require_image(self.engine, image_id, "inspecting the image")

    async def remove(self, image_id: str) -> str:
        """Remove the image a container ran before, unless anything else still uses it."""
        try:
            # Without force the engine refuses while any container (stopped ones too) uses it
            # or another tag names it: exactly the cases where it must stay.
            with doing("removing the old image"):
                await self.engine.remove_image(image_id)
        except EngineError as exc:
            log.info("old image %s kept: %s", image_id[:19], exc)
            return f"; the old image is kept ({exc})"
        return "; the old image was removed"


def carries_tag(image: ImageInspect, ref: ImageRef) -> bool:
    """Whether `image` carries `ref`'s tag (so a rollback should give it back)."""
    for text in image.repo_tags:
        try:
            other = parse_reference(text)
        except InvalidReference:
            continue
        if other.name == ref.name and other.tag == ref.tag:
            return True
    return False

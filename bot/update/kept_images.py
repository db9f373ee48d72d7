"""The image each successful update replaced, kept for a rollback, and let go afterwards.

Every successful update records the image it replaced (`remember`); that image is kept for
DOCKWARDEN_ROLLBACK_KEEP, even with DOCKWARDEN_REMOVE_OLD_IMAGES, and `expire` lets it go once
the keep time passed (removing it then when asked, unless something still uses it).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from bot.domain.targets import ONE_HOST, HostScope
from bot.errors import StoreError
from bot.store.connection import utcnow
from bot.store.db import Store
from bot.store.safety import SafetyStore
from bot.update.images import Images

log = logging.getLogger(__name__)


class KeptImages:
    """Records replaced images for rollbacks and removes them when their keep time is over."""

    def __init__(
        self,
        store: Store,
        images: Images,
        *,
        keep: timedelta,
        remove_old: bool,
        scope: HostScope = ONE_HOST,
    ) -> None:
        self.safety = SafetyStore(store)
        self.scope = scope  # this host's records only: the images are on its engine
        self.images = images
        self.keep = keep  # DOCKWARDEN_ROLLBACK_KEEP
        self.remove_old = remove_old  # DOCKWARDEN_REMOVE_OLD_IMAGES

    async def remember(
        self,
        name: str,
        image: str,
        old_image_id: str,
        old_digest: str | None,
        new_image_id: str,
        new_digest: str | None,
    ) -> str:
        """After a successful update: remember the replaced image for a rollback; a note to add."""
        try:
            await asyncio.to_thread(
                self.safety.remember_update, name, image, old_image_id, old_digest, new_image_id,
                new_digest, utcnow() + self.keep,
            )
        except StoreError:
            log.exception("could not record the previous image of %s; it cannot be rolled back",
                          name)
            if self.remove_old:
                return "; the old image is kept (the rollback record could not be written)"
            return ""
        if not self.remove_old:
            return ""
        if self.keep > timedelta(0):
            until = (utcnow() + self.keep).strftime("%Y-%m-%d %H:%M UTC")
            return f"; the old image is kept for a rollback until {until}"
        return await self.images.remove(old_image_id)

    async def expire(self, now: datetime) -> int:
        """Let previous images go once their keep time passed; removed with
        DOCKWARDEN_REMOVE_OLD_IMAGES unless still used. Returns how many records expired."""
        records = [r for r in await asyncio.to_thread(self.safety.expired, now)
                   if self.scope.owns(r.container)]
        for record in records:
            await asyncio.to_thread(self.safety.set_state, record.id, "expired")
            if not self.remove_old:
                continue
            if await asyncio.to_thread(self.safety.image_still_kept, record.old_image_id):
                continue
            note = await self.images.remove(record.old_image_id)
            log.info("previous image of %s (%s) past its keep time%s", record.container,
                     record.old_image_id[:19], note)
        return len(records)

"""Updates a process left half-done: whose journal is still being carried out, and settling the
rest (the Replacer converges the container, its namespace sharers rejoin it).

Run at start, periodically, and before any new change of a container whose journal is open.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

from bot.domain.model import UpdateOutcome
from bot.errors import EngineError, UpdateInProgress
from bot.store.db import Store
from bot.store.journal import JournalEntry
from bot.update import selfinfo
from bot.update.claims import Claims
from bot.update.dependents import Dependents
from bot.update.replace import Replacer

log = logging.getLogger(__name__)


def journal_owner_alive(entry: JournalEntry) -> bool:
    """Whether the process that opened the journal may still be carrying the update out."""
    owner = entry.data.get("owner") or {}
    if owner.get("host") == socket.gethostname():
        return selfinfo.is_alive(owner)
    # Written from another container or host: no pid to look at, but no update outlives its
    # stop timeout plus its health timeout, which the journal's expiry allows for.
    return time.time() < float(entry.data.get("expires") or 0)


class Reconciler:
    """Settles the open journals no live process is carrying out."""

    def __init__(
        self, store: Store, replacer: Replacer, dependents: Dependents, claims: Claims
    ) -> None:
        self.store = store
        self.replacer = replacer
        self.dependents = dependents
        self.claims = claims

    def owner_alive(self, entry: JournalEntry) -> bool:
        """Like journal_owner_alive, but a journal of this very process is alive only while
        this process still carries it out (else a failed write or a cancel left it open)."""
        if entry.data.get("owner") == selfinfo.process_identity():
            return entry.id in self.replacer.active
        return journal_owner_alive(entry)

    async def refuse_foreign_update(self, name: str) -> None:
        """Another live process is updating it, or a dead one left it half-done (settle it)."""
        key = self.replacer.scope.key(name)
        for entry in await asyncio.to_thread(self.store.journal_open):
            if entry.container != key:
                continue
            if self.owner_alive(entry):
                raise UpdateInProgress(f"another DockWarden process is updating {name}")
            await self.settle(entry)

    async def reconcile(self) -> list[str]:
        """Settle every update a dead process left open; the names of the containers settled.

        A journal that looked owned by a live process (another host's, until it expires) is
        settled by a later call once that is no longer so.
        """
        settled = []
        scope = self.replacer.scope
        # Each host's updater settles its own host's journals, on its own engine.
        entries = [e for e in await asyncio.to_thread(self.store.journal_open)
                   if scope.owns(e.container)]
        # Namespace sharers first: settling their target may recreate them.
        entries.sort(key=lambda e: e.data.get("kind") != "dependent")
        for entry in entries:
            name = scope.name(entry.container)
            if self.owner_alive(entry) or name in self.claims:
                continue  # still being carried out by a live process, or by this one
            with self.claims.settling(name):
                await self.settle(entry)
            settled.append(entry.container)
        return settled

    async def settle(self, entry: JournalEntry) -> str:
        """Converge one open journal, close it and record how; what was done."""
        try:
            outcome, text = await self.replacer.settle(entry)
            if outcome == UpdateOutcome.UPDATED and entry.data.get("dependents"):
                text += await self.dependents.rejoin(
                    entry.data["name"], entry.data["dependents"]
                )
        except EngineError as exc:
            outcome, text = UpdateOutcome.FAILED, f"{entry.container}: could not settle: {exc}"
        await asyncio.to_thread(self.store.journal_finish, entry.id, outcome)
        await asyncio.to_thread(
            self.store.record, "reconcile", outcome, container=entry.container,
            detail=f"after step {entry.step}: {text}",
        )
        log.warning("interrupted update settled (%s): %s", outcome, text)
        return text

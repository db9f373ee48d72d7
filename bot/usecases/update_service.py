"""Applying an update: the one path from an approval, a /pull, an auto policy or
`dockwarden update` to the updater and back — record, apply, settle the pending update, announce.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from bot.chat.alert_texts import result_alert
from bot.domain.model import (
    APPROVABLE_STATES,
    Basis,
    UpdateOutcome,
    UpdateResult,
    UpdateState,
)
from bot.errors import (
    CanaryWaiting,
    ContainerNotFound,
    DockWardenError,
    SelfUpdateHandedOver,
    SelfUpdateRefused,
    StaleUpdate,
    StoreError,
    UpdateInProgress,
)
from bot.store.db import Store
from bot.store.safety import SafetyStore
from bot.store.updates import PendingUpdate
from bot.usecases.canary import (
    CanariesFirst,
    CanaryGate,
    Soak,
    Stop,
    first_text,
    soak_text,
    stop_text,
)
from bot.usecases.delivery import AlertSink
from bot.usecases.ports import Recheck, UpdaterPort

log = logging.getLogger(__name__)

# Refusals raised before anything was done: the update stays approvable, the caller says why.
NOT_STARTED = (UpdateInProgress, ContainerNotFound, SelfUpdateRefused)


class UpdateService:
    """The one path from an approval, a /pull, an auto policy or `dockwarden update` to the
    updater and back: record, apply, settle the pending update, announce.

    Whatever the updater or the store raise, the update is settled (`failed`, with an
    `update_failed` alert) rather than left `approved`; a settlement the store could not take
    is kept and written at the next call (or by `settle_leftovers`).
    """

    def __init__(
        self,
        store: Store,
        updater: UpdaterPort,
        sink: AlertSink,
        *,
        recheck: Recheck | None = None,
        canary: CanaryGate | None = None,
    ) -> None:
        self.store = store
        # DOCKWARDEN_CANARY_HOSTS: approved digests go to the canary hosts first.
        self.canary = canary
        # Called with when a canary soak ends (the pass runner wakes then); None: next pass.
        self.wake_at: Callable[[datetime], None] | None = None
        self.updater = updater
        self.sink = sink
        # Runs a fresh check of containers whose approval turned out stale (the pass runner's
        # run, set once the runner exists); without it nothing is checked again.
        self.recheck = recheck
        self._in_flight: set[asyncio.Task[object]] = set()
        self._rechecks: set[asyncio.Task[None]] = set()
        # update id -> (state, detail) the store refused to take when it was settled
        self._unsettled: dict[str, tuple[UpdateState, str]] = {}

    @property
    def in_flight(self) -> int:
        """How many updates are running now."""
        return len(self._in_flight)

    def pending(self, container: str) -> PendingUpdate | None:
        """The container's newest update that can still be approved, if any."""
        latest = self.store.latest_update(container)
        if latest is not None and latest.state in APPROVABLE_STATES:
            return latest
        return None

    async def apply(
        self,
        container: str,
        *,
        update: PendingUpdate | None,
        actor: str,
        action: str,
        digest: str | None = None,
    ) -> UpdateResult:
        """Update `container` (to the update's digest when given); record and announce it.

        With `update`, nothing changes unless the container still runs what the update was
        found for; otherwise the update is settled as superseded and the container checked
        again. Without it, the container goes to `digest` (a preview's) or to the registry's
        current digest, and its open update, if any, is settled by the result.
        """
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            return await self._apply(
                container, update=update, actor=actor, action=action, digest=digest
            )
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _apply(
        self,
        container: str,
        *,
        update: PendingUpdate | None,
        actor: str,
        action: str,
        digest: str | None,
    ) -> UpdateResult:
        self.settle_leftovers()
        expected = update.remote_digest if update else digest
        if update is not None and self.canary is not None and self.canary.applies(update):
            try:
                stopped = await self._canaries_first(update, actor, action)
            except CanaryWaiting:
                raise
            except Exception as exc:  # whatever happened to the canaries: never left approved
                log.exception("the canary rollout for %s failed", container)
                stopped = Stop(f"the canaries could not be updated: {exc}")
            if stopped is not None:
                return await self._ended(
                    action, container, update, actor,
                    UpdateResult.failed(container, stop_text(container, stopped),
                                        update.old_digest, update.remote_digest),
                )
        try:
            if action != "update":  # an approval is recorded by approve(); a pull or auto here
                self.store.record(action, "requested", container=container, actor=actor,
                                  detail=update.id if update else "")
            made_for = Basis(update.image, update.old_digest, update.new_tag) if update else None
            result = await self.updater.update(
                container, expected_digest=expected, actor=actor, made_for=made_for
            )
        except SelfUpdateHandedOver as exc:
            # A helper container carries it out; the bot that comes up afterwards settles the
            # update, so it stays approved (not approvable twice) until then.
            self._record(action, "handed_over", container, actor, str(exc))
            raise
        except NOT_STARTED as exc:
            if update is not None:  # nothing was done: the update can be approved again
                self._settle(update.id, UpdateState.PENDING, str(exc),
                             expect=(UpdateState.APPROVED,))
            self._record(action, "refused", container, actor, str(exc))
            raise
        except StaleUpdate as exc:
            return await self._superseded(container, update, actor, exc)
        except Exception as exc:  # anything at all: settled as failed, never left approved
            if not isinstance(exc, DockWardenError):
                log.exception("unexpected failure while updating %s", container)
            why = str(exc) if isinstance(exc, DockWardenError) else (
                f"unexpected {type(exc).__name__}: {exc}")
            result = UpdateResult.failed(
                container, why, update.old_digest if update else None, expected
            )
            # The updater records the outcome of every update it carries out; this one it
            # could not, so it is recorded here.
            self._record("update", result.outcome.value, container, actor, result.message)
        return await self._ended(action, container, update, actor, result, recorded=True)

    async def _ended(
        self,
        action: str,
        container: str,
        update: PendingUpdate | None,
        actor: str,
        result: UpdateResult,
        *,
        recorded: bool = False,
    ) -> UpdateResult:
        """Settle the update by the result and announce it."""
        if not recorded:
            self._record(action, result.outcome.value, container, actor, result.message)
        ok = result.outcome in (UpdateOutcome.UPDATED, UpdateOutcome.UP_TO_DATE)
        target = update or self._pending_quietly(container)
        if target is not None and (update is not None or ok):
            state = UpdateState.APPLIED if ok else UpdateState.FAILED
            if ok and result.new_digest and result.new_digest != target.remote_digest:
                # a /pull took a digest newer than the one alerted
                state = UpdateState.SUPERSEDED
            self._settle(target.id, state, result.message)
        update_id = target.id if target else None
        await self._announce(result, update_id, actor)
        return result

    async def _canaries_first(
        self, update: PendingUpdate, actor: str, action: str
    ) -> Stop | None:
        """The canary hosts' containers of the same image get the digest first; raises
        CanaryWaiting (the update pending again, waiting) until they have soaked; a Stop
        when one of them failed."""
        assert self.canary is not None
        verdict = await self.canary.verdict(update)
        if isinstance(verdict, CanariesFirst):
            log.info("canaries first for %s: %s", update.container, first_text(verdict.updates))
            for row in verdict.updates:
                if row.state is not UpdateState.PENDING:
                    continue  # being applied by someone else right now: waited for below
                if not self.store.approve_update(row.id, actor):
                    continue
                try:
                    done = await self.apply(row.container, update=row, actor=actor, action=action)
                except NOT_STARTED as exc:
                    return Stop(f"canary {row.container} could not be updated: {exc}")
                if done.outcome not in (UpdateOutcome.UPDATED, UpdateOutcome.UP_TO_DATE):
                    return Stop(f"the update of canary {row.container} failed: {done.message}")
            verdict = await self.canary.verdict(update)
            if isinstance(verdict, CanariesFirst):  # still being applied elsewhere
                verdict = Soak(self.canary.clock() + self.canary.soak,
                               tuple(u.container for u in verdict.updates))
        if isinstance(verdict, Stop):
            return verdict
        if isinstance(verdict, Soak):
            text = soak_text(update.container, verdict)
            self._settle(update.id, UpdateState.PENDING, text, expect=(UpdateState.APPROVED,))
            SafetyStore(self.store).wait(update.id, update.container, verdict.until)
            self._record("canary", "waiting", update.container, actor, text)
            if self.wake_at is not None:
                self.wake_at(verdict.until)
            raise CanaryWaiting(text)
        return None

    async def _superseded(
        self, container: str, update: PendingUpdate | None, actor: str, exc: StaleUpdate
    ) -> UpdateResult:
        """The container moved on since the update was found: settle it, look again."""
        update_id = update.id if update else ""
        message = f"{exc}; update {update_id} is superseded and {container} is checked again"
        if update is not None:
            self._settle(update.id, UpdateState.SUPERSEDED, message)
        self._record("update", "superseded", container, actor, message)
        log.info("stale approval of %s: %s", container, message)
        if self.recheck is not None:
            recheck = asyncio.create_task(self._recheck(container))
            self._rechecks.add(recheck)
            recheck.add_done_callback(self._rechecks.discard)
        return UpdateResult.failed(
            container, message, exc.digest, update.remote_digest if update else None
        )

    async def _recheck(self, container: str) -> None:
        # A task of its own: an auto update runs inside a pass, which a new pass waits for.
        assert self.recheck is not None
        try:
            await self.recheck([container])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the fresh check of %s failed; the next pass looks again", container)

    def _pending_quietly(self, container: str) -> PendingUpdate | None:
        try:
            return self.pending(container)
        except StoreError:
            log.exception("could not read the pending update of %s", container)
            return None

    def _record(self, action: str, outcome: str, container: str, actor: str, detail: str) -> None:
        try:
            self.store.record(action, outcome, container=container, actor=actor, detail=detail)
        except StoreError:
            log.exception("could not record %s %s of %s", action, outcome, container)

    def _settle(
        self,
        update_id: str,
        state: UpdateState,
        detail: str,
        *,
        expect: tuple[UpdateState, ...] = (),
    ) -> None:
        try:
            self.store.set_update_state(update_id, state, expect=expect or None, detail=detail)
        except StoreError:
            log.exception("could not mark update %s %s; trying again later", update_id, state)
            self._unsettled[update_id] = (state, detail)

    def settle_leftovers(self) -> None:
        """Write the settlements the store refused earlier (only over an `approved` state)."""
        for update_id, (state, detail) in list(self._unsettled.items()):
            try:
                self.store.set_update_state(update_id, state, expect=(UpdateState.APPROVED,),
                                            detail=detail)
            except StoreError:
                return  # still failing: kept for the next call
            del self._unsettled[update_id]

    async def _announce(self, result: UpdateResult, update_id: str | None, actor: str) -> None:
        try:
            await self.sink.send([result_alert(result, update_id=update_id, actor=actor)])
        except DockWardenError:
            log.exception("could not announce the update of %s", result.container)

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for running updates; True when none is left."""
        if not self._in_flight:
            return True
        _, pending = await asyncio.wait(set(self._in_flight), timeout=timeout)
        return not pending

    async def stop(self, timeout: float, unwind: float = 3.0) -> bool:
        """At shutdown: let running updates finish for `timeout` seconds, then cancel them.

        Every step of an update is journalled before it is taken, so a cancelled update
        stops at a point the next start can finish or undo; the store must stay open until
        this returns. True when every update finished by itself.
        """
        for recheck in list(self._rechecks):
            recheck.cancel()
        if await self.drain(timeout):
            return True
        for task in list(self._in_flight):
            task.cancel()
        await self.drain(unwind)
        return False

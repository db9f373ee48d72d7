"""The check pass: one pass function for the schedule, /check and the update window.

Passes never overlap: the pass holds an asyncio.Lock (and the scheduler's cron job,
bot/entrypoints/scheduling.py, is max_instances=1 with coalesce), so a slow pass makes the next
tick wait rather than pile up. `/check` joins a pass under way that covers what it asks for
instead of queueing another. Each pass also drops history older than
DOCKWARDEN_HISTORY_RETENTION.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from bot.domain.model import CheckStatus, Policy, UpdateState
from bot.domain.policy import AutoWindow
from bot.errors import CanaryWaiting, EngineError, HostNotAnswering, RateLimited
from bot.store.connection import utcnow
from bot.store.db import Store
from bot.store.meta import LastPass
from bot.store.safety import SafetyStore
from bot.store.updates import PendingUpdate
from bot.usecases.alerting import Alerter, PassSummary
from bot.usecases.delivery import Notifier
from bot.usecases.ports import CheckerPort
from bot.usecases.update_service import UpdateService

log = logging.getLogger(__name__)

AUTO_ACTOR = "policy:auto"
CANARY_ACTOR = "policy:canary"  # who applies an approved update once its canaries have soaked


@runtime_checkable
class PassListener(Protocol):
    """An adapter that says something after each full pass (the console's "all 5 up to date")."""

    async def pass_finished(self, summary: PassSummary) -> None:
        """Called once a full pass has sent its alerts."""


class PassRunner:
    """Runs one check pass at a time: check, dedup into alerts, send, apply auto updates."""

    def __init__(
        self,
        checker: CheckerPort,
        store: Store,
        sink: Notifier,
        updates: UpdateService,
        *,
        history_retention: timedelta | None = None,
        auto_window: AutoWindow | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.checker = checker
        self.store = store
        self.sink = sink
        self.updates = updates
        self.history_retention = history_retention
        # DOCKWARDEN_AUTO_WINDOW: `auto` updates found outside it wait for it (domain/policy.py).
        self.auto_window = auto_window
        self.clock = clock  # the time minimum ages and the window are judged by
        self.safety = SafetyStore(store)
        self.alerter = Alerter(store)
        self.passes = 0
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[object]] = set()
        # The pass holding the lock: the names it checks (None: all) and its outcome.
        self._current: tuple[frozenset[str] | None, asyncio.Future[PassSummary]] | None = None
        self._wakers: set[asyncio.Task[None]] = set()
        updates.wake_at = self.wake_at  # a canary soak's end applies what waited for it

    def wake_at(self, when: datetime) -> None:
        """Apply the updates waiting until `when` then (between passes)."""
        async def wake() -> None:
            await asyncio.sleep(max(0.0, (when - self.clock()).total_seconds()))
            try:
                await self.run_window()
            except Exception:
                log.exception("could not apply the updates that waited until %s", when)

        task = asyncio.get_running_loop().create_task(wake())
        self._wakers.add(task)
        task.add_done_callback(self._wakers.discard)

    @property
    def running(self) -> bool:
        """True while a pass is under way."""
        return self._lock.locked()

    async def run(self, names: Sequence[str] | None = None) -> PassSummary:
        """One pass (waits for a running one to finish first)."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            return await self._run(names)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def join_or_run(self, names: Sequence[str] | None = None) -> PassSummary:
        """The pass under way when it covers `names` (joined, not repeated); else a new one."""
        current = self._current
        if current is not None:
            covered, outcome = current
            if not outcome.done() and (covered is None or (names and covered >= set(names))):
                return await asyncio.shield(outcome)
        return await self.run(names)

    async def _run(self, names: Sequence[str] | None) -> PassSummary:
        async with self._lock:
            outcome: asyncio.Future[PassSummary] = asyncio.get_running_loop().create_future()
            # Nobody may join: the failure is still raised to the caller of run().
            outcome.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._current = (frozenset(names) if names else None, outcome)
            try:
                summary = await self._pass(names)
            except asyncio.CancelledError:
                outcome.cancel()
                raise
            except BaseException as exc:
                outcome.set_exception(exc)
                raise
            finally:
                self._current = None
            outcome.set_result(summary)
            return summary

    async def _pass(self, names: Sequence[str] | None) -> PassSummary:
        """The pass itself; _run holds the lock."""
        self.passes += 1
        left = await self.sink.flush()  # what earlier passes could not deliver
        if left:
            log.warning("%d alerts still undelivered", left)
        try:
            report = await self.checker.check(list(names) if names else None)
        except HostNotAnswering:
            raise  # one of several hosts: said by the passes that check them all
        except EngineError as exc:
            await self.sink.send(self.alerter.engine_unreachable(str(exc)))
            raise
        summary = self.alerter.observe(report, now=self.clock())
        self._remember(summary)
        await self.sink.send(summary.alerts)
        await self._run_waiting()
        for update in summary.auto:
            await self._auto(update)
        log.info(
            "pass %d: %d results, %d new alerts, %d auto updates",
            self.passes, len(report.results), len(summary.alerts), len(summary.auto),
        )
        if not names:
            await self._tell_listeners(summary)
        self._prune()
        return summary

    async def _tell_listeners(self, summary: PassSummary) -> None:
        for adapter in self.sink.adapters:
            if isinstance(adapter, PassListener):
                try:
                    await adapter.pass_finished(summary)
                except Exception:
                    log.exception("the %s adapter failed to report the pass", adapter.name)

    def _prune(self) -> None:
        """Drop history older than the retention (strangers' refusals among it)."""
        if self.history_retention is None:
            return
        removed = self.store.prune_history(utcnow() - self.history_retention)
        if removed:
            log.info("removed %d history entries older than %s", removed, self.history_retention)

    async def idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a pass under way; True when none is running."""
        try:
            await asyncio.wait_for(self._lock.acquire(), timeout)
        except TimeoutError:
            return False
        self._lock.release()
        return True

    def cancel(self) -> None:
        """Cancel passes under way or waiting (at shutdown)."""
        for task in [*self._tasks, *self._wakers]:
            task.cancel()

    async def run_scheduled(self) -> None:
        """The scheduler's job: a pass whose failure is logged, never raised into APScheduler."""
        try:
            await self.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("check pass failed; the next one runs on schedule")

    async def run_window(self) -> int:
        """At the update window: apply the `auto` updates waiting for it (between passes)."""
        async with self._lock:
            return await self._run_waiting()

    async def _run_waiting(self) -> int:
        """Apply the waiting updates that are due: `auto` ones when the window is open, those
        that waited for their canaries once the soak is over; the number started."""
        now = self.clock()
        due = [wait for wait in self.safety.waits() if wait.run_at <= now]
        if not due:
            return 0
        window = self.auto_window
        started = 0
        for wait in due:
            update = self.store.get_update(wait.update_id)
            if update is None or update.state is not UpdateState.PENDING:
                self.safety.drop_wait(wait.update_id)
                continue
            is_auto = update.policy is Policy.AUTO
            if is_auto and window is not None and not window.contains(now):
                # a window missed while stopped: the next one
                self.safety.wait(wait.update_id, wait.container, window.next_start(now))
                continue
            self.safety.drop_wait(wait.update_id)
            if is_auto:
                await self._auto(update)
            else:  # approved by someone, then held back for its canaries
                await self._apply(update, CANARY_ACTOR, "update")
            started += 1
        return started

    async def _auto(self, update: PendingUpdate) -> None:
        now = self.clock()
        if self.auto_window is not None and not self.auto_window.contains(now):
            run_at = self.auto_window.next_start(now)
            self.safety.wait(update.id, update.container, run_at)
            log.info("auto update %s of %s waits for the update window (%s)",
                     update.id, update.container, run_at.isoformat(timespec="minutes"))
            return
        await self._apply(update, AUTO_ACTOR, "auto")

    async def _apply(self, update: PendingUpdate, actor: str, action: str) -> None:
        if not self.store.approve_update(update.id, actor):
            return
        try:
            await self.updates.apply(update.container, update=update, actor=actor, action=action)
        except CanaryWaiting as exc:
            log.info("%s", exc)
        except Exception:
            log.exception("%s update of %s failed", action, update.container)

    def _remember(self, summary: PassSummary) -> None:
        limited = {
            r.error.registry: r.error.message
            for r in summary.report.results
            if r.status is CheckStatus.ERROR and r.error and r.error.kind == RateLimited.kind
        }
        report = summary.report
        per_host: dict[str, dict[CheckStatus, int]] = {
            host: dict.fromkeys(CheckStatus, 0) for host in report.hosts
        }
        if report.hosts:  # several hosts watched
            for result in report.results:
                per_host.setdefault(result.host, dict.fromkeys(CheckStatus, 0))
                per_host[result.host][result.status] += 1
        self.store.set_last_pass(LastPass(
            checked_at=report.checked_at,
            counts={CheckStatus(status): n for status, n in summary.counts().items()},
            rate_limited=limited,
            hosts=per_host,
            unreachable=dict(report.unreachable),
        ))

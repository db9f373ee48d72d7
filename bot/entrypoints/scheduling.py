"""The daemon's clock: APScheduler 3.x on our loop runs the pass runner on DOCKWARDEN_SCHEDULE.

Jobs: the cron schedule (with jitter, so many bots' passes spread over a minute), a first pass
soon after the start, and the update window's opening when DOCKWARDEN_AUTO_WINDOW is set. Every
job is max_instances=1 with coalesce, so a slow pass makes the next tick wait rather than pile
up. The next pass time is kept in the store, where /status reads it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bot.config.cron import parse_schedule, zone
from bot.usecases.passes import PassRunner

log = logging.getLogger(__name__)


class PassScheduler:
    """APScheduler 3.x on our loop: the cron schedule (with jitter) and a first pass soon."""

    def __init__(
        self,
        runner: PassRunner,
        schedule: str,
        *,
        first_pass_delay: float = 10.0,
        jitter: int = 60,
        tz: str = "UTC",
    ) -> None:
        self.runner = runner
        self.schedule = schedule
        self.tz = tz
        self.first_pass_delay = first_pass_delay
        self.jitter = jitter
        self._scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        """Start on the running loop (call from inside it)."""
        # APScheduler logs every job addition and run at INFO; our own pass line says enough.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        scheduler = AsyncIOScheduler(timezone=zone(self.tz))
        trigger = parse_schedule(self.schedule, self.tz)
        trigger.jitter = self.jitter or None  # spread many bots' passes over a minute
        job_options: dict[str, Any] = {
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": 300,
        }
        scheduler.add_job(self._job, trigger, id="pass", **job_options)
        window = self.runner.auto_window
        if window is not None:
            scheduler.add_job(self._window_job, window.trigger, id="auto-window", **job_options)
        if self.first_pass_delay >= 0:
            first = datetime.now(UTC) + timedelta(seconds=self.first_pass_delay)
            scheduler.add_job(self._job, DateTrigger(first), id="first-pass", **job_options)
        scheduler.start()
        self._scheduler = scheduler
        log.info("check schedule %r (%s); next pass at %s", self.schedule, self.tz,
                 self._remember_next())

    async def _window_job(self) -> None:
        try:
            await self.runner.run_window()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("auto updates at the window failed; they are tried again at the next")

    async def _job(self) -> None:
        await self.runner.run_scheduled()
        self._remember_next()

    def next_pass(self) -> datetime | None:
        """When the next scheduled pass starts (jitter included)."""
        if self._scheduler is None:
            return None
        times = [job.next_run_time for job in self._scheduler.get_jobs()
                 if job.next_run_time and job.id != "auto-window"]  # that job checks nothing
        return min(times) if times else None

    def _remember_next(self) -> datetime | None:
        """Keep the next pass time where /status can read it."""
        upcoming = self.next_pass()
        if upcoming is not None:
            self.runner.store.set_next_pass(upcoming)
        return upcoming

    def stop(self) -> None:
        """Stop scheduling; a pass under way is left to finish (or be cancelled) by the caller."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None

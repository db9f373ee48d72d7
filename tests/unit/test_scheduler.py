"""Passes: never overlapping, shared by the schedule and /check; APScheduler wiring."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.console import ConsoleAdapter
from bot.chat.messages import AlertKind
from bot.config.cron import cron_trigger, parse_schedule
from bot.config.settings import Settings
from bot.entrypoints.bootstrap import Core, build_core
from bot.entrypoints.scheduling import PassScheduler
from bot.errors import ConfigError, EngineUnavailable
from bot.store.db import Store
from tests.unit.fakes import (
    FakeAdapter,
    FakeChecker,
    FakeUpdater,
    cmd,
    current,
    outdated,
    report,
)


def make_core(store: Store, checker: FakeChecker, adapter: FakeAdapter | None = None) -> Core:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return build_core(
        settings, store, checker, FakeUpdater(), [adapter or FakeAdapter()], retry_delay=0
    )


async def test_concurrent_passes_never_overlap(store: Store) -> None:
    checker = FakeChecker(report(outdated("web")), delay=0.01)
    core = make_core(store, checker)
    await asyncio.gather(*(core.runner.run() for _ in range(5)))
    assert len(checker.calls) == 5
    assert checker.max_active == 1


async def test_check_command_joins_a_scheduled_pass_instead_of_overlapping(
    store: Store,
) -> None:
    checker = FakeChecker(report(outdated("web")), delay=0.01)
    adapter = FakeAdapter()
    core = make_core(store, checker, adapter)
    await asyncio.gather(
        core.runner.run_scheduled(), core.router.dispatch(cmd("check")), core.runner.run()
    )
    # /check joined the scheduled pass; the direct run() waited and ran its own.
    assert checker.max_active == 1 and len(checker.calls) == 2
    assert len(adapter.alerts) == 1  # the same digest was said once over the two passes


async def test_failed_scheduled_pass_is_logged_not_raised(store: Store) -> None:
    class Broken(FakeChecker):
        async def check(self, names: object = None) -> object:  # type: ignore[override]
            raise RuntimeError("engine went away")

    core = make_core(store, Broken())
    await core.runner.run_scheduled()
    assert core.runner.passes == 1 and not core.runner.running


async def test_first_pass_runs_shortly_after_start(store: Store) -> None:
    checker = FakeChecker(report(outdated("web")))
    adapter = FakeAdapter()
    core = make_core(store, checker, adapter)
    scheduler = PassScheduler(core.runner, "0 */6 * * *", first_pass_delay=0, jitter=0)
    scheduler.start()
    try:
        for _ in range(200):
            if adapter.alerts:
                break
            await asyncio.sleep(0.02)
    finally:
        scheduler.stop()
    assert len(checker.calls) == 1 and len(adapter.alerts) == 1


async def test_cron_job_is_single_instance_and_coalesced(store: Store) -> None:
    core = make_core(store, FakeChecker())
    scheduler = PassScheduler(core.runner, "*/5 * * * *", first_pass_delay=-1, jitter=30)
    scheduler.start()
    try:
        assert scheduler._scheduler is not None
        [job] = scheduler._scheduler.get_jobs()
        assert job.max_instances == 1 and job.coalesce
        assert job.trigger.jitter == 30
        assert store.get_meta("next_pass") == scheduler.next_pass().isoformat(  # type: ignore[union-attr]
            timespec="seconds"
        )
        assert "Next pass:" in (await core.router.dispatch(cmd("status"))).text
    finally:
        scheduler.stop()


async def test_idle_waits_for_a_pass_under_way(store: Store) -> None:
    checker = FakeChecker(report(), delay=0.05)
    core = make_core(store, checker)
    task = asyncio.create_task(core.runner.run())
    await asyncio.sleep(0)
    assert core.runner.running
    assert await core.runner.idle(5.0)
    await task


async def test_engine_going_away_is_said_once_and_its_return_once(store: Store) -> None:
    class Dying(FakeChecker):
        down = True

        async def check(self, names: object = None) -> object:  # type: ignore[override]
            if self.down:
                raise EngineUnavailable(
                    "no Docker engine answers at unix:///var/run/docker.sock: Connection refused; "
                    "start Docker or set DOCKER_HOST"
                )
            return await super().check()

    checker = Dying(report(outdated("web")))
    adapter = FakeAdapter()
    core = make_core(store, checker, adapter)
    await core.runner.run_scheduled()
    await core.runner.run_scheduled()
    (down,) = adapter.alerts
    assert down.kind is AlertKind.ENGINE_UNREACHABLE
    assert "Connection refused" in down.text and "start Docker" in down.text
    checker.down = False
    await core.runner.run_scheduled()
    await core.runner.run_scheduled()
    kinds = [a.kind for a in adapter.alerts]
    assert kinds == [AlertKind.ENGINE_UNREACHABLE, AlertKind.RECOVERED,
                     AlertKind.UPDATE_AVAILABLE]
    assert "engine" in adapter.alerts[1].title.lower()


MONDAY = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # a Monday, in winter (Berlin is UTC+1)
CRONTAB_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def weekdays_fired(expression: str) -> set[int]:
    """The crontab weekdays (0 = Sunday) on which a daily-at-midnight schedule fires."""
    trigger = cron_trigger(expression, UTC)
    fired, moment = set(), MONDAY
    for _ in range(7):
        moment = trigger.get_next_fire_time(None, moment)
        assert moment is not None
        fired.add((moment.weekday() + 1) % 7)
        moment += timedelta(minutes=1)
    return fired


def test_weekday_zero_and_seven_are_sunday_as_in_crontab() -> None:
    assert weekdays_fired("0 0 * * 0") == {0}
    assert weekdays_fired("0 0 * * 7") == {0}
    assert weekdays_fired("@weekly") == {0}
    assert weekdays_fired("0 0 * * 1-5") == {1, 2, 3, 4, 5}
    assert weekdays_fired("0 0 * * 5-7") == {5, 6, 0}
    assert weekdays_fired("0 0 * * */2") == {0, 2, 4, 6}


@hypothesis.settings(deadline=None, max_examples=60)  # a loaded machine must not fail it on time
@given(days=st.sets(st.integers(0, 6), min_size=1), names=st.booleans(), data=st.data())
def test_any_weekday_list_fires_on_exactly_those_days(
    days: set[int], names: bool, data: st.DataObject
) -> None:
    words = [
        CRONTAB_NAMES[d] if names else str(7 if d == 0 and data.draw(st.booleans()) else d)
        for d in sorted(days)
    ]
    assert weekdays_fired("0 0 * * " + ",".join(words)) == days


def test_hourly_and_daily_macros() -> None:
    hourly = cron_trigger("@hourly", UTC).get_next_fire_time(None, MONDAY)
    daily = cron_trigger("@daily", UTC).get_next_fire_time(None, MONDAY)
    assert hourly == MONDAY.replace(hour=12) and daily == MONDAY.replace(day=1, month=12, hour=0)


def test_schedule_runs_in_the_configured_time_zone() -> None:
    berlin = parse_schedule("0 3 * * *", "Europe/Berlin").get_next_fire_time(None, MONDAY)
    assert berlin is not None
    assert berlin.astimezone(UTC) == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    utc = parse_schedule("0 3 * * *").get_next_fire_time(None, MONDAY)
    assert utc is not None and utc.astimezone(UTC) == datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    with pytest.raises(ConfigError, match="DOCKWARDEN_SCHEDULE"):
        parse_schedule("0 3 * * 9")


async def test_scheduler_computes_the_next_pass_in_its_time_zone(store: Store) -> None:
    core = make_core(store, FakeChecker())
    scheduler = PassScheduler(
        core.runner, "0 3 * * *", first_pass_delay=-1, jitter=0, tz="America/New_York"
    )
    scheduler.start()
    try:
        upcoming = scheduler.next_pass()
        assert upcoming is not None
        assert upcoming.astimezone(UTC).hour in (7, 8)  # 03:00 in New York, EST or EDT
    finally:
        scheduler.stop()


async def test_console_says_all_up_to_date_after_a_full_pass(store: Store) -> None:
    out = io.StringIO()
    console = ConsoleAdapter(out=out, interactive=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    checker = FakeChecker(
        report(current("web"), current("db")), report(current("web"), outdated("db"))
    )
    core = build_core(settings, store, checker, FakeUpdater(), [console], retry_delay=0)
    await core.runner.run()
    assert out.getvalue().splitlines()[-1] == "check pass: all 2 up to date"
    await core.runner.run()
    assert out.getvalue().splitlines()[-1] == (
        "check pass: 2 checked: 1 up to date, 1 update available"
    )

"""Minimum age and the `auto` update window, judged by a clock the tests control."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.chat.messages import AlertKind
from bot.check.checker import decide, plan_workload
from bot.config.settings import Settings, load_settings
from bot.domain.model import CheckResult, Workload
from bot.domain.policy import AutoWindow, min_age_of
from bot.entrypoints.bootstrap import Core, build_core
from bot.errors import ConfigError
from bot.store.db import Store
from bot.usecases.alerting import Alerter
from tests.unit.fakes import (
    NEW,
    OLD,
    FakeAdapter,
    FakeChecker,
    FakeUpdater,
    cmd,
    outdated,
    report,
)

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


class Clock:
    """The time as the test says it is."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


def aged(result: CheckResult, min_age: timedelta | None) -> CheckResult:
    return dataclasses.replace(result, min_age=min_age)


# -- minimum age ---------------------------------------------------------------------------------


def test_digest_younger_than_the_minimum_age_is_not_proposed_until_it_is_old_enough(
    store: Store,
) -> None:
    alerter = Alerter(store)
    found = report(aged(outdated("web"), timedelta(days=3)))

    first = alerter.observe(found, now=T0)
    later = alerter.observe(found, now=T0 + timedelta(days=2, hours=23))

    assert first.alerts == () and later.alerts == ()
    assert store.latest_update("web") is None  # nothing pending, nothing to approve
    ready = alerter.observe(found, now=T0 + timedelta(days=3))
    [alert] = ready.alerts
    assert alert.kind is AlertKind.UPDATE_AVAILABLE and alert.extra["digest"] == NEW


def test_auto_applies_a_digest_only_once_it_reached_the_minimum_age(store: Store) -> None:
    alerter = Alerter(store)
    found = report(aged(outdated("web", policy="auto"), timedelta(hours=12)))

    assert alerter.observe(found, now=T0).auto == ()
    [update] = alerter.observe(found, now=T0 + timedelta(hours=12)).auto
    assert update.remote_digest == NEW


def test_a_newer_digest_starts_its_own_minimum_age(store: Store) -> None:
    alerter = Alerter(store)
    alerter.observe(report(aged(outdated("web"), timedelta(days=1))), now=T0)
    newer = report(aged(outdated("web", remote="sha256:" + "d" * 64), timedelta(days=1)))

    assert alerter.observe(newer, now=T0 + timedelta(days=1)).alerts == ()
    assert len(alerter.observe(newer, now=T0 + timedelta(days=2)).alerts) == 1


def test_without_a_minimum_age_a_digest_is_proposed_at_once(store: Store) -> None:
    assert len(Alerter(store).observe(report(outdated("web")), now=T0).alerts) == 1


def _workload(labels: dict[str, str]) -> Workload:
    return Workload(name="web", id="c1", image="127.0.0.1:5000/web:1",
                    image_id="sha256:" + "e" * 64,
                    repo_digests=(f"127.0.0.1:5000/web@{OLD}",), labels=labels)


@pytest.mark.parametrize(
    ("labels", "default", "expected"),
    [
        ({}, None, None),
        ({}, timedelta(days=3), timedelta(days=3)),
        ({"dockwarden.min_age": "12h"}, timedelta(days=3), timedelta(hours=12)),
        ({"dockwarden.min_age": "0"}, timedelta(days=3), None),
        ({"dockwarden.min_age": "soon"}, timedelta(days=3), timedelta(days=3)),
    ],
)
def test_the_min_age_label_wins_over_the_setting(
    labels: dict[str, str], default: timedelta | None, expected: timedelta | None
) -> None:
    assert min_age_of(labels, default) == expected
    plan = plan_workload(_workload(labels), label_enable=False, default_policy="approve",
                         min_age=default)
    assert decide(plan, NEW).min_age == expected


def test_a_bad_min_age_setting_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="DOCKWARDEN_MIN_AGE"):
        load_settings(_env_file=None, DOCKWARDEN_MIN_AGE="three days")
    with pytest.raises(ConfigError, match="DOCKWARDEN_AUTO_WINDOW"):
        load_settings(_env_file=None, DOCKWARDEN_AUTO_WINDOW="at night")


# -- the update window ----------------------------------------------------------------------------


def test_window_contains_the_minutes_its_expression_matches() -> None:
    window = AutoWindow("* 2-4 * * *", UTC)
    assert window.contains(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    assert window.contains(datetime(2026, 12, 1, 4, 59, 59, tzinfo=UTC))
    assert not window.contains(datetime(2026, 12, 1, 5, 0, tzinfo=UTC))
    assert window.next_start(T0) == datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


def test_window_is_read_in_the_time_zone_given() -> None:
    window = AutoWindow("0 3 * * *", ZoneInfo("Europe/Berlin"))
    assert window.next_start(T0) == datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # 03:00 CET


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_the_next_window_start_is_never_before_now_and_always_inside(moment: datetime) -> None:
    now = moment.replace(tzinfo=UTC)
    window = AutoWindow("*/15 1,13 * * mon-fri", UTC)
    start = window.next_start(now)
    assert start >= now.replace(second=0, microsecond=0) and window.contains(start)


def _auto_core(store: Store, clock: Clock, updater: FakeUpdater) -> tuple[Core, FakeAdapter]:
    settings = Settings(_env_file=None, auto_window="0 3 * * *")  # type: ignore[call-arg]
    adapter = FakeAdapter()
    checker = FakeChecker(report(outdated("web", policy="auto")))
    core = build_core(settings, store, checker, updater, [adapter], retry_delay=0)
    core.runner.clock = clock
    return core, adapter


async def test_auto_update_found_outside_its_window_waits_and_runs_at_the_window(
    store: Store,
) -> None:
    clock = Clock(T0)
    updater = FakeUpdater(store=store)
    core, adapter = _auto_core(store, clock, updater)

    await core.runner.run()
    clock.now = T0 + timedelta(hours=6)
    await core.runner.run()  # a later pass, still outside: it keeps waiting
    assert updater.calls == []
    listed = await core.router.dispatch(cmd("updates"))
    assert "waits for the update window: runs at 2026-12-02 03:00 UTC" in listed.text
    clock.now = datetime(2026, 12, 2, 2, 59, tzinfo=UTC)
    assert await core.runner.run_window() == 0  # a minute early: nothing

    clock.now = datetime(2026, 12, 2, 3, 0, 1, tzinfo=UTC)
    assert await core.runner.run_window() == 1

    assert updater.calls == [("web", NEW, "policy:auto")]
    update = store.latest_update("web")
    assert update is not None and update.state == "applied"
    assert [a.kind for a in adapter.alerts] == [AlertKind.UPDATE_SUCCEEDED]
    assert "waits" not in (await core.router.dispatch(cmd("updates"))).text
    clock.now = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
    assert await core.runner.run_window() == 0  # applied once, not again


async def test_auto_update_found_inside_its_window_runs_at_once(store: Store) -> None:
    updater = FakeUpdater(store=store)
    core, _ = _auto_core(store, Clock(datetime(2026, 12, 1, 3, 0, tzinfo=UTC)), updater)
    await core.runner.run()
    assert updater.calls == [("web", NEW, "policy:auto")]


async def test_a_window_missed_while_stopped_moves_to_the_next_one(store: Store) -> None:
    clock = Clock(T0)
    updater = FakeUpdater(store=store)
    core, _ = _auto_core(store, clock, updater)
    await core.runner.run()
    clock.now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # the 03:00 window passed unseen

    await core.runner.run()

    assert updater.calls == []
    listed = await core.router.dispatch(cmd("updates"))
    assert "runs at 2026-12-03 03:00 UTC" in listed.text
    clock.now = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
    await core.runner.run()  # a pass inside the window applies what waits
    assert updater.calls == [("web", NEW, "policy:auto")]


async def test_the_scheduler_opens_the_window_on_its_own_job_apart_from_the_passes(
    store: Store,
) -> None:
    from bot.entrypoints.scheduling import PassScheduler

    core, _ = _auto_core(store, Clock(T0), FakeUpdater(store=store))
    scheduler = PassScheduler(core.runner, "0 0 1 1 *", first_pass_delay=-1, jitter=0)
    scheduler.start()
    try:
        assert scheduler._scheduler is not None
        jobs = {job.id: job for job in scheduler._scheduler.get_jobs()}
        assert set(jobs) == {"pass", "auto-window"}
        # The window (daily 03:00) comes before the yearly pass; /status names the pass.
        assert jobs["auto-window"].next_run_time < jobs["pass"].next_run_time
        assert scheduler.next_pass() == jobs["pass"].next_run_time
    finally:
        scheduler.stop()

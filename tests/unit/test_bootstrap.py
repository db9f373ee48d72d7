"""The daemon's parts as bootstrap builds them from the settings (the daemon only starts them)."""

from __future__ import annotations

from typing import Any

from bot.config.settings import Settings
from bot.entrypoints.bootstrap import (
    build_core,
    build_metrics,
    build_scheduler,
    build_self_update_report,
)
from bot.store.db import Store
from tests.unit.fakes import FakeChecker, FakeUpdater


def _settings(**env: Any) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[call-arg]


def test_metrics_are_kept_only_when_an_http_address_is_set() -> None:
    assert build_metrics(_settings()) is None
    assert build_metrics(_settings(DOCKWARDEN_HTTP_LISTEN="127.0.0.1:9090")) is not None


def test_the_scheduler_runs_the_pass_runner_on_the_schedule_in_the_time_zone(
    store: Store,
) -> None:
    settings = _settings(DOCKWARDEN_SCHEDULE="0 3 * * *", DOCKWARDEN_TZ="Europe/Berlin")
    core = build_core(settings, store, FakeChecker(), FakeUpdater())
    scheduler = build_scheduler(settings, core.runner, first_pass_delay=-1, jitter=0)
    assert scheduler.runner is core.runner
    assert (scheduler.schedule, scheduler.tz) == ("0 3 * * *", "Europe/Berlin")
    assert (scheduler.first_pass_delay, scheduler.jitter) == (-1, 0)


def test_a_self_update_is_awaited_for_the_helpers_whole_health_gate_and_then_some(
    store: Store,
) -> None:
    settings = _settings(DOCKWARDEN_HEALTH_TIMEOUT="30", DOCKWARDEN_GRACE_PERIOD="10")
    core = build_core(settings, store, FakeChecker(), FakeUpdater())
    report = build_self_update_report(settings, store, core.notifier)
    assert report.wait == 30 + 10 + 120

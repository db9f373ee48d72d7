"""Passes: never overlapping, shared by the schedule and /check; APScheduler wiring."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import Core, build_core
from bot.chat import AlertKind
from bot.config import Settings
from bot.errors import EngineUnavailable
from bot.scheduler import PassScheduler
from bot.store import Store
from tests.unit.fakes import FakeAdapter, FakeChecker, FakeUpdater, cmd, outdated, report


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


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


async def test_check_command_waits_for_a_scheduled_pass_instead_of_overlapping(
    store: Store,
) -> None:
    checker = FakeChecker(report(outdated("web")), delay=0.01)
    adapter = FakeAdapter()
    core = make_core(store, checker, adapter)
    await asyncio.gather(
        core.runner.run_scheduled(), core.router.dispatch(cmd("check")), core.runner.run()
    )
    assert checker.max_active == 1 and len(checker.calls) == 3
    assert len(adapter.alerts) == 1  # the same digest was said once over the three passes


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

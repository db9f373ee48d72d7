"""Stopped containers (DOCKWARDEN_INCLUDE_STOPPED): listed, updated and undone stopped."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.chat.alert_texts import result_alert
from bot.chat.messages import AlertKind
from bot.check.checker import Checker, decide, plan_workload
from bot.config.settings import Settings, load_settings
from bot.domain.model import Policy, UpdateOutcome, Workload
from bot.domain.reference import ImageRef
from bot.engines.inspect import parse_container
from bot.engines.workloads import _Listing, is_watchable
from bot.entrypoints.bootstrap import build_core
from bot.store.db import Store
from bot.store.journal import JournalEntry
from bot.update.rollback import RollbackOutcome, Rollbacks
from bot.update.updater import Updater
from tests.unit.fake_engine import FakeContainer, FakeEngine
from tests.unit.fakes import FakeAdapter, FakeChecker, FakeUpdater, cmd, outdated, report

REPO = "registry.test/shop/web"
OLD_DIGEST = "sha256:" + "1" * 64
NEW_DIGEST = "sha256:" + "2" * 64


class Registry:
    """Every repository's current digest is NEW_DIGEST."""

    async def remote_digest(self, ref: ImageRef) -> str:
        return NEW_DIGEST

    async def remote_digests(self, refs: Sequence[ImageRef]) -> dict[ImageRef, str]:
        return {ref: NEW_DIGEST for ref in refs}


@pytest.fixture
def engine() -> FakeEngine:
    fake = FakeEngine()
    fake.add_image(f"{REPO}:1", digest=OLD_DIGEST)
    fake.publish(REPO, NEW_DIGEST)
    return fake


def stopped(engine: FakeEngine, name: str = "web", **config: object) -> FakeContainer:
    container = engine.run(name, f"{REPO}:1", **config)
    container.running, container.exit_code = False, 0
    return container


def updater(engine: FakeEngine, store: Store, *, include_stopped: bool = True) -> Updater:
    return Updater(engine, Registry(), store, health_timeout=5,  # type: ignore[arg-type]
                   grace_period=0, include_stopped=include_stopped,
                   rollback_keep=timedelta(days=1))


def test_include_stopped_is_off_unless_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.startswith(("DOCKWARDEN_", "TELEGRAM_", "DISCORD_", "DOCKER_HOST")):
            monkeypatch.delenv(name, raising=False)
    assert load_settings().include_stopped is False
    monkeypatch.setenv("DOCKWARDEN_INCLUDE_STOPPED", "true")
    assert load_settings().include_stopped is True


async def test_checker_asks_the_engine_for_stopped_containers_only_when_told() -> None:
    asked: list[bool] = []

    class Engine:
        def list_workloads(self, *, stopped: bool = False) -> list[Workload]:
            asked.append(stopped)
            return []

    for include in (False, True):
        checker = Checker(Engine(), Registry(), label_enable=False,  # type: ignore[arg-type]
                          default_policy="approve", include_stopped=include)
        await checker.check()
    assert asked == [False, True]


async def test_a_stopped_container_is_refused_without_the_setting(
    engine: FakeEngine, store: Store
) -> None:
    web = stopped(engine)
    result = await updater(engine, store, include_stopped=False).update("web")
    assert result.outcome is UpdateOutcome.FAILED
    assert "is not running" in result.message
    assert engine.named("web") is web


async def test_a_stopped_container_is_recreated_stopped_on_the_new_digest(
    engine: FakeEngine, store: Store
) -> None:
    old = stopped(engine, Env=["KEEP=1"])
    result = await updater(engine, store).update("web")
    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert "left stopped, as the old container was" in result.message
    new = engine.named("web")
    assert new is not None and new.id != old.id and not new.running
    assert new.image_id != old.image_id and "KEEP=1" in new.config["Env"]
    assert not any(method in ("start", "restart") for method, _ in engine.calls)
    assert old.id not in engine.containers
    assert store.journal_open() == []


async def test_a_failed_create_of_a_stopped_container_brings_it_back_stopped(
    engine: FakeEngine, store: Store
) -> None:
    old = stopped(engine)
    engine.refuse("create", "no space left on device")
    result = await updater(engine, store).update("web")
    assert result.outcome is UpdateOutcome.ROLLED_BACK, result.message
    assert engine.named("web") is old and not old.running
    assert not any(method == "start" for method, _ in engine.calls)


async def test_an_interrupted_update_of_a_stopped_container_settles_stopped(
    engine: FakeEngine, store: Store
) -> None:
    old = stopped(engine)
    view = parse_container(old.inspect())
    up = updater(engine, store)
    new_id = await engine.create("web-next", {"Image": f"{REPO}:1"})
    await engine.rename(old.id, "web-aside")
    await engine.rename(new_id, "web")
    data = {"name": "web", "old_id": view.id, "aside": "web-aside", "new_id": new_id,
            "stopped": True}
    entry = JournalEntry(id=1, container="web", step="remove_old", data=data, started_at="",
                         finished=False, outcome=None)
    outcome, said = await up.replacer.settle(entry)
    assert outcome == "updated", said
    assert old.id not in engine.containers and not engine.containers[new_id].running


async def test_a_stopped_container_is_rolled_back_stopped_onto_its_previous_image(
    engine: FakeEngine, store: Store
) -> None:
    old = stopped(engine)
    up = updater(engine, store)
    assert (await up.update("web")).outcome is UpdateOutcome.UPDATED
    result = await Rollbacks(up).rollback("web", actor="alice")
    assert result.outcome is RollbackOutcome.ROLLED_BACK, result.message
    back = engine.named("web")
    assert back is not None and back.image_id == old.image_id and not back.running
    assert not any(method in ("start", "restart") for method, _ in engine.calls)


def test_an_exited_swarm_task_is_not_listed_with_the_stopped_containers() -> None:
    task = {"com.docker.swarm.service.id": "svc1"}
    assert not is_watchable({"State": "exited", "Labels": task})
    assert is_watchable({"State": "running", "Labels": task})
    assert is_watchable({"State": "exited", "Labels": {"team": "a"}})
    assert is_watchable({"State": "created"})


def test_a_stopped_container_is_listed_as_stopped() -> None:
    class Api:
        def images(self) -> list[dict[str, object]]:
            return [{"Id": "sha256:" + "a" * 64, "RepoDigests": [f"{REPO}@{OLD_DIGEST}"]}]

    class Docker:
        api = Api()

    class Engine:
        docker = Docker()

        def store(self) -> str:
            return "classic"

        def calls(self, what: str) -> contextlib.nullcontext[None]:
            return contextlib.nullcontext()

    listing = _Listing(Engine())  # type: ignore[arg-type]
    entry = {"Id": "1" * 64, "Names": ["/web"], "Image": f"{REPO}:1",
             "ImageID": "sha256:" + "a" * 64, "Labels": {}}
    for state, stopped in (("exited", True), ("created", True), ("running", False)):
        workload = listing.workload({**entry, "State": state})
        assert workload is not None and workload.stopped is stopped
    plan = plan_workload(replace(workload, stopped=True), label_enable=False,
                         default_policy=Policy.APPROVE)
    assert decide(plan, NEW_DIGEST).stopped


async def test_update_alert_and_status_say_a_stopped_container_is_stopped(store: Store) -> None:
    settings = Settings(_env_file=None, telegram_admin_ids=(1,))  # type: ignore[call-arg]
    adapter = FakeAdapter()
    found = (replace(outdated("web"), stopped=True), outdated("api"))
    core = build_core(settings, store, FakeChecker(report(*found)), FakeUpdater(store=store),
                      [adapter], retry_delay=0)
    await core.runner.run()

    titles = sorted(a.title for a in adapter.alerts if a.kind is AlertKind.UPDATE_AVAILABLE)
    assert titles == ["Update available: api", "Update available: web (stopped)"]
    status = (await core.router.dispatch(cmd("status"))).text
    assert " web (stopped) " in status and " api (stopped)" not in status
    assert store.latest_update("web").stopped  # type: ignore[union-attr]


async def test_the_result_alert_of_a_stopped_container_says_it_is_stopped(
    engine: FakeEngine, store: Store
) -> None:
    stopped(engine)
    engine.run("api", f"{REPO}:1")
    up = updater(engine, store)
    done, running = await up.update("web"), await up.update("api")
    assert done.stopped and not running.stopped
    alert = result_alert(done, update_id=None, actor=None)
    assert alert.title == "Updated: web (stopped)"
    assert {f.name: f.value for f in alert.fields}["State"] == "stopped"
    assert result_alert(running, update_id=None, actor=None).title == "Updated: api"


async def test_a_linked_container_is_left_alone_when_the_updated_one_is_stopped(
    engine: FakeEngine, store: Store
) -> None:
    # The engine creates a container linked to a stopped one but refuses to start it, so a
    # recreated linker would only be stopped, fail and be rolled back.
    stopped(engine)
    app = engine.run("app", f"{REPO}:1")
    app.host_config.update(NetworkMode="default", Links=["/web:/app/backend"])
    result = await updater(engine, store).update("web")
    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert "left app, linked to it, as it is" in result.message
    assert "recreate app once web runs" in result.message
    assert engine.named("app") is app and app.running
    assert not any(target in (app.id, "app") and not method.startswith(("inspect", "list"))
                   for method, target in engine.calls)
    assert store.journal_open() == []


async def test_a_linked_container_is_recreated_linked_when_the_updated_one_runs(
    engine: FakeEngine, store: Store
) -> None:
    engine.run("web", f"{REPO}:1")
    app = engine.run("app", f"{REPO}:1")
    app.host_config.update(NetworkMode="default", Links=["/web:/app/backend"])
    result = await updater(engine, store).update("web")
    assert "recreated app, linked to it" in result.message, result.message
    new_app = engine.named("app")
    assert new_app is not None and new_app.id != app.id and new_app.running
    assert new_app.host_config["Links"] == ["/web:/app/backend"]

"""Stopped containers (DOCKWARDEN_INCLUDE_STOPPED): listed, updated and undone stopped."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from bot.check.checker import Checker
from bot.config.settings import load_settings
from bot.domain.model import UpdateOutcome, Workload
from bot.domain.reference import ImageRef
from bot.engines.inspect import parse_container
from bot.engines.workloads import is_watchable
from bot.store.db import Store
from bot.store.journal import JournalEntry
from bot.update.rollback import RollbackOutcome, Rollbacks
from bot.update.updater import Updater
from tests.unit.fake_engine import FakeContainer, FakeEngine

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

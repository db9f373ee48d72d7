"""Canary hosts on in-memory engines: an approved digest goes to the canaries first, the other
hosts follow after the soak, and a canary that fails stops the rollout (no Docker)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.chat.messages import AlertKind
from bot.config.settings import load_settings
from bot.domain.model import CheckResult, UpdateState
from bot.domain.reference import ImageRef
from bot.domain.targets import HostScope
from bot.entrypoints.bootstrap import Core, build_core
from bot.store.db import Store
from bot.store.safety import SafetyStore
from bot.update.hosts import HostUpdaters
from bot.update.updater import Updater
from tests.unit.fake_engine import FakeEngine
from tests.unit.fakes import ADMIN, FakeAdapter, FakeChecker, cmd, outdated, report

REPO = "registry.test/shop/web"
IMAGE = f"{REPO}:1"
OLD = "sha256:" + "1" * 64
NEW = "sha256:" + "2" * 64
SOAK = timedelta(hours=1)


class Registry:
    async def remote_digest(self, ref: ImageRef) -> str:
        return NEW


class Clock:
    """The time the canary gate and the pass runner judge by; moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _engine() -> FakeEngine:
    engine = FakeEngine()
    engine.add_image(IMAGE, digest=OLD)
    engine.publish(REPO, NEW)
    engine.run("web", IMAGE)
    return engine


def _found(key: str, host: str) -> CheckResult:
    return dataclasses.replace(outdated(key, image=IMAGE, local=OLD, remote=NEW), host=host)


class Rig:
    def __init__(self, store: Store, **engines: FakeEngine) -> None:
        self.store, self.engines, self.clock = store, engines, Clock()
        self.updaters = HostUpdaters({
            host: Updater(engine, Registry(), store, health_timeout=5, grace_period=0,  # type: ignore[arg-type]
                          scope=HostScope(host, several=True))
            for host, engine in engines.items()
        })
        settings = load_settings(
            _env_file=None,
            DOCKWARDEN_HOSTS=",".join(f"{h}=unix:///{h}.sock" for h in engines),
            DOCKWARDEN_CANARY_HOSTS="a", DOCKWARDEN_CANARY_SOAK="1h", TELEGRAM_ADMIN_IDS="1",
        )
        checker = FakeChecker(report(*(_found(f"{h}/web", h) for h in engines)))
        self.adapter = FakeAdapter()
        self.core: Core = build_core(settings, store, checker, self.updaters, [self.adapter],
                                     resolve=self.updaters.resolve,
                                     canary_health=self.updaters)
        assert self.core.updates.canary is not None
        self.core.updates.canary.clock = self.clock
        self.core.runner.clock = self.clock
        self.core.updates.wake_at = None  # the test moves the clock and wakes the runner

    def update(self, key: str):  # type: ignore[no-untyped-def]
        found = self.store.latest_update(key)
        assert found is not None
        return found

    def web(self, host: str):  # type: ignore[no-untyped-def]
        return self.engines[host].named("web")


@pytest.fixture
def rig(store: Store) -> Iterator[Rig]:
    yield Rig(store, a=_engine(), b=_engine())


async def test_an_approval_goes_to_the_canary_first_and_to_the_others_after_the_soak(
    rig: Rig
) -> None:
    await rig.core.runner.run()
    before_b = rig.web("b")

    reply = await rig.core.router.dispatch(cmd("approve", "b/web"))

    assert "b/web waits for canary a/web to stay healthy" in reply.text
    assert rig.update("a/web").state is UpdateState.APPLIED
    assert rig.web("a").image_id != rig.engines["b"].named("web").image_id  # type: ignore[union-attr]
    assert rig.web("b") is before_b and rig.update("b/web").state is UpdateState.PENDING
    waiting = SafetyStore(rig.store).waiting(rig.update("b/web").id)
    assert waiting is not None and waiting - rig.clock.now >= SOAK - timedelta(seconds=5)

    rig.clock.now += SOAK / 2
    assert await rig.core.runner.run_window() == 0  # still soaking
    assert rig.web("b") is before_b
    rig.clock.now += SOAK
    assert await rig.core.runner.run_window() == 1

    assert rig.update("b/web").state is UpdateState.APPLIED
    assert rig.web("b") is not before_b
    actors = [e.actor for e in rig.store.history("b/web") if e.action == "update"]
    assert "policy:canary" in actors


async def test_a_canary_that_fails_stops_the_rollout_and_says_so(rig: Rig) -> None:
    await rig.core.runner.run()
    before_b = rig.web("b")
    rig.engines["a"].refuse("start", "exec format error", times=1)

    reply = await rig.core.router.dispatch(cmd("approve", "b/web"))

    assert "the rollout to b/web stopped: the update of canary a/web failed" in reply.text
    assert rig.web("b") is before_b and rig.update("b/web").state is UpdateState.FAILED
    said = [a for a in rig.adapter.alerts if a.kind is AlertKind.UPDATE_FAILED]
    assert any("rollout to b/web stopped" in a.text for a in said)
    assert not any(call[0] == "pull" for call in rig.engines["b"].calls)


async def test_a_canary_that_stops_during_the_soak_stops_the_rollout(rig: Rig) -> None:
    await rig.core.runner.run()
    before_b = rig.web("b")
    await rig.core.router.dispatch(cmd("approve", "b/web"))
    canary = rig.web("a")
    assert canary is not None
    canary.running = False

    rig.clock.now += SOAK * 2
    await rig.core.runner.run_window()

    assert rig.web("b") is before_b and rig.update("b/web").state is UpdateState.FAILED
    assert "canary a/web is not running" in rig.update("b/web").detail


async def test_a_digest_rolled_back_on_a_canary_goes_no_further(rig: Rig) -> None:
    await rig.core.runner.run()
    SafetyStore(rig.store).block("a/web", NEW)

    reply = await rig.core.router.dispatch(cmd("approve", "b/web", sender=ADMIN))

    assert "canary a/web was rolled back from" in reply.text
    assert rig.update("b/web").state is UpdateState.FAILED


async def test_canaries_themselves_and_images_no_canary_runs_are_updated_at_once(
    store: Store
) -> None:
    rig = Rig(store, a=FakeEngine(), b=_engine())
    rig.engines["a"].add_image("registry.test/other:1", digest=OLD)
    await rig.core.runner.run()
    # Host a runs nothing of this image: b/web is not held back.
    rig.store.set_seen_digest("a/web", "registry.test/other:1", OLD)

    reply = await rig.core.router.dispatch(cmd("approve", "b/web"))

    assert "waits" not in reply.text
    assert rig.update("b/web").state is UpdateState.APPLIED

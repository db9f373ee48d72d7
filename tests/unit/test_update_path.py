"""The update and the rollback on the in-memory engine: one path, their own words (no Docker)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.model import Basis, UpdateOutcome
from bot.domain.reference import ImageRef
from bot.store.db import Store
from bot.update.rollback import RollbackOutcome, Rollbacks
from bot.update.updater import Updater
from tests.unit.fake_engine import FakeContainer, FakeEngine

REPO = "registry.test/shop/web"
OLD_DIGEST = "sha256:" + "1" * 64
NEW_DIGEST = "sha256:" + "2" * 64


class Registry:
    """The registry's current digest of every repository: NEW_DIGEST."""

    async def remote_digest(self, ref: ImageRef) -> str:
        return NEW_DIGEST


@pytest.fixture
def engine() -> FakeEngine:
    fake = FakeEngine()
    fake.add_image(f"{REPO}:1", digest=OLD_DIGEST)
    fake.publish(REPO, NEW_DIGEST)
    return fake


def updater(engine: FakeEngine, store: Store) -> Updater:
    return Updater(engine, Registry(), store, health_timeout=5, grace_period=0,  # type: ignore[arg-type]
                   rollback_keep=timedelta(days=1))


async def test_an_update_recreates_the_container_on_exactly_the_approved_digest(
    engine: FakeEngine, store: Store
) -> None:
    web = engine.run("web", f"{REPO}:1", Env=["A=1"])
    result = await updater(engine, store).update(
        "web", expected_digest=NEW_DIGEST, made_for=Basis(f"{REPO}:1", OLD_DIGEST)
    )
    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert (result.old_digest, result.new_digest) == (OLD_DIGEST, NEW_DIGEST)
    assert result.message.startswith(f"web now runs {REPO}:1 at sha256:222222222222; ")
    assert ("pull", f"{REPO}@{NEW_DIGEST}") in engine.calls
    new = engine.named("web")
    assert new is not None and new.id != web.id and new.running
    assert new.image_id != web.image_id and new.config["Env"] == ["A=1"]
    assert store.journal_open() == []


async def test_a_container_already_on_the_digest_is_left_as_it_is(
    engine: FakeEngine, store: Store
) -> None:
    engine.add_image(f"{REPO}:2", digest=NEW_DIGEST)
    web = engine.run("web", f"{REPO}:2")
    result = await updater(engine, store).update("web")
    assert result.outcome is UpdateOutcome.UP_TO_DATE
    assert result.message == f"web already runs {REPO}:2 at sha256:222222222222; nothing was " \
        "changed"
    assert engine.named("web") is web and not any(c[0] == "pull" for c in engine.calls)


async def test_a_refused_tag_changes_nothing_and_says_which_tag(
    engine: FakeEngine, store: Store
) -> None:
    web = engine.run("web", f"{REPO}:1")
    engine.refuse("tag", "no space left on device")
    result = await updater(engine, store).update("web")
    assert result.outcome is UpdateOutcome.FAILED
    assert result.message == (
        f"could not tag the pulled image as {REPO}:1: tagging the pulled image: no space left "
        "on device; nothing was changed"
    )
    assert engine.named("web") is web and web.running
    assert store.journal_open() == []


async def test_a_new_container_that_exits_is_undone_and_reported_rolled_back(
    engine: FakeEngine, store: Store
) -> None:
    web = engine.run("web", f"{REPO}:1")

    def exits(container: FakeContainer) -> None:
        if container.id != web.id:
            container.running, container.exit_code = False, 3

    engine.on_start = exits
    result = await updater(engine, store).update("web")
    assert result.outcome is UpdateOutcome.ROLLED_BACK
    assert result.message.startswith("the update of web to sha256:222222222222 failed: ")
    assert engine.named("web") is web and web.running


async def test_a_pinned_container_is_refused_before_anything_is_touched(
    engine: FakeEngine, store: Store
) -> None:
    engine.run("web", f"{REPO}@{OLD_DIGEST}")
    result = await updater(engine, store).update("web")
    assert result.outcome is UpdateOutcome.FAILED
    assert result.message == (
        f"web is pinned to {OLD_DIGEST}; change its reference to update it; nothing was changed"
    )
    assert not any(method in ("pull", "tag", "stop") for method, _ in engine.calls)


async def test_a_rollback_puts_the_previous_image_back_along_the_same_path(
    engine: FakeEngine, store: Store
) -> None:
    web = engine.run("web", f"{REPO}:1")
    up = updater(engine, store)
    assert (await up.update("web")).outcome is UpdateOutcome.UPDATED
    result = await Rollbacks(up).rollback("web", actor="alice")
    assert result.outcome is RollbackOutcome.ROLLED_BACK, result.message
    assert (result.old_digest, result.new_digest) == (NEW_DIGEST, OLD_DIGEST)
    assert result.message.startswith(
        f"web is back on {REPO}:1 at sha256:111111111111; sha256:222222222222 is offered for "
        "approval only from now on; "
    )
    back = engine.named("web")
    assert back is not None and back.image_id == web.image_id and back.running
    assert [entry.outcome for entry in store.history("web")][:2] == ["rolled_back", "updated"]


async def test_a_rollback_whose_tag_is_refused_changes_nothing(
    engine: FakeEngine, store: Store
) -> None:
    engine.run("web", f"{REPO}:1")
    up = updater(engine, store)
    await up.update("web")
    now = engine.named("web")
    engine.refuse("tag", "busy")
    result = await Rollbacks(up).rollback("web")
    assert result.outcome is RollbackOutcome.FAILED
    assert (result.old_digest, result.new_digest) == (NEW_DIGEST, NEW_DIGEST)
    assert result.message == (
        "could not tag the previous image: tagging the previous image: busy; nothing was changed"
    )
    assert engine.named("web") is now


async def test_an_update_to_a_newer_tag_recreates_the_container_on_that_tag(
    engine: FakeEngine, store: Store
) -> None:
    engine.run("web", f"{REPO}:1")
    result = await updater(engine, store).update(
        "web", expected_digest=NEW_DIGEST,
        made_for=Basis(f"{REPO}:1", OLD_DIGEST, new_tag="2"),
    )
    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert result.message.startswith(f"web now runs {REPO}:2 at sha256:222222222222; ")
    new = engine.named("web")
    assert new is not None and new.config["Image"] == f"{REPO}:2"
    assert f"{REPO}:2" in engine.images[new.image_id]["RepoTags"]


async def test_a_rollback_pulls_the_previous_image_again_when_it_was_removed(
    engine: FakeEngine, store: Store
) -> None:
    web = engine.run("web", f"{REPO}:1")
    up = updater(engine, store)
    await up.update("web")
    del engine.images[web.image_id]  # removed meanwhile; the registry still has it
    engine.publish(REPO, OLD_DIGEST)
    result = await Rollbacks(up).rollback("web")
    assert result.outcome is RollbackOutcome.ROLLED_BACK, result.message
    assert ("pull", f"{REPO}@{OLD_DIGEST}") in engine.calls
    back = engine.named("web")
    assert back is not None and OLD_DIGEST in engine.images[back.image_id]["RepoDigests"][0]

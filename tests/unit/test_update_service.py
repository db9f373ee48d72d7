"""UpdateService: stale approvals, failures of any kind, and a store that refuses a write."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from bot.chat.messages import AlertKind
from bot.domain.model import Basis, UpdateOutcome, UpdateResult
from bot.errors import StaleUpdate
from bot.store.db import Store
from bot.store.updates import PendingUpdate
from bot.usecases.delivery import Notifier
from bot.usecases.update_service import UpdateService
from tests.unit.fakes import NEW, NEWER, OLD, FakeAdapter

ACTOR = "telegram:1 (admin)"


class ScriptedUpdater:
    """Raises what it is given, else reports the update done; remembers what it was asked."""

    def __init__(self, raises: BaseException | None = None) -> None:
        self.raises = raises
        self.made_for: list[Basis | None] = []

    async def update(
        self,
        name: str,
        *,
        expected_digest: str | None = None,
        actor: str | None = None,
        made_for: Basis | None = None,
    ) -> UpdateResult:
        self.made_for.append(made_for)
        if self.raises is not None:
            raise self.raises
        return UpdateResult(name, UpdateOutcome.UPDATED, OLD, expected_digest or NEW, "done")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "state.db", busy_timeout=0.05)
    yield s
    s.close()


def _approved(store: Store) -> PendingUpdate:
    update, _ = store.add_update("web", "127.0.0.1:5000/web:1", OLD, NEW, "approve")
    assert store.approve_update(update.id, ACTOR)
    return update


def _service(store: Store, updater: ScriptedUpdater) -> tuple[UpdateService, FakeAdapter]:
    adapter = FakeAdapter()
    return UpdateService(store, updater, Notifier([adapter], store, retry_delay=0)), adapter


async def test_an_approval_asks_the_updater_for_exactly_what_the_update_was_found_for(
    store: Store,
) -> None:
    update = _approved(store)
    updater = ScriptedUpdater()
    service, _ = _service(store, updater)

    await service.apply("web", update=update, actor=ACTOR, action="update")

    assert updater.made_for == [Basis("127.0.0.1:5000/web:1", OLD)]
    assert store.get_update(update.id).state == "applied"  # type: ignore[union-attr]


async def test_a_stale_approval_is_superseded_and_followed_by_a_fresh_check(
    store: Store,
) -> None:
    update = _approved(store)
    stale = StaleUpdate("web", image="127.0.0.1:5000/web:2", digest=NEWER,
                        message="web now runs 127.0.0.1:5000/web:2; nothing was changed")
    service, adapter = _service(store, ScriptedUpdater(stale))
    checked: list[Sequence[str]] = []

    async def recheck(names: Sequence[str]) -> None:
        checked.append(list(names))

    service.recheck = recheck

    result = await service.apply("web", update=update, actor=ACTOR, action="update")
    for task in list(service._rechecks):
        await task

    assert result.outcome is UpdateOutcome.FAILED
    assert "web now runs 127.0.0.1:5000/web:2" in result.message
    assert "superseded" in result.message
    assert store.get_update(update.id).state == "superseded"  # type: ignore[union-attr]
    assert checked == [["web"]]
    assert adapter.alerts == []  # nothing failed: the fresh check alerts what is new


async def test_an_unexpected_exception_settles_the_update_as_failed_with_an_alert(
    store: Store,
) -> None:
    update = _approved(store)
    service, adapter = _service(store, ScriptedUpdater(RuntimeError("boom")))

    result = await service.apply("web", update=update, actor=ACTOR, action="update")

    assert result.outcome is UpdateOutcome.FAILED and "RuntimeError: boom" in result.message
    assert store.get_update(update.id).state == "failed"  # type: ignore[union-attr]
    assert [a.kind for a in adapter.alerts] == [AlertKind.UPDATE_FAILED]


async def test_a_settlement_the_store_refused_is_written_once_it_takes_writes_again(
    store: Store, tmp_path: Path,
) -> None:
    update = _approved(store)
    locker = sqlite3.connect(tmp_path / "state.db", isolation_level=None)

    class LockingUpdater(ScriptedUpdater):
        async def update(self, name: str, **kwargs: object) -> UpdateResult:
            locker.execute("BEGIN IMMEDIATE")  # the database locked by someone else meanwhile
            raise RuntimeError("the engine went away")

    service, _ = _service(store, LockingUpdater())
    try:
        result = await service.apply("web", update=update, actor=ACTOR, action="update")
        assert result.outcome is UpdateOutcome.FAILED
        assert store.get_update(update.id).state == "approved"  # type: ignore[union-attr]
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    service.settle_leftovers()

    assert store.get_update(update.id).state == "failed"  # type: ignore[union-attr]


async def test_a_self_update_handed_to_a_helper_stays_approved_until_the_new_bot_settles_it(
    store: Store,
) -> None:
    from bot.errors import SelfUpdateHandedOver, SelfUpdateRefused

    update = _approved(store)
    handed = SelfUpdateHandedOver("a helper container recreates dockwarden; it will say when up",
                                  helper="dockwarden-selfupdate-1")
    service, adapter = _service(store, ScriptedUpdater(handed))

    with pytest.raises(SelfUpdateHandedOver):
        await service.apply("dockwarden", update=update, actor=ACTOR, action="update")

    # Not approvable a second time while the helper works; no alert yet.
    assert store.get_update(update.id).state == "approved"  # type: ignore[union-attr]
    assert adapter.alerts == []
    # A plain refusal, by contrast, makes the update approvable again.
    other = _approved_other(store)
    service, _ = _service(store, ScriptedUpdater(SelfUpdateRefused("refused")))
    with pytest.raises(SelfUpdateRefused):
        await service.apply("api", update=other, actor=ACTOR, action="update")
    assert store.get_update(other.id).state == "pending"  # type: ignore[union-attr]


def _approved_other(store: Store) -> PendingUpdate:
    update, _ = store.add_update("api", "127.0.0.1:5000/api:1", OLD, NEW, "approve")
    assert store.approve_update(update.id, ACTOR)
    return update

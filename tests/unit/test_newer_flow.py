"""A newer version tag through the core over fakes: the alert, /updates, and the approval."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.chat.messages import AlertKind
from bot.config.settings import Settings
from bot.domain.model import Basis, UpdateResult
from bot.entrypoints.bootstrap import Core, build_core
from bot.store.db import Store
from tests.unit.fakes import FakeAdapter, FakeChecker, FakeUpdater, cmd, outdated, report


@dataclasses.dataclass
class RecordingUpdater(FakeUpdater):
    """Also keeps what each update was made for."""

    made_for: list[Basis | None] = dataclasses.field(default_factory=list)

    async def update(self, name: str, *, expected_digest: str | None = None,
                     actor: str | None = None, made_for: Basis | None = None) -> UpdateResult:
        self.made_for.append(made_for)
        return await super().update(name, expected_digest=expected_digest, actor=actor,
                                    made_for=made_for)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[tuple[Core, RecordingUpdater, FakeAdapter]]:
    store = Store(tmp_path / "state.db")
    result = dataclasses.replace(outdated("app", image="127.0.0.1:5000/team/app:1.2.3"),
                                 new_tag="1.3.0")
    updater = RecordingUpdater(store=store)
    adapter = FakeAdapter()
    settings = Settings(_env_file=None, telegram_admin_ids=(1,))  # type: ignore[call-arg]
    yield build_core(settings, store, FakeChecker(report(result)), updater, [adapter],
                     retry_delay=0), updater, adapter
    store.close()


async def test_tag_update_alert_listing_and_approval_carry_the_new_tag(
    core: tuple[Core, RecordingUpdater, FakeAdapter],
) -> None:
    bot, updater, adapter = core
    await bot.runner.run()
    [alert] = [a for a in adapter.alerts if a.kind is AlertKind.UPDATE_AVAILABLE]
    assert alert.text.startswith("app 1.2.3 → 1.3.0 available (minor).")
    assert ("New tag", "1.3.0") in [(f.name, f.value) for f in alert.fields]
    assert [a.verb for a in alert.actions] == ["approve", "ignore", "snooze"]
    assert "(tag 1.3.0)" in (await bot.router.dispatch(cmd("updates"))).text

    await bot.router.dispatch(cmd("approve", alert.update_id or ""))

    [made_for] = updater.made_for
    assert made_for is not None and made_for.new_tag == "1.3.0"
    assert made_for.image == "127.0.0.1:5000/team/app:1.2.3"

"""The Roll back button: under a successful update only, and never under a rollback's own alert."""

from __future__ import annotations

import pytest

from bot.chat.alert_texts import result_alert, rollback_alert
from bot.chat.messages import Action, AlertKind
from bot.domain.model import UpdateOutcome, UpdateResult
from bot.update.rollback import RollbackOutcome, RollbackResult
from tests.unit.fakes import NEW, OLD


def test_an_update_that_succeeded_offers_to_roll_back_its_container() -> None:
    alert = result_alert(UpdateResult("web", UpdateOutcome.UPDATED, OLD, NEW, "ok"),
                         update_id="abc123", actor="telegram:1 (admin)")
    assert alert.kind is AlertKind.UPDATE_SUCCEEDED
    assert alert.actions == (Action("rollback", "web", "Roll back"),)


@pytest.mark.parametrize("outcome", [UpdateOutcome.UP_TO_DATE, UpdateOutcome.ROLLED_BACK,
                                     UpdateOutcome.FAILED])
def test_nothing_to_roll_back_has_no_button(outcome: UpdateOutcome) -> None:
    alert = result_alert(UpdateResult("web", outcome, OLD, NEW, "why"), update_id=None,
                         actor=None)
    assert alert.actions == ()


def test_a_rollback_is_said_with_the_digest_it_left_and_no_button() -> None:
    done = rollback_alert(RollbackResult("web", RollbackOutcome.ROLLED_BACK, NEW, OLD, "ok"),
                          "cli:alice")
    assert done.kind is AlertKind.UPDATE_SUCCEEDED and done.actions == ()
    assert done.title == "Rolled back: web" and "approval only" in done.text
    failed = rollback_alert(
        RollbackResult("web", RollbackOutcome.FAILED, NEW, NEW, "see https://x.example/a?b"),
        None,
    )
    assert failed.kind is AlertKind.UPDATE_FAILED and "<link to x.example>" in failed.text
    assert RollbackResult("web", RollbackOutcome.NOTHING, None, None, "m").as_json() == {
        "container": "web", "host": "local", "outcome": "nothing_to_roll_back",
        "old_digest": None, "new_digest": None, "message": "m",
    }

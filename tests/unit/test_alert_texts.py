"""Alert texts: links cut and words bounded, outcomes, buttons as commands, one problem table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.chat.alert_texts import (
    PROBLEMS,
    engine_alert,
    problem,
    problem_alert,
    render_text,
    result_alert,
    sample_alert,
    self_update_alert,
    update_alert,
)
from bot.chat.messages import AlertKind
from bot.chat.text_safety import safe_text
from bot.domain.model import (
    CheckError,
    CheckResult,
    CheckStatus,
    UpdateOutcome,
    UpdateResult,
    short_digest,
)
from bot.errors import BadTagRule, RegistryError
from bot.store.db import Store
from tests.unit.fakes import NEW, OLD

EVIL = "[Click here to re-login](https://evil.example/login) @everyone"


def test_engine_and_update_texts_lose_links_and_are_bounded() -> None:
    pull = f"could not pull reg.example/app@sha256:x: denied: {EVIL}\n" + "y" * 5000
    failed = result_alert(UpdateResult("web", UpdateOutcome.FAILED, OLD, NEW, pull),
                          update_id=None, actor=None)
    for text in (failed.text, engine_alert(f"engine says {EVIL}").text, safe_text(pull)):
        assert "https://" not in text and "](" not in text
        assert "evil.example" in text  # the host is still named
    assert len(safe_text(pull)) <= 300 and "\n" not in safe_text(pull)


def test_rolled_back_result_is_update_failed_saying_so() -> None:
    result = UpdateResult("web", UpdateOutcome.ROLLED_BACK, OLD, NEW, "health check failed")
    alert = result_alert(result, update_id="abc123", actor="telegram:1 (admin)")
    assert alert.kind is AlertKind.UPDATE_FAILED
    assert "back on" in alert.text and "health check failed" in alert.text
    ok = result_alert(UpdateResult("web", UpdateOutcome.UPDATED, OLD, NEW, ""), update_id=None,
                      actor=None)
    assert ok.kind is AlertKind.UPDATE_SUCCEEDED


def test_render_text_names_the_buttons_as_commands(store: Store) -> None:
    update, _ = store.add_update("web_1", "r/web_1:latest", OLD, NEW, "approve")
    text = render_text(update_alert(update, with_actions=True))
    assert "Update available: web_1" in text
    assert f"/approve {update.id}" in text


def _kinds(cls: type[RegistryError]) -> set[str]:
    return {cls.kind} | {kind for sub in cls.__subclasses__() for kind in _kinds(sub)}


def test_every_registry_error_kind_and_bad_rule_has_its_words_in_the_one_table() -> None:
    assert set(PROBLEMS) == _kinds(RegistryError) | {BadTagRule.kind}
    said = {kind: (p.alert, p.title) for kind, p in PROBLEMS.items()}
    assert said["unsupported_challenge"] == (AlertKind.UNSUPPORTED_CHALLENGE,
                                             "Unsupported auth challenge")
    assert said["auth_failed"][0] is AlertKind.AUTH_FAILED
    assert said["rate_limited"][0] is AlertKind.RATE_LIMITED
    for kind in ("unreachable", "not_found", "bad_response", "bad_rule"):
        assert said[kind][0] is AlertKind.REGISTRY_UNREACHABLE


@pytest.mark.parametrize("kind", [*sorted(PROBLEMS), "something_new"])
def test_a_problem_alert_takes_kind_title_and_advice_from_the_table(kind: str) -> None:
    error = CheckError(kind=kind, message="HTTP 500", registry="reg.example")
    result = CheckResult(container="app", image="reg.example/app:1", status=CheckStatus.ERROR,
                         local_digest=OLD, error=error, policy="approve")
    alert = problem_alert("reg.example", kind, [result])
    said = problem(kind)
    assert alert.kind is said.alert and alert.title == f"{said.title}: reg.example"
    assert f"What to do: {said.advice}" in alert.text and alert.extra["problem"] == kind


def test_an_unknown_problem_kind_is_said_by_its_own_name_as_unreachable() -> None:
    said = problem("something_new")
    assert (said.alert, said.title) == (AlertKind.REGISTRY_UNREACHABLE, "something_new")


def test_the_test_alert_names_the_host_and_the_minute_it_was_sent() -> None:
    alert = sample_alert("bothost", datetime(2026, 12, 1, 3, 4, 59, tzinfo=UTC))
    assert alert.title == "DockWarden test alert"
    assert "on bothost at 2026-12-01 03:04 UTC" in alert.text and "Nothing to do" in alert.text


def test_after_a_self_update_the_new_bot_says_it_is_up_and_on_which_digest() -> None:
    up = self_update_alert(UpdateResult("dockwarden", UpdateOutcome.UPDATED, OLD, NEW, ""),
                           actor="telegram:1 (admin)")
    assert up.title == "DockWarden is up: dockwarden" and up.kind is AlertKind.UPDATE_SUCCEEDED
    assert up.text.startswith(f"DockWarden is up again on {short_digest(NEW)}.")
    back = self_update_alert(UpdateResult("dockwarden", UpdateOutcome.ROLLED_BACK, OLD, NEW, ""),
                             actor=None)
    assert back.text.startswith(f"DockWarden is up again on {short_digest(OLD)}.")

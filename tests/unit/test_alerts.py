"""Alerting: said once per new digest or problem, recovery once; auto updates handed on."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.chat.messages import AlertKind
from bot.domain.model import (
    CheckError,
    CheckReport,
    CheckResult,
    CheckStatus,
)
from bot.store.connection import utcnow
from bot.store.db import Store
from bot.usecases.alerting import Alerter
from tests.unit.fakes import NEW, NEWER, OLD, current, failing, outdated, report
from tests.unit.store_reads import seen_digest


def kinds(alerts: tuple[object, ...]) -> list[str]:
    return [a.kind.value for a in alerts]  # type: ignore[attr-defined]


def test_new_digest_gives_one_alert_with_buttons_and_update_id(store: Store) -> None:
    summary = Alerter(store).observe(report(outdated("web"), current("db")))
    [alert] = summary.alerts
    assert alert.kind is AlertKind.UPDATE_AVAILABLE
    assert alert.container == "web" and alert.update_id
    assert [(a.verb, a.target) for a in alert.actions] == [
        ("approve", alert.update_id), ("ignore", alert.update_id), ("snooze", alert.update_id)
    ]
    assert seen_digest(store, "web") == NEW


def test_second_identical_pass_says_nothing(store: Store) -> None:
    alerter = Alerter(store)
    alerter.observe(report(outdated("web"), failing("odd")))
    assert alerter.observe(report(outdated("web"), failing("odd"))).alerts == ()


def test_dedup_survives_a_restart(tmp_path: Path) -> None:
    first = Store(tmp_path / "s.db")
    Alerter(first).observe(report(outdated("web")))
    first.close()
    second = Store(tmp_path / "s.db")
    try:
        assert Alerter(second).observe(report(outdated("web"))).alerts == ()
    finally:
        second.close()


def test_newer_digest_gives_one_new_alert_and_supersedes_the_old(store: Store) -> None:
    alerter = Alerter(store)
    [first] = alerter.observe(report(outdated("web", remote=NEW))).alerts
    [second] = alerter.observe(report(outdated("web", remote=NEWER))).alerts
    assert second.update_id != first.update_id
    assert store.get_update(first.update_id or "").state == "superseded"  # type: ignore[union-attr]


def test_several_updates_each_get_their_own_alert(store: Store) -> None:
    summary = Alerter(store).observe(report(outdated("a"), outdated("b"), outdated("c")))
    assert len({a.update_id for a in summary.alerts}) == 3


def test_unsupported_challenge_said_once_with_registry_scheme_and_advice(store: Store) -> None:
    alerter = Alerter(store)
    pass_ = report(failing("odd1"), failing("odd2"), outdated("web"))
    summary = alerter.observe(pass_)
    [problem] = [a for a in summary.alerts if a.kind is AlertKind.UNSUPPORTED_CHALLENGE]
    assert "odd.example:5000" in problem.title
    assert "negotiate" in problem.text and "What to do" in problem.text
    assert "odd1, odd2" in problem.text
    assert problem.extra["scheme"] == "negotiate"
    assert AlertKind.UPDATE_AVAILABLE in [a.kind for a in summary.alerts]
    assert alerter.observe(pass_).alerts == ()


EVIL = "[Click here to re-login](https://evil.example/login) @everyone"


def _hostile(kind: str, message: str, scheme: str | None = None) -> CheckReport:
    error = CheckError(kind=kind, message=message, registry="reg.example", scheme=scheme)
    return report(CheckResult(container="my_app_db", image="reg.example/app:1",
                              status=CheckStatus.ERROR, local_digest=OLD, error=error,
                              policy="approve"))


def test_a_registry_problem_is_said_by_kind_status_and_host_never_in_its_own_words(
    store: Store,
) -> None:
    message = f"reg.example answered HTTP 401 when issuing a token: {EVIL}"
    [problem] = Alerter(store).observe(_hostile("auth_failed", message)).alerts
    said = " ".join([problem.title, problem.text, *(f.value for f in problem.fields)])
    assert "reg.example" in said and "401" in said and "auth" in said.lower()
    assert "evil" not in said and "Click" not in said and "@everyone" not in said


def test_a_scheme_that_is_not_a_plain_token_is_not_repeated(store: Store) -> None:
    report_ = _hostile("unsupported_challenge", "unsupported", scheme=EVIL)
    [problem] = Alerter(store).observe(report_).alerts
    said = " ".join([problem.title, problem.text, *(f.value for f in problem.fields)])
    assert "evil" not in said and "Click" not in said and "unreadable name" in said


def test_recovery_said_once_when_the_registry_answers_again(store: Store) -> None:
    alerter = Alerter(store)
    image = "odd.example:5000/odd:latest"
    alerter.observe(report(failing("odd", kind="auth_failed", scheme=None)))
    healed = report(current("odd", image=image))
    assert kinds(alerter.observe(healed).alerts) == ["recovered"]
    assert alerter.observe(healed).alerts == ()
    # the same problem again is new again
    assert kinds(alerter.observe(report(failing("odd", kind="auth_failed"))).alerts) == [
        "auth_failed"
    ]


def test_a_pass_that_does_not_reach_the_registry_does_not_clear_its_problem(store: Store) -> None:
    alerter = Alerter(store)
    alerter.observe(report(failing("odd", kind="unreachable")))
    assert alerter.observe(report(current("web"))).alerts == ()
    assert store.said_keys("problem|odd.example:5000|") == ["problem|odd.example:5000|unreachable"]


def test_ignored_digest_is_not_alerted_but_a_newer_one_is(store: Store) -> None:
    store.ignore("web", NEW)
    alerter = Alerter(store)
    assert alerter.observe(report(outdated("web", remote=NEW))).alerts == ()
    assert kinds(alerter.observe(report(outdated("web", remote=NEWER))).alerts) == [
        "update_available"
    ]


def test_snoozed_container_is_alerted_after_the_snooze(store: Store) -> None:
    store.snooze("web", utcnow() + timedelta(hours=1))
    alerter = Alerter(store)
    assert alerter.observe(report(outdated("web"))).alerts == ()
    later = utcnow() + timedelta(hours=2)
    assert kinds(alerter.observe(report(outdated("web")), now=later).alerts) == [
        "update_available"
    ]


def test_notify_policy_alerts_without_buttons(store: Store) -> None:
    [alert] = Alerter(store).observe(report(outdated("web", policy="notify"))).alerts
    assert alert.actions == ()
    assert "/pull web" in alert.text


def test_auto_policy_gives_no_alert_but_an_update_to_apply_once(store: Store) -> None:
    alerter = Alerter(store)
    summary = alerter.observe(report(outdated("web", policy="auto")))
    assert summary.alerts == () and [u.container for u in summary.auto] == ["web"]
    assert alerter.observe(report(outdated("web", policy="auto"))).auto == ()


def test_up_to_date_container_closes_its_pending_update(store: Store) -> None:
    alerter = Alerter(store)
    [alert] = alerter.observe(report(outdated("web"))).alerts
    alerter.observe(report(current("web", digest=NEW)))
    assert store.get_update(alert.update_id or "").state == "applied"  # type: ignore[union-attr]

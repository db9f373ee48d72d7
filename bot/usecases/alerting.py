"""Alerting: which of a pass's findings are worth saying, remembered so each is said once.

Dedup lives in the store (`alert_keys`), so it survives restarts:
- `update|<container>|<digest>`: an update alert was said for that new remote digest;
- `problem|<registry>|<kind>`: a registry problem was said; when a later pass reaches that
  registry without any problem the key is dropped and one `recovered` alert is said;
- `engine|unreachable`: a pass could not reach the engine; the next report says it recovered.

Grouping: each update gets its own alert (its own update id, buttons and message to edit after a
press), because adapters edit the message of the update that was pressed; a pass finding five
updates sends five short alerts. Registry problems are grouped per (registry, kind) and name the
containers affected. The words of each alert are bot/chat/alert_texts.py's; delivering them is
bot/usecases/delivery.py's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from bot.chat.alert_texts import (
    engine_alert,
    engine_recovered_alert,
    problem_alert,
    recovered_alert,
    rolled_back_note,
    update_alert,
)
from bot.chat.messages import Alert
from bot.check.image_info import update_brings
from bot.domain.model import (
    OPEN_STATES,
    CheckReport,
    CheckResult,
    CheckStatus,
    Policy,
    UpdateState,
)
from bot.domain.policy import ready_at
from bot.domain.reference import registry_of
from bot.store.connection import utcnow
from bot.store.db import Store
from bot.store.safety import SafetyStore
from bot.store.updates import PendingUpdate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassSummary:
    """What one check pass found and said."""

    report: CheckReport
    alerts: tuple[Alert, ...] = ()
    auto: tuple[PendingUpdate, ...] = ()

    def counts(self) -> dict[str, int]:
        """How many results had each status."""
        counts = {status.value: 0 for status in CheckStatus}
        for result in self.report.results:
            counts[result.status.value] += 1
        return counts


# -- dedup ---------------------------------------------------------------------------------------


_ENGINE_KEY = "engine|unreachable"


class Alerter:
    """Turns check reports into alerts worth saying, using the store to remember what was said."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def observe(self, report: CheckReport, *, now: datetime | None = None) -> PassSummary:
        """Record what the pass saw; return the new alerts and the updates to apply (auto)."""
        now = now or utcnow()
        alerts: list[Alert] = []
        auto: list[PendingUpdate] = []
        problems: dict[tuple[str, str], list[CheckResult]] = {}
        healthy: set[str] = set()
        with self.store.transaction():  # one commit for the whole pass
            if self.store.was_said(_ENGINE_KEY):  # a report means the engine answered
                self.store.unsay(_ENGINE_KEY)
                alerts.append(engine_recovered_alert())
            alerts.extend(self._hosts(report))
            self._observe(report, now, alerts, auto, problems, healthy)
            alerts.extend(self._problems(problems, healthy))
        return PassSummary(report=report, alerts=tuple(alerts), auto=tuple(auto))

    def engine_unreachable(self, message: str) -> list[Alert]:
        """A pass could not reach the engine: one alert, the first time only."""
        with self.store.transaction():
            if self.store.was_said(_ENGINE_KEY):
                return []
            self.store.mark_said(_ENGINE_KEY)
        return [engine_alert(message)]

    def _hosts(self, report: CheckReport) -> list[Alert]:
        """Several hosts: each one that did not answer said once, and once more when it does."""
        alerts: list[Alert] = []
        for host, message in sorted(report.unreachable.items()):
            key = f"{_ENGINE_KEY}|{host}"
            if not self.store.was_said(key):
                self.store.mark_said(key)
                alerts.append(engine_alert(message, host=host))
        for host in report.hosts:
            key = f"{_ENGINE_KEY}|{host}"
            if self.store.was_said(key):
                self.store.unsay(key)
                alerts.append(engine_recovered_alert(host=host))
        return alerts

    def _observe(
        self,
        report: CheckReport,
        now: datetime,
        alerts: list[Alert],
        auto: list[PendingUpdate],
        problems: dict[tuple[str, str], list[CheckResult]],
        healthy: set[str],
    ) -> None:
        for result in report.results:
            if result.status is CheckStatus.ERROR and result.error is not None:
                registry = result.error.registry or registry_of(result.image)
                problems.setdefault((registry, result.error.kind), []).append(result)
            elif result.status in (CheckStatus.UP_TO_DATE, CheckStatus.UPDATE_AVAILABLE):
                healthy.add(registry_of(result.image))
            if result.status is CheckStatus.UPDATE_AVAILABLE and result.remote_digest:
                self._update(result, now, alerts, auto)
            elif result.status is CheckStatus.UP_TO_DATE and result.remote_digest:
                self._settle(result)

    def _update(
        self, result: CheckResult, now: datetime, alerts: list[Alert], auto: list[PendingUpdate]
    ) -> None:
        digest = result.remote_digest or ""
        safety = SafetyStore(self.store)
        if now < ready_at(safety.first_seen(result.container, digest, now), result.min_age):
            return  # younger than its minimum age: proposed later (a pulled release never is)
        policy = result.policy or Policy.APPROVE
        update, _ = self.store.add_update(
            result.container, result.image, result.local_digest, digest, policy,
            new_tag=result.new_tag, compose=result.compose, stopped=result.stopped,
        )
        self.store.set_seen_digest(result.container, result.image, digest)
        key = f"update|{result.container}|{digest}"
        if update.state is not UpdateState.PENDING or self.store.was_said(key):
            return
        if self.store.is_ignored(result.container, digest):
            return
        if self.store.snoozed_until(result.container, now) is not None:
            return  # said (or applied, for auto) once the snooze ends, if still pending then
        rolled_back = safety.is_blocked(result.container, digest)
        if update.policy is Policy.AUTO and not rolled_back:
            # Said by the update's own succeeded/failed alert; attempted once per digest.
            self.store.mark_said(key, update.id)
            auto.append(update)
            return
        self.store.mark_said(key, update.id)
        update = update_brings(self.store, update)  # what the new image says, said once
        # A digest rolled back from is offered for approval, whatever `auto` says.
        alert = update_alert(update, with_actions=update.policy in (Policy.APPROVE, Policy.AUTO))
        if rolled_back:
            alert = replace(alert, text=f"{alert.text} {rolled_back_note(result.container)}")
        alerts.append(alert)

    def _settle(self, result: CheckResult) -> None:
        """An up-to-date container closes its open update rows (applied elsewhere or obsolete)."""
        digest = result.remote_digest or ""
        self.store.set_seen_digest(result.container, result.image, digest)
        latest = self.store.latest_update(result.container)
        if latest is None or latest.state not in OPEN_STATES:
            return
        state = UpdateState.APPLIED if latest.remote_digest == digest else UpdateState.SUPERSEDED
        self.store.set_update_state(
            latest.id, state, expect=(UpdateState.PENDING, UpdateState.FAILED),
            detail="seen up to date",
        )

    def _problems(
        self, problems: dict[tuple[str, str], list[CheckResult]], healthy: set[str]
    ) -> list[Alert]:
        alerts: list[Alert] = []
        for (registry, kind), results in sorted(problems.items()):
            key = f"problem|{registry}|{kind}"
            if not self.store.was_said(key):
                self.store.mark_said(key)
                alerts.append(problem_alert(registry, kind, results))
        troubled = {registry for registry, _ in problems}
        for registry in sorted(healthy - troubled):
            prefix = f"problem|{registry}|"
            cleared = [key[len(prefix):] for key in self.store.said_keys(prefix)]
            if cleared:
                for kind in cleared:
                    self.store.unsay(prefix + kind)
                alerts.append(recovered_alert(registry, cleared))
        return alerts

"""Small in-memory fakes of the core's ports (checker, updater, chat adapter) for unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.chat.messages import Alert, Command, Dispatch, Sender
from bot.domain.model import (
    Basis,
    CheckError,
    CheckReport,
    CheckResult,
    CheckStatus,
    UpdateOutcome,
    UpdateResult,
)
from bot.errors import DockWardenError
from bot.store.db import Store

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
NEWER = "sha256:" + "c" * 64


def outdated(
    container: str = "web",
    *,
    remote: str = NEW,
    local: str = OLD,
    image: str | None = None,
    policy: str = "approve",
) -> CheckResult:
    """A container whose registry has a newer digest."""
    return CheckResult(
        container=container,
        image=image or f"127.0.0.1:5000/{container}:latest",
        status=CheckStatus.UPDATE_AVAILABLE,
        local_digest=local,
        remote_digest=remote,
        policy=policy,
    )


def current(container: str = "web", *, digest: str = OLD, image: str | None = None) -> CheckResult:
    """A container already on its registry's digest."""
    return CheckResult(
        container=container,
        image=image or f"127.0.0.1:5000/{container}:latest",
        status=CheckStatus.UP_TO_DATE,
        local_digest=digest,
        remote_digest=digest,
        policy="approve",
    )


def failing(
    container: str = "odd",
    *,
    kind: str = "unsupported_challenge",
    registry: str = "odd.example:5000",
    scheme: str | None = "negotiate",
) -> CheckResult:
    """A container whose registry could not be asked."""
    return CheckResult(
        container=container,
        image=f"{registry}/{container}:latest",
        status=CheckStatus.ERROR,
        local_digest=OLD,
        error=CheckError(
            kind=kind, message=f"{registry} said no ({kind})", registry=registry, scheme=scheme
        ),
        policy="approve",
    )


def report(*results: CheckResult) -> CheckReport:
    """A pass made of these results."""
    return CheckReport(checked_at=datetime.now(UTC), results=tuple(results))


class FakeChecker:
    """Returns scripted reports in turn (the last one repeats); counts overlapping calls."""

    def __init__(self, *reports: CheckReport, delay: float = 0.0) -> None:
        self.reports = list(reports) or [report()]
        self.calls: list[list[str] | None] = []
        self.delay = delay
        self.active = 0
        self.max_active = 0

    async def check(self, names: Sequence[str] | None = None) -> CheckReport:
        self.calls.append(list(names) if names else None)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return self.reports.pop(0) if len(self.reports) > 1 else self.reports[0]
        finally:
            self.active -= 1


@dataclass
class FakeUpdater:
    """Records each update asked for and answers with a scripted outcome."""

    outcome: UpdateOutcome = UpdateOutcome.UPDATED
    raises: DockWardenError | None = None
    calls: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    reconciled: int = 0
    store: Store | None = None  # like the real Updater, it records each outcome in the history

    async def update(
        self,
        name: str,
        *,
        expected_digest: str | None = None,
        actor: str | None = None,
        made_for: Basis | None = None,
    ) -> UpdateResult:
        self.calls.append((name, expected_digest, actor))
        if self.raises is not None:
            raise self.raises
        message = ""
        if self.outcome is UpdateOutcome.ROLLED_BACK:
            message = "the new container failed its health check; the old one runs again"
        result = UpdateResult(
            container=name,
            outcome=self.outcome,
            old_digest=OLD,
            new_digest=expected_digest or NEW,
            message=message,
        )
        if self.store is not None:
            self.store.record(
                "update", result.outcome.value, container=name, actor=actor, detail=message
            )
        return result

    async def reconcile(self) -> list[str]:
        self.reconciled += 1
        return []


@dataclass
class FakeAdapter:
    """Records the alerts it is given; fails the first `failures` deliveries."""

    name: str = "fake"
    failures: int = 0
    alerts: list[Alert] = field(default_factory=list)
    dispatch: Dispatch | None = None
    stopped: bool = False
    attempts: int = 0
    error: str = "platform down"

    async def start(self, dispatch: Dispatch) -> None:
        self.dispatch = dispatch

    async def stop(self) -> None:
        self.stopped = True

    async def notify(self, alert: Alert) -> None:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError(self.error)
        self.alerts.append(alert)


ADMIN = Sender(platform="telegram", user_id=1, display="admin", in_alert_place=True)
READER = Sender(platform="telegram", user_id=2, display="reader", in_alert_place=True)
STRANGER = Sender(platform="telegram", user_id=3, display="stranger", in_alert_place=False)


def cmd(name: str, *args: str, sender: Sender = ADMIN) -> Command:
    """A command as an adapter would dispatch it."""
    return Command(name=name, args=tuple(args), sender=sender)

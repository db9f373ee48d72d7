"""What the use cases need of the checker, the updater and the pass runner (small Protocols).

The real parts (`bot.check.checker.Checker`, `bot.update.updater.Updater`, the pass runner's
`join_or_run`) satisfy them; unit tests hand in fakes of the same shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from bot.domain.model import Basis, CheckReport, UpdateResult
from bot.usecases.alerting import PassSummary


class CheckerPort(Protocol):
    """What the core needs of the checker."""

    async def check(self, names: Sequence[str] | None = None) -> CheckReport:
        """One check pass."""
        ...


class UpdaterPort(Protocol):
    """What the core needs of the updater."""

    async def update(
        self,
        name: str,
        *,
        expected_digest: str | None = None,
        actor: str | None = None,
        made_for: Basis | None = None,
    ) -> UpdateResult:
        """Pull, recreate, health-gate, roll back (StaleUpdate when `made_for` no longer holds)."""
        ...


# One check pass of these containers (all when None), joined when one is under way.
RunPass = Callable[[Sequence[str] | None], Awaitable[PassSummary]]
# A fresh check of containers whose approval turned out stale.
Recheck = Callable[[Sequence[str]], Awaitable[object]]
# What a user typed (`web`, `b/web`) as the container key it names (bot/update/hosts.py).
Resolve = Callable[[str], Awaitable[str]]

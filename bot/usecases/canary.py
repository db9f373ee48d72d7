"""Canary hosts (DOCKWARDEN_CANARY_HOSTS): an approved digest goes to them first.

When an update of a container on another host is approved (or applied by `auto`), the canary
hosts' containers last seen on the same image go first: their pending updates to that digest
are applied then and there. The update itself waits until every canary has run the digest for
DOCKWARDEN_CANARY_SOAK and is still healthy (running, not unhealthy, still on the digest).
A canary whose update failed, was rolled back, or is no longer healthy stops the rollout; the
answer (and for `auto`, an update_failed alert) says which canary and why.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.domain.model import UpdateState, short_digest
from bot.domain.targets import split_key
from bot.store.connection import utcnow
from bot.store.db import Store
from bot.store.safety import SafetyStore
from bot.store.updates import PendingUpdate


class CanaryHealth(Protocol):
    """How a canary container is doing (HostUpdaters is the real one)."""

    async def canary_trouble(self, key: str, digest: str) -> str | None:
        """Why the container is not healthy on `digest`; None when it is."""


@dataclass(frozen=True)
class Go:
    """No canary stands in the way."""


@dataclass(frozen=True)
class CanariesFirst:
    """These canary updates to the same digest are applied first."""

    updates: tuple[PendingUpdate, ...]


@dataclass(frozen=True)
class Soak:
    """The canaries run the digest; the update waits until `until`."""

    until: datetime
    canaries: tuple[str, ...]


@dataclass(frozen=True)
class Stop:
    """A canary failed: the rollout of this digest stops."""

    why: str


Verdict = Go | CanariesFirst | Soak | Stop


class CanaryGate:
    """Decides whether an update of a non-canary host may go ahead now."""

    def __init__(
        self,
        store: Store,
        canaries: Collection[str],
        soak: timedelta,
        health: CanaryHealth,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.canaries = frozenset(canaries)
        self.soak = soak
        self.health = health
        self.clock = clock
        self.safety = SafetyStore(store)

    def applies(self, update: PendingUpdate) -> bool:
        """Whether the update is one of a non-canary host while canaries are set."""
        host, _ = split_key(update.container)
        return bool(self.canaries) and host not in self.canaries

    def canaries_of(self, update: PendingUpdate) -> list[str]:
        """The canary hosts' containers last seen on the update's image."""
        return sorted(
            key for key in self.store.seen_running(update.image)
            if split_key(key)[0] in self.canaries
        )

    async def verdict(self, update: PendingUpdate) -> Verdict:
        """Go, the canaries' updates first, wait for their soak, or stop."""
        digest, short = update.remote_digest, short_digest(update.remote_digest)
        first: list[PendingUpdate] = []
        soaking: list[tuple[datetime, str]] = []
        for key in self.canaries_of(update):
            if self.safety.is_blocked(key, digest):
                return Stop(f"canary {key} was rolled back from {short}")
            row = self.store.update_to(key, digest)
            if row is None or row.state in (UpdateState.IGNORED, UpdateState.SUPERSEDED):
                continue  # this canary was never offered the digest, or took another way
            if row.state is UpdateState.FAILED:
                return Stop(f"the update of canary {key} to {short} failed: {row.detail}")
            if row.state in (UpdateState.PENDING, UpdateState.APPROVED):
                first.append(row)
                continue
            trouble = await self.health.canary_trouble(key, digest)
            if trouble is not None:
                return Stop(f"canary {key} {trouble}")
            soaking.append((datetime.fromisoformat(row.updated_at) + self.soak, key))
        if first:
            return CanariesFirst(tuple(first))
        waiting = [(until, key) for until, key in soaking if until > self.clock()]
        if waiting:
            return Soak(max(until for until, _ in waiting), tuple(k for _, k in waiting))
        return Go()


CANARY_WAIT = "waits for canary"  # in the detail of an update held back for its canaries


def soak_text(container: str, soak: Soak) -> str:
    """What is said of an update that waits for its canaries."""
    at = soak.until.strftime("%Y-%m-%d %H:%M UTC")
    return (f"{container} {CANARY_WAIT} {', '.join(soak.canaries)} to stay healthy on the "
            f"new digest until {at}; it is updated then")


def waits_for_canary(detail: str) -> bool:
    """Whether an update's detail says it is held back for its canaries."""
    return f" {CANARY_WAIT} " in detail


def stop_text(container: str, stop: Stop) -> str:
    """What is said of an update a failed canary stopped."""
    return f"the rollout to {container} stopped: {stop.why}; nothing was changed"


def first_text(updates: Sequence[PendingUpdate]) -> str:
    """The canaries about to be updated first."""
    return ", ".join(u.container for u in updates)

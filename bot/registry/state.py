"""What the registry client knows about each registry, and the tasks its images share.

A `RegistryState` is made once per registry and lives as long as the client: the ping fills in
the challenge (or the move to TLS), the authenticator the credentials; tokens live in the cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.errors import UnsupportedChallenge
from bot.registry.challenge import Challenge
from bot.registry.credentials import Credentials

T = TypeVar("T")


@dataclass
class Auth:
    """The challenge a registry answers to, and the URL it came from (for relative realms)."""

    challenge: Challenge
    url: str


@dataclass
class RegistryState:
    """What the client knows about one registry."""

    name: str
    base: str
    credentials_key: str
    semaphore: asyncio.Semaphore
    ping: asyncio.Future[None] | None = None
    pinged: bool = False
    auth: Auth | None = None
    # The HTTPS base to try when plain HTTP (loopback, insecure) meets a TLS port.
    tls_fallback: str | None = None
    # Set when the ping offered only schemes we cannot speak: (schemes, raw header).
    unsupported: tuple[str, str] | None = None
    credentials: Credentials | None = None
    credentials_loaded: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def unsupported_error(self, repository: str | None) -> UnsupportedChallenge | None:
        """The error for "only schemes we cannot speak", if the ping found that."""
        if self.unsupported is None:
            return None
        schemes, header = self.unsupported
        return UnsupportedChallenge(
            registry=self.name, repository=repository, scheme=schemes, header=header
        )


class SharedTasks:
    """Pings and token fetches that several images await (shielded): they outlive a cancelled
    caller, and a failure is marked seen even when every waiter was cancelled."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Future[Any]] = set()

    def start(self, work: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run `work` as a shared task."""
        task = asyncio.ensure_future(work)
        task.add_done_callback(_retrieve)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def cancel(self) -> None:
        """Cancel the tasks still running (the client is closing)."""
        pending = list(self._pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _retrieve(done: asyncio.Future[Any]) -> None:
    """Mark a shared task's failure as seen: its waiters got it, or were cancelled."""
    if not done.cancelled():
        done.exception()

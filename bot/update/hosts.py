"""Several Docker hosts behind the one updater the core uses: each key goes to its own host.

With several hosts (DOCKWARDEN_HOSTS) every host has its own Updater and Rollbacks on its own
engine; containers are keyed `HOST/NAME` (bot/domain/targets.py). `HostUpdaters` hands an update,
a preview or a rollback to the key's host, reconciles each host's journals on that host, and
`resolve` turns what a user typed (`web`, `b/web`) into a key: a bare name must be on exactly
one host, else the answer names the candidates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime

from bot.domain.model import Basis, UpdateResult, short_digest
from bot.domain.targets import parse_target, resolve_target, split_key
from bot.errors import ContainerNotFound, EngineError, UnknownHost, UsageError
from bot.store.connection import utcnow
from bot.update.rollback import RollbackPlan, RollbackResult, Rollbacks
from bot.update.updater import Preview, Updater


class HostUpdaters:
    """The updaters of every watched host (one or several), as one."""

    def __init__(self, updaters: Mapping[str, Updater]) -> None:
        if not updaters:
            raise ValueError("at least one host's updater is needed")
        self.updaters = dict(updaters)
        self.several = len(self.updaters) > 1

    @property
    def hosts(self) -> list[str]:
        """The hosts' names, in the order DOCKWARDEN_HOSTS gives them."""
        return list(self.updaters)

    def pick(self, key: str) -> Updater:
        """The updater of the key's host (UnknownHost for a host not watched)."""
        host, _ = split_key(key)
        if host is None:
            if self.several:  # keys are HOST/NAME here: resolve() a bare name first
                raise ContainerNotFound(key)
            return next(iter(self.updaters.values()))
        if host not in self.updaters:
            raise UnknownHost(host, tuple(self.updaters))
        return self.updaters[host]

    async def resolve(self, text: str) -> str:
        """The key `text` (`NAME` or `HOST/NAME`) names; a bare name is looked for on every host.

        UnknownHost for a host not watched, ContainerNotFound when no host that answered has
        it, AmbiguousTarget naming `a/web, b/web` when several have it, a UsageError when one
        has it but another did not answer.
        """
        target = parse_target(text)
        hosts = self.hosts
        if target.host is not None and target.host not in self.updaters:
            raise UnknownHost(target.host, tuple(hosts))
        if not self.several:
            return target.name
        if target.host is not None:
            return f"{target.host}/{target.name}"
        found = await asyncio.gather(*(self._has(h, target.name) for h in hosts))
        pairs = [(host, target.name) for host, has in zip(hosts, found, strict=True) if has]
        host, name = resolve_target(target, hosts, pairs)
        away = [h for h, has in zip(hosts, found, strict=True) if has is None]
        if away:  # it may be there too: a change is never guessed onto one host
            raise UsageError(
                f"{name!r} is on {host}/{name}, but host {', '.join(away)} did not answer and "
                f"may have it too; say {host}/{name} to mean that one"
            )
        return f"{host}/{name}"

    async def _has(self, host: str, name: str) -> bool | None:
        """Whether the host has a container or a swarm service of that name (None when its
        engine does not answer)."""
        updater = self.updaters[host]
        try:
            if await updater.engine.inspect_container(name) is not None:
                return True
            return await updater.services.find(name) is not None
        except EngineError:
            return None

    async def update(
        self,
        name: str,
        *,
        expected_digest: str | None = None,
        actor: str | None = None,
        made_for: Basis | None = None,
    ) -> UpdateResult:
        """Update the container on its own host (see Updater.update)."""
        return await self.pick(name).update(
            name, expected_digest=expected_digest, actor=actor, made_for=made_for
        )

    async def preview(self, name: str) -> Preview:
        """What an update of the container on its host would do."""
        return await self.pick(name).preview(name)

    async def canary_trouble(self, key: str, digest: str) -> str | None:
        """Why a canary is not healthy on `digest` (gone, stopped, restarting, unhealthy, or on
        another digest); None when it is."""
        updater = self.pick(key)
        name = updater.scope.name(key)
        try:
            container = await updater.engine.inspect_container(name)
            if container is None:
                return None if await updater.services.find(name) is not None else "is gone"
            if container.state.restarting:
                return "keeps restarting"
            if not container.state.running:
                return f"is not running (exit code {container.state.exit_code})"
            if container.state.health == "unhealthy":
                return "is unhealthy"
            image = await updater.engine.inspect_image(container.image_id)
        except EngineError as exc:
            return f"cannot be looked at: {exc}"
        if image is None or not any(d.endswith(f"@{digest}") for d in image.repo_digests):
            return f"no longer runs {short_digest(digest)}"
        return None

    async def reconcile(self) -> list[str]:
        """Each host's interrupted updates settled on that host; the keys settled."""
        settled: list[str] = []
        for updater in self.updaters.values():
            try:
                settled.extend(await updater.reconcile())
            except EngineError:
                if not self.several:
                    raise
                # That host is away: its journals wait for the next round; the others go on.
        return settled


class HostRollbacks:
    """The rollbacks of every watched host, as one."""

    def __init__(
        self, updaters: HostUpdaters, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.updaters = updaters
        self.by_host = {
            host: Rollbacks(updater, clock=clock) for host, updater in updaters.updaters.items()
        }

    def _pick(self, key: str) -> Rollbacks:
        host = self.updaters.pick(key).scope.host
        return self.by_host[host]

    async def plan(self, name: str) -> RollbackPlan | None:
        """What a rollback of the container on its host would do."""
        return await self._pick(name).plan(name)

    async def rollback(self, name: str, *, actor: str | None = None) -> RollbackResult:
        """Roll the container back on its own host."""
        return await self._pick(name).rollback(name, actor=actor)

    async def expire(self) -> int:
        """Each host lets its own kept images go; how many records expired."""
        expired = 0
        for rollbacks in self.by_host.values():
            try:
                expired += await rollbacks.expire()
            except EngineError:
                if not self.updaters.several:
                    raise
        return expired

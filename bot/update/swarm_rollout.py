"""Updating a Swarm service: point its spec at the approved digest and watch the rollout.

A service is not recreated by hand: the swarm replaces its tasks itself, by the service's own
update policy, and keeps the previous spec. DockWarden sets the image to `repo:tag@digest`
(exactly the digest that was approved, with the registry credentials forwarded as
`docker service update --with-registry-auth` does), waits for the rollout to finish, and when the
swarm paused it on a failing task, or it did not finish in time, puts the previous spec back —
the rollback — and says so. The swarm keeps the spec in its own store: an interrupted update
needs no journal of ours.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from bot.domain.model import UpdateResult, short_digest
from bot.domain.reference import split_digest
from bot.engines.inspect import JsonObject, JsonValue
from bot.engines.port import Engine, doing
from bot.engines.swarm import ServiceInspect
from bot.errors import EngineError

log = logging.getLogger(__name__)

# UpdateStatus.State values (Docker Engine API, ServiceUpdateStatus).
_DONE = "completed"
_FAILED = frozenset({"paused", "rollback_paused"})
_SWARM_ROLLED_BACK = "rollback_completed"
_ENDED = _FAILED | {_DONE, _SWARM_ROLLED_BACK}


def with_image(service: ServiceInspect, image: str) -> JsonObject:
    """The service's TaskTemplate with only the image changed."""
    template = dict(service.task_template)
    container_spec = template.get("ContainerSpec")
    template["ContainerSpec"] = {
        **(container_spec if isinstance(container_spec, dict) else {}), "Image": image
    }
    return template


def rollout_batches(service: ServiceInspect) -> int:
    """How many rounds the swarm takes to replace every task (replicas / parallelism)."""
    # The swarm's default is one task at a time; 0 means all at once.
    if service.parallelism <= 0:
        return 1
    return max(1, -(-service.replicas // service.parallelism))


class ServiceUpdater:
    """Moves a swarm service to a digest and back, on a manager's engine.

    `timeout` is per round of the rollout: a service of many replicas gets as many rounds as
    its update policy needs to replace them all."""

    def __init__(self, engine: Engine, *, timeout: float, poll: float = 0.5) -> None:
        self.engine = engine
        self.timeout = timeout
        self.poll = poll

    async def find(self, name: str) -> ServiceInspect | None:
        """The service, or None (no such service, or no swarm manager here)."""
        with doing(f"inspecting service {name}"):
            return await self.engine.inspect_service(name)

    async def update(
        self, service: ServiceInspect, digest: str, old_digest: str | None, familiar: str
    ) -> UpdateResult:
        """Roll the service out on `digest`; roll it back when the swarm cannot."""
        name = service.name
        tagged, _ = split_digest(service.image)
        previous = service.task_template
        try:
            await self.set_template(service, with_image(service, f"{tagged}@{digest}"))
        except EngineError as exc:
            return UpdateResult.untouched(
                name, f"the swarm refused the update of {name}: {exc}", old_digest, digest
            )
        try:
            state, message = await self.rollout(service)
        except EngineError as exc:
            state, message = "", f"watching the rollout failed: {exc}"
        if state == _DONE:
            return UpdateResult.updated(
                name, old_digest, digest,
                f"service {name} now runs {familiar} at {short_digest(digest)}",
            )
        why = message or "the swarm gave no reason"
        log.warning("update of service %s to %s failed: %s", name, digest, why)
        if state == _SWARM_ROLLED_BACK:
            return UpdateResult.rolled_back(
                name, old_digest, digest,
                f"the update of service {name} to {short_digest(digest)} failed and the swarm "
                f"rolled it back: {why}",
            )
        return await self.roll_back(name, previous, old_digest, digest, why)

    async def roll_back(
        self,
        name: str,
        previous: Mapping[str, JsonValue],
        old_digest: str | None,
        digest: str,
        why: str,
    ) -> UpdateResult:
        """Put the `previous` task template back after the update to `digest` failed (`why`)."""
        try:
            current = await self._inspect(name)
            await self.set_template(current, previous)
            state, message = await self.rollout(current)
        except EngineError as exc:
            state, message = "", str(exc)
        if state == _DONE:
            return UpdateResult.rolled_back(
                name, old_digest, digest,
                f"the update of service {name} to {short_digest(digest)} failed ({why}); its "
                "previous spec is back",
            )
        return UpdateResult.failed(
            name,
            f"the update of service {name} to {short_digest(digest)} failed ({why}) and putting "
            f"its previous spec back did not finish ({message}); see "
            f"`docker service ps {name}`",
            old_digest, digest,
        )

    async def _inspect(self, name: str) -> ServiceInspect:
        with doing(f"inspecting service {name}"):
            service = await self.engine.inspect_service(name)
            if service is None:
                raise EngineError(f"no such service: {name}")
        return service

    async def set_template(
        self, service: ServiceInspect, template: Mapping[str, JsonValue]
    ) -> None:
        """Give the service `template`; the rest of its spec stays as the swarm has it."""
        with doing("updating the service"):
            await self.engine.update_service(service.id, service.version, template)

    async def rollout(self, before: ServiceInspect) -> tuple[str, str]:
        """Wait for the update started after `before` to end: (UpdateStatus.State, Message).

        The status of an earlier update may still be shown at first: it is told apart by its
        start time. ("", why) when the rollout is still going at the timeout."""
        earlier = before.update_started_at
        allowed = self.timeout * rollout_batches(before)
        deadline = time.monotonic() + allowed
        while time.monotonic() < deadline:
            now = await self._inspect(before.id)
            if now.update_state in _ENDED and now.update_started_at != earlier:
                return now.update_state, now.update_message
            await asyncio.sleep(self.poll)
        return "", f"the rollout did not finish within {allowed:.0f}s"

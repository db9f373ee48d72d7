"""A Swarm service's update and rollback on a scripted in-memory swarm (no Docker)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from bot.domain.model import UpdateOutcome
from bot.domain.reference import ImageRef
from bot.engines.inspect import JsonValue
from bot.engines.swarm import ServiceInspect, parse_service
from bot.store.db import Store
from bot.update.rollback import RollbackOutcome, Rollbacks
from bot.update.updater import Updater
from tests.unit.fake_engine import FakeEngine

REPO = "registry.test/shop/web"
OLD = "sha256:" + "1" * 64
NEW = "sha256:" + "2" * 64


class Swarm(FakeEngine):
    """One service, `web`; each rollout ends in the next of `outcomes` (UpdateStatus.State)."""

    def __init__(self, *outcomes: str) -> None:
        super().__init__()
        self.outcomes = list(outcomes)
        self.document: dict[str, Any] = {
            "ID": "svc1", "Version": {"Index": 1},
            "Spec": {"Name": "web",
                     "TaskTemplate": {"ContainerSpec": {"Image": f"{REPO}:1@{OLD}"}}},
        }

    def image(self) -> str:
        return str(self.document["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"])

    async def inspect_service(self, ref: str) -> ServiceInspect | None:
        self._call("inspect_service", ref)
        return parse_service(self.document) if ref in ("web", "svc1") else None

    async def update_service(
        self, service_id: str, version: int, task_template: Mapping[str, JsonValue]
    ) -> None:
        self._call("update_service", service_id)
        assert version == self.document["Version"]["Index"]
        self.document["PreviousSpec"] = copy.deepcopy(self.document["Spec"])
        self.document["Spec"]["TaskTemplate"] = copy.deepcopy(dict(task_template))
        self.document["Version"]["Index"] += 1
        self.document["UpdateStatus"] = {
            "State": self.outcomes.pop(0), "StartedAt": f"t{version}", "Message": "task exited",
        }


class Registry:
    async def remote_digest(self, ref: ImageRef) -> str:
        return NEW


def updater(swarm: Swarm, store: Store) -> Updater:
    return Updater(swarm, Registry(), store, health_timeout=1,  # type: ignore[arg-type]
                   grace_period=0)


async def test_a_service_is_rolled_out_on_the_digest_with_its_tag_kept(store: Store) -> None:
    swarm = Swarm("completed")
    result = await updater(swarm, store).update("web")
    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert (result.old_digest, result.new_digest) == (OLD, NEW)
    assert result.message == f"service web now runs {REPO}:1 at sha256:222222222222"
    assert swarm.image() == f"{REPO}:1@{NEW}"


async def test_a_paused_rollout_puts_the_previous_spec_back(store: Store) -> None:
    swarm = Swarm("paused", "completed")
    result = await updater(swarm, store).update("web")
    assert result.outcome is UpdateOutcome.ROLLED_BACK
    assert result.message == (
        "the update of service web to sha256:222222222222 failed (task exited); its previous "
        "spec is back"
    )
    assert swarm.image() == f"{REPO}:1@{OLD}"


async def test_a_refused_service_update_changes_nothing(store: Store) -> None:
    swarm = Swarm()
    swarm.refuse("update_service", "rpc error: update out of sequence")
    result = await updater(swarm, store).update("web")
    assert result.outcome is UpdateOutcome.FAILED
    assert result.message == (
        "the swarm refused the update of web: updating the service: rpc error: update out of "
        "sequence; nothing was changed"
    )
    assert swarm.image() == f"{REPO}:1@{OLD}"


async def test_a_service_already_on_the_digest_is_up_to_date(store: Store) -> None:
    swarm = Swarm()
    swarm.document["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] = f"{REPO}:1@{NEW}"
    result = await updater(swarm, store).update("web")
    assert result.outcome is UpdateOutcome.UP_TO_DATE
    assert result.message == (
        f"service web already runs {REPO}:1 at sha256:222222222222; nothing was changed"
    )


async def test_a_service_goes_back_to_its_previous_spec_once(store: Store) -> None:
    swarm = Swarm("completed", "completed")
    up = updater(swarm, store)
    await up.update("web")
    rollbacks = Rollbacks(up)
    plan = await rollbacks.plan("web")
    assert plan is not None and (plan.running, plan.back_to) == (NEW, OLD)
    result = await rollbacks.rollback("web")
    assert result.outcome is RollbackOutcome.ROLLED_BACK, result.message
    assert (result.old_digest, result.new_digest) == (NEW, OLD)
    assert swarm.image() == f"{REPO}:1@{OLD}"
    # The spec it left is the one it rolled back from: no ping-pong.
    again = await rollbacks.rollback("web")
    assert again.outcome is RollbackOutcome.NOTHING

"""Service rollouts: how long to wait for one, and what the new spec changes."""

from __future__ import annotations

from typing import Any

import pytest

from bot.update.swarm_rollout import rollout_batches, with_image


def service(replicas: int | None = None, update_config: dict[str, Any] | None = None,
            **template: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"Name": "web", "TaskTemplate": template}
    if replicas is not None:
        spec["Mode"] = {"Replicated": {"Replicas": replicas}}
    if update_config is not None:
        spec["UpdateConfig"] = update_config
    return {"ID": "svc1", "Spec": spec}


@pytest.mark.parametrize(
    ("replicas", "update_config", "batches"),
    [
        (None, None, 1),  # one replica, the swarm's default policy
        (6, None, 6),  # default parallelism: one task at a time
        (6, {"Parallelism": 2}, 3),
        (7, {"Parallelism": 2}, 4),
        (6, {"Parallelism": 0}, 1),  # 0: all at once
        (0, {"Parallelism": 1}, 1),  # scaled to zero still gets one round
    ],
)
def test_rollout_waits_one_round_per_batch_of_tasks(
    replicas: int | None, update_config: dict[str, Any] | None, batches: int
) -> None:
    assert rollout_batches(service(replicas, update_config)) == batches


def test_new_template_changes_the_image_and_nothing_else() -> None:
    old = service(ContainerSpec={"Image": "app:1@sha256:aa", "Env": ["A=1"]},
                  RestartPolicy={"Condition": "any"})
    template = with_image(old, "app:1@sha256:bb")
    assert template == {"ContainerSpec": {"Image": "app:1@sha256:bb", "Env": ["A=1"]},
                        "RestartPolicy": {"Condition": "any"}}
    assert old["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "app:1@sha256:aa"

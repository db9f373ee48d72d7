"""Service rollouts: how long to wait for one, and what the new spec changes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.engines.swarm import ServiceInspect, parse_service
from bot.errors import MalformedInspect
from bot.update.swarm_rollout import rollout_batches, with_image


def service(replicas: int | None = None, update_config: dict[str, Any] | None = None,
            **template: Any) -> ServiceInspect:
    spec: dict[str, Any] = {"Name": "web", "TaskTemplate": template}
    if replicas is not None:
        spec["Mode"] = {"Replicated": {"Replicas": replicas}}
    if update_config is not None:
        spec["UpdateConfig"] = update_config
    return parse_service({"ID": "svc1", "Version": {"Index": 7}, "Spec": spec})


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
    assert old.task_template["ContainerSpec"] == {"Image": "app:1@sha256:aa", "Env": ["A=1"]}


def test_a_service_document_is_read_once_into_its_typed_view() -> None:
    view = parse_service({
        "ID": "svc1", "Version": {"Index": 12},
        "Spec": {"Name": "web", "Mode": {"Replicated": {"Replicas": 3}},
                 "UpdateConfig": {"Parallelism": 2},
                 "TaskTemplate": {"ContainerSpec": {"Image": "app:1@sha256:bb"}}},
        "PreviousSpec": {"TaskTemplate": {"ContainerSpec": {"Image": "app:1@sha256:aa"}}},
        "UpdateStatus": {"State": "completed", "StartedAt": "t1", "Message": "done"},
    })
    assert (view.id, view.name, view.version, view.image) == ("svc1", "web", 12, "app:1@sha256:bb")
    assert (view.replicas, view.parallelism, rollout_batches(view)) == (3, 2, 2)
    assert view.previous_template == {"ContainerSpec": {"Image": "app:1@sha256:aa"}}
    assert (view.update_state, view.update_started_at, view.update_message) == (
        "completed", "t1", "done")
    assert view.workload is not None and view.workload.repo_digests == ("app@sha256:bb",)


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({"Version": {"Index": 1}}, "ID"),
        ({"ID": "svc1"}, "Version.Index"),
        ({"ID": "svc1", "Version": {"Index": 1}, "Spec": {"TaskTemplate": ["x"]}},
         "Spec.TaskTemplate"),
    ],
)
def test_a_malformed_service_document_names_the_field(document: dict[str, Any], key: str) -> None:
    with pytest.raises(MalformedInspect, match=key):
        parse_service(document)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=4))
def test_the_task_template_is_kept_whole_and_apart_from_the_document(
    template: dict[str, Any]
) -> None:
    document = {"ID": "svc1", "Version": {"Index": 1}, "Spec": {"TaskTemplate": template}}
    expected = copy.deepcopy(template)
    view = parse_service(document)
    template.clear()
    assert view.task_template == expected

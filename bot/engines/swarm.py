"""Swarm services as Workloads, when the engine is a swarm manager, and as the typed view the
update path reads (`parse_service`, `parse_task`: the engine's documents parsed once).

A service spec usually carries `image:tag@sha256:...`: the swarm resolved the tag to that digest
when the service was created or last updated, so the digest is the local one and the tag is what
gets checked.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from bot.domain.model import Workload
from bot.domain.reference import split_digest, without_tag
from bot.engines.inspect import JsonValue
from bot.errors import MalformedInspect

log = logging.getLogger(__name__)

SERVICE_ID_LABEL = "com.docker.swarm.service.id"


def is_manager(info: dict[str, Any]) -> bool:
    """Whether /info says this engine manages a swarm (only managers can list services)."""
    swarm = info.get("Swarm") or {}
    return bool(swarm.get("ControlAvailable")) and swarm.get("LocalNodeState") == "active"


def service_name(service: Mapping[str, Any]) -> str:
    """The service's name (its id when the spec has none)."""
    return str((service.get("Spec") or {}).get("Name") or service["ID"])


def service_image(service: Mapping[str, Any]) -> str:
    """The image text of a service's spec (`repo:tag@sha256:...` as the swarm pinned it)."""
    return str(_container_spec(service).get("Image") or "")


def _container_spec(service: Mapping[str, Any]) -> dict[str, Any]:
    spec = service.get("Spec") or {}
    return dict((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {})


def service_workload(service: Mapping[str, Any]) -> Workload | None:
    """One service from the /services list as a Workload, or None when it has no image."""
    spec = service.get("Spec") or {}
    container_spec = _container_spec(service)
    image = service_image(service)
    if not image:
        return None
    name, digest = split_digest(image)
    repo_digests: tuple[str, ...] = ()
    if digest is not None and name != image:
        tagless = without_tag(name)
        if tagless == name:
            # Pinned by digest alone (`nginx@sha256:...`): keep it as written.
            name = image
        else:
            repo_digests = (f"{tagless}@{digest}",)
    # Service labels say what the operator meant for the service; container labels are a default.
    labels = {**(container_spec.get("Labels") or {}), **(spec.get("Labels") or {})}
    return Workload(
        name=service_name(service),
        id=service["ID"],
        image=name,
        image_id="",
        repo_digests=repo_digests,
        labels=labels,
        kind="service",
    )


def list_services(client: Any) -> list[Workload]:
    """The swarm's services through a docker.DockerClient; empty unless it is a manager."""
    if not is_manager(client.info()):
        return []
    workloads = []
    for service in client.api.services():
        workload = service_workload(service)
        if workload is not None:
            workloads.append(workload)
    return workloads


@dataclass(frozen=True)
class ServiceInspect:
    """What the update path knows of one swarm service (`docker service inspect`)."""

    id: str
    name: str
    version: int  # Version.Index: an update names the version it changes
    image: str  # the spec's image, `repo:tag@sha256:...` as the swarm pinned it
    workload: Workload | None  # the service as the checker sees it; None without an image
    task_template: Mapping[str, JsonValue]  # Spec.TaskTemplate, read-only
    previous_template: Mapping[str, JsonValue]  # PreviousSpec.TaskTemplate; empty without one
    replicas: int  # Spec.Mode.Replicated.Replicas (1 when unset or 0)
    parallelism: int  # Spec.UpdateConfig.Parallelism: the swarm's default 1; 0 is all at once
    update_state: str  # UpdateStatus.State; "" before the first update
    update_started_at: str | None
    update_message: str


@dataclass(frozen=True)
class ServiceTask:
    """One task of a service: the container it runs, when it has one yet."""

    id: str
    container_id: str | None


def parse_service(raw: Mapping[str, Any]) -> ServiceInspect:
    """The typed view of a service's inspect document; MalformedInspect when it cannot be."""
    service_id = raw.get("ID")
    if not isinstance(service_id, str) or not service_id:
        raise MalformedInspect("a service", "ID", "is not a non-empty string")
    what = f"service {service_id[:12]}"
    spec = raw.get("Spec") or {}
    version = (raw.get("Version") or {}).get("Index")
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedInspect(what, "Version.Index", "is not a whole number")
    replicated = (spec.get("Mode") or {}).get("Replicated") or {}
    status = raw.get("UpdateStatus") or {}
    # Checked first: the image and the workload are read from inside it.
    template = _frozen(spec.get("TaskTemplate"), what, "Spec.TaskTemplate")
    return ServiceInspect(
        id=service_id,
        name=service_name(raw),
        version=version,
        image=service_image(raw),
        workload=service_workload(raw),
        task_template=template,
        previous_template=_frozen(
            (raw.get("PreviousSpec") or {}).get("TaskTemplate"), what,
            "PreviousSpec.TaskTemplate",
        ),
        replicas=int(replicated.get("Replicas") or 1),
        parallelism=int((spec.get("UpdateConfig") or {}).get("Parallelism", 1) or 0),
        update_state=str(status.get("State") or ""),
        update_started_at=str(status["StartedAt"]) if status.get("StartedAt") else None,
        update_message=str(status.get("Message") or ""),
    )


def parse_task(raw: Mapping[str, Any]) -> ServiceTask:
    """The typed view of one entry of a service's task list."""
    container = ((raw.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
    return ServiceTask(str(raw.get("ID") or ""), str(container) if container else None)


def _frozen(value: object, what: str, key: str) -> Mapping[str, JsonValue]:
    """A sub-document kept whole: a private deep copy, read-only."""
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise MalformedInspect(what, key, "is not an object")
    return MappingProxyType(copy.deepcopy(dict(value)))

"""Swarm services as Workloads, when the engine is a swarm manager.

A service spec usually carries `image:tag@sha256:...`: the swarm resolved the tag to that digest
when the service was created or last updated, so the digest is the local one and the tag is what
gets checked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot.domain.model import Workload
from bot.domain.reference import split_digest, without_tag

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

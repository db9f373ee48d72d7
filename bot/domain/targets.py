"""Containers named across several Docker hosts: `HOST/NAME`, or a bare `NAME`.

A bare name stands for the one container of that name on any watched host; when several hosts
have it, the answer names the candidates (`a/web, b/web`) for the user to pick. Pure: the caller
passes the hosts it watches and the (host, name) pairs that exist.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from bot.errors import AmbiguousTarget, ContainerNotFound, UnknownHost, UsageError

# A host's name in DOCKWARDEN_HOSTS; no `/` (it separates host and name) and no `=`.
HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Docker's own container names (and Swarm service names, and ids, which are hex).
CONTAINER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Target:
    """A container as a user named it: on `host`, or on whichever host has it (None)."""

    name: str
    host: str | None = None

    def __str__(self) -> str:
        return self.name if self.host is None else f"{self.host}/{self.name}"


def is_host_name(text: str) -> bool:
    """Whether `text` can name a Docker host (a letter or digit, then also `.`, `_`, `-`)."""
    return HOST_NAME.fullmatch(text) is not None


def parse_target(text: str) -> Target:
    """`HOST/NAME` or `NAME` as a Target; UsageError when it is neither."""
    stripped = text.strip()
    host, sep, name = stripped.rpartition("/")
    if sep and not is_host_name(host):
        raise UsageError(f"{stripped!r} is not HOST/NAME: {host!r} cannot name a host")
    if CONTAINER_NAME.fullmatch(name) is None:
        raise UsageError(f"{stripped!r} is not a container name (letters, digits, '.', '_', '-')")
    return Target(name, host if sep else None)


def resolve_target(
    target: Target, hosts: Collection[str], existing: Iterable[tuple[str, str]]
) -> tuple[str, str]:
    """The (host, name) `target` means among the `existing` pairs on the watched `hosts`."""
    # UnknownHost for a host not watched, ContainerNotFound when no host has the name,
    # AmbiguousTarget naming the candidates when a bare name is on several hosts.
    if target.host is not None and target.host not in hosts:
        raise UnknownHost(target.host, tuple(hosts))
    found = sorted({
        (host, name) for host, name in existing
        if name == target.name and target.host in (None, host)
    })
    if not found:
        raise ContainerNotFound(str(target))
    if len(found) > 1:
        raise AmbiguousTarget(target.name, tuple(f"{host}/{name}" for host, name in found))
    return found[0]

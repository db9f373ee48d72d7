"""Containers named across several Docker hosts: `HOST/NAME`, or a bare `NAME`.

A bare name stands for the one container of that name on any watched host; when several hosts
have it, the answer names the candidates (`a/web, b/web`) for the user to pick. Pure: the caller
passes the hosts it watches and the (host, name) pairs that exist.

A container's *key* is how DockWarden names it everywhere else (store rows, alerts, buttons,
journals, history): its bare name when one host is watched, `HOST/NAME` when several are, so one
host's `web` is never taken for another's.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from bot.errors import AmbiguousTarget, ContainerNotFound, UnknownHost, UsageError

LOCAL_HOST = "local"  # the one host's name when DOCKWARDEN_HOSTS is unset

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


def container_key(host: str, name: str, *, several: bool) -> str:
    """The key of container `name` on `host`: `HOST/NAME` when several hosts are watched."""
    return f"{host}/{name}" if several else name


def split_key(key: str) -> tuple[str | None, str]:
    """A key's host (None for a bare name) and container name."""
    host, sep, name = key.rpartition("/")
    return (host, name) if sep else (None, key)


def resolve_key(text: str, keys: Iterable[str]) -> str:
    """The key among `keys` that `text` names: itself, or the one `HOST/NAME` whose name it is.

    AmbiguousTarget when several hosts' keys have that name; `text` unchanged when no key does
    (the caller then says there is nothing for it).
    """
    known = set(keys)
    if text in known or split_key(text)[0] is not None:
        return text
    found = sorted(k for k in known if "/" in k and split_key(k)[1] == text)
    if len(found) > 1:
        raise AmbiguousTarget(text, tuple(found))
    return found[0] if found else text


@dataclass(frozen=True)
class HostScope:
    """One host's side of the keys: what the updater of that host writes and settles."""

    host: str = LOCAL_HOST
    several: bool = False

    def key(self, name: str) -> str:
        """The key of this host's container `name`."""
        return container_key(self.host, name, several=self.several)

    def name(self, key: str) -> str:
        """The engine's name for one of this host's keys (a bare name is taken as it is)."""
        host, name = split_key(key)
        return name if host in (None, self.host) else key

    def owns(self, key: str) -> bool:
        """Whether `key` (a journal's, a history row's) is one of this host's containers."""
        host = split_key(key)[0]
        return host == self.host if self.several else host is None


ONE_HOST = HostScope()  # the scope where one host is watched: keys are bare names

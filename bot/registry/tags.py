"""Tag lists for a check pass: one listing per repository, however many containers use it.

The listing itself (`RegistryClient.tags`: `GET /v2/<repo>/tags/list?n=`, `Link` pages followed
whatever `n` was asked, pull scope, 429, deadlines and body caps as for manifests) lives in the
client; this module only spreads one pass's repositories over it, concurrently, failures kept
as values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Protocol

import httpx

from bot.domain.reference import ImageRef
from bot.errors import BadResponse, RegistryError

# Tags asked for per page. Registries cap pages on their side (Docker Hub: 100), and
# distribution 2.x answers everything at once whatever is asked; Link is followed either way.
PAGE_SIZE = 1000

Repository = tuple[str, str]  # (registry, repository)


class TagLister(Protocol):
    """What listing needs of a registry client (RegistryClient is the real one)."""

    async def tags(self, ref: ImageRef, *, page_size: int | None = None) -> list[str]: ...


def repository_of(ref: ImageRef) -> Repository:
    """The key a repository's tag list is kept under."""
    return (ref.registry, ref.repository)


async def list_tags(
    client: TagLister, refs: Iterable[ImageRef], *, page_size: int = PAGE_SIZE
) -> dict[Repository, list[str] | RegistryError]:
    """Every tag of each distinct repository among `refs`; a failure is that repository's value."""
    wanted: dict[Repository, ImageRef] = {}
    for ref in refs:
        wanted.setdefault(repository_of(ref), ref)
    found: dict[Repository, list[str] | RegistryError] = {}

    async def one(key: Repository, ref: ImageRef) -> None:
        try:
            found[key] = await client.tags(ref, page_size=page_size)
        except RegistryError as error:
            found[key] = error

    await asyncio.gather(*(one(key, ref) for key, ref in wanted.items()))
    return found


def tags_of(
    lists: Mapping[Repository, list[str] | RegistryError], ref: ImageRef
) -> list[str] | RegistryError | None:
    """The listing of `ref`'s repository, if one was made."""
    return lists.get(repository_of(ref))


def next_page(registry: str, current: httpx.URL, link: str) -> str:
    """The URL a Link points to, relative to the page read; it must stay on the registry's
    origin, since the request carries the registry's credentials (raises BadResponse)."""
    target = current.join(link)
    if (target.scheme, target.netloc) != (current.scheme, current.netloc):
        raise BadResponse(
            f"{registry} announced a next page of tags on another host ({target.host})",
            registry=registry,
        )
    return str(target)

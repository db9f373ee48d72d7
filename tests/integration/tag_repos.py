"""Repositories with version tags in the test registries, for the newer-version tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import httpx

from bot.registry.manifests import MANIFEST_ACCEPT
from tests.services.images import ImageFactory, registry_headers
from tests.services.registry import RegistryService

TAGS = ("1.2.3", "1.2.4", "1.3.0", "1.3.1-rc1", "2.0.0", "1.2.5-alpine", "latest")
# Tags pushed as images of their own (distinct digests); the others name one of these.
DISTINCT = ("1.2.3", "1.2.4", "1.3.0", "2.0.0")

_names = itertools.count()


def unique(stem: str) -> str:
    """A repository name no other test uses."""
    return f"tags/{stem}-{next(_names)}"


def copy_tag(registry: RegistryService, repository: str, source: str, tags: Iterable[str]) -> None:
    """Make `tags` name the manifest `source` names (no image pushed: a manifest PUT each)."""
    headers = registry_headers(registry, repository)
    with httpx.Client(base_url=registry.url, headers=headers, timeout=30) as http:
        got = http.get(f"/v2/{repository}/manifests/{source}", headers={"Accept": MANIFEST_ACCEPT})
        got.raise_for_status()
        for tag in tags:
            put = http.put(f"/v2/{repository}/manifests/{tag}", content=got.content,
                           headers={"Content-Type": got.headers["Content-Type"]})
            if put.status_code != 201:
                raise RuntimeError(f"manifest put failed: {put.status_code} {put.text}")


def push_versions(images: ImageFactory, registry: RegistryService, repository: str,
                  **options: object) -> dict[str, str]:
    """Push TAGS to `repository`: DISTINCT as images of their own; tag -> digest of those."""
    digests = {}
    for version, tag in enumerate(DISTINCT, start=1):
        digests[tag] = images.push(registry, repository, tag, version=version, **options)
    copy_tag(registry, repository, "1.2.3", [t for t in TAGS if t not in DISTINCT])
    return digests


_shared: dict[str, tuple[str, dict[str, str]]] = {}


def shared_versions(images: ImageFactory, registry: RegistryService) -> tuple[str, dict[str, str]]:
    """One repository of TAGS per registry for the whole session: (repository, tag -> digest)."""
    if registry.host not in _shared:
        repository = unique("versions")
        _shared[registry.host] = (repository, push_versions(images, registry, repository))
    return _shared[registry.host]

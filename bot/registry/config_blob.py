"""An image's config from the registry: the manifest (for the engine's platform, from an index),
then its config blob — the JSON whose `config.Labels` and `created` say what the image is.

Every body is checked against the digest it was asked by: a registry cannot make DockWarden
show a version the image does not carry. A blob may be served by a redirect to storage on
another host; the exchange follows it without our Authorization header.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bot.domain.reference import ImageRef
from bot.errors import BadResponse, ManifestNotFound
from bot.registry.manifests import MANIFEST_ACCEPT, digest_of, is_valid_digest

Get = Callable[[str, str, str | None], Awaitable[httpx.Response]]  # (url, kind, accept)


@dataclass(frozen=True)
class Platform:
    """The engine's platform, as an index names it (Docker's `version`: Os, Arch)."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None


def _checked(registry: str, response: httpx.Response, digest: str, what: str) -> Any:
    """The JSON body of an answer that must hash to `digest`."""
    if response.status_code == 404:
        raise ManifestNotFound(f"{what} {digest[:19]} is not in {registry}", registry=registry)
    if response.status_code != 200:
        raise BadResponse(
            f"{registry} answered HTTP {response.status_code} for {what}", registry=registry
        )
    algorithm = digest.partition(":")[0]
    try:
        matches = digest_of(response.content, algorithm) == digest
    except ValueError:
        matches = True  # an algorithm we cannot compute: take the registry's word
    if not matches:
        raise BadResponse(f"{registry} sent a {what} that is not {digest[:19]}", registry=registry)
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise BadResponse(f"{registry} sent a {what} that is not a JSON object", registry=registry)
    return data


def pick_platform(manifests: Sequence[Any], platform: Platform) -> str | None:
    """The digest of an index entry for the platform (the variant decides between several)."""
    found: list[tuple[str, str | None]] = []
    for entry in manifests:
        if not isinstance(entry, Mapping):
            continue
        wanted = entry.get("platform")
        digest = entry.get("digest")
        if not isinstance(wanted, Mapping) or not isinstance(digest, str):
            continue
        if (wanted.get("os"), wanted.get("architecture")) == (platform.os, platform.architecture):
            variant = wanted.get("variant")
            found.append((digest, variant if isinstance(variant, str) else None))
    for digest, variant in found:
        if platform.variant is None or variant in (None, platform.variant):
            return digest
    return found[0][0] if found else None


async def read_config(
    registry: str, base: str, ref: ImageRef, digest: str, platform: Platform, get: Get
) -> dict[str, Any]:
    """The config blob of the image at `digest` (raises RegistryError)."""
    manifests = f"{base}/v2/{ref.repository}/manifests"
    manifest = _checked(
        registry, await get(f"{manifests}/{digest}", "get", MANIFEST_ACCEPT), digest, "manifest"
    )
    if isinstance(manifest.get("manifests"), list):  # an index: the engine's platform's entry
        chosen = pick_platform(manifest["manifests"], platform)
        if chosen is None or not is_valid_digest(chosen):
            raise BadResponse(
                f"{ref} has no image for {platform.os}/{platform.architecture}", registry=registry
            )
        manifest = _checked(
            registry, await get(f"{manifests}/{chosen}", "get", MANIFEST_ACCEPT), chosen,
            "manifest",
        )
    config = manifest.get("config")
    blob = config.get("digest") if isinstance(config, Mapping) else None
    if not isinstance(blob, str) or not is_valid_digest(blob):
        raise BadResponse(f"the manifest of {ref} names no config", registry=registry)
    response = await get(f"{base}/v2/{ref.repository}/blobs/{blob}", "blob", None)
    result: dict[str, Any] = _checked(registry, response, blob, "config blob")
    return result

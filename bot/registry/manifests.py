"""Manifest media types and content digests."""

from __future__ import annotations

import hashlib
import json
import re

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

# Without the list types registry:2 and Docker Hub answer with the amd64 manifest and its
# digest, which never matches what `docker pull` recorded for a multi-arch image.
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))

_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_LOWER_HEX = re.compile(r"[0-9a-f]+")
_HASH_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


def is_valid_digest(value: str | None) -> bool:
    """Whether the text is a well-formed content digest (known algorithms: right hex length)."""
    if not value or not _DIGEST.fullmatch(value):
        return False
    algorithm, _, encoded = value.partition(":")
    length = _HASH_LENGTHS.get(algorithm)
    if length is None:
        return True
    return len(encoded) == length and _LOWER_HEX.fullmatch(encoded) is not None


def digest_of(body: bytes, algorithm: str = "sha256") -> str:
    """The content digest of exactly these bytes."""
    return f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"


def looks_like_manifest(body: bytes) -> bool:
    """Whether the bytes are a JSON object, as every manifest and index is."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and ("schemaVersion" in data or "mediaType" in data)

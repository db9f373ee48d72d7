"""Media types asked for and digests computed."""

from __future__ import annotations

import hashlib

import pytest

from bot.registry.manifests import MANIFEST_ACCEPT, digest_of, is_valid_digest, looks_like_manifest


def test_accept_lists_both_index_types_and_both_manifest_types() -> None:
    offered = [part.strip() for part in MANIFEST_ACCEPT.split(",")]
    assert offered == [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]


def test_digest_is_sha256_of_the_exact_bytes() -> None:
    body = b'{"schemaVersion": 2}\n'
    assert digest_of(body) == "sha256:" + hashlib.sha256(body).hexdigest()
    assert digest_of(body, "sha512") == "sha512:" + hashlib.sha512(body).hexdigest()


@pytest.mark.parametrize(
    "value",
    ["sha256:" + "a" * 64, "sha512:" + "0" * 128, "blake3:abcdef", "sha256+b64u:LCa0a2j_xo_5m0U8"],
)
def test_well_formed_digests_are_valid(value: str) -> None:
    assert is_valid_digest(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "sha256:",
        "sha256:abc",
        "sha256:" + "A" * 64,
        "sha256:" + "g" * 64,
        "abc",
        "<html>",
        "sha256:" + "a" * 64 + "\n",
    ],
)
def test_malformed_digests_are_invalid(value: str | None) -> None:
    assert not is_valid_digest(value)


def test_manifest_bodies_are_json_objects_with_a_schema_version_or_media_type() -> None:
    assert looks_like_manifest(b'{"schemaVersion": 2, "manifests": []}')
    assert looks_like_manifest(b'{"mediaType": "x"}')
    assert not looks_like_manifest(b"<html>\x00\xffnot a registry")
    assert not looks_like_manifest(b"[1, 2]")
    assert not looks_like_manifest(b"{}")

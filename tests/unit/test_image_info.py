"""What images say about themselves: labels read, links made, platforms picked."""

from __future__ import annotations

from bot.check.image_info import ImageInfo, brings, source_link
from bot.registry.config_blob import Platform, pick_platform

GH = "https://github.com/owner/app"


def test_labels_and_build_time_are_read_from_a_config_blob() -> None:
    info = ImageInfo.from_config({
        "created": "2026-01-02T03:04:05Z",
        "config": {"Labels": {"org.opencontainers.image.version": "1.2.3\n",
                              "org.opencontainers.image.revision": "abc"}},
    })
    assert info == ImageInfo(version="1.2.3", revision="abc", created="2026-01-02T03:04:05Z")
    assert ImageInfo.from_config({"config": None}) == ImageInfo()
    assert ImageInfo.from_json(info.to_json()) == info
    assert ImageInfo.from_json("not json") == ImageInfo()


def test_github_compare_link_needs_both_revisions_else_release_or_repository() -> None:
    old = ImageInfo(revision="aaa")
    assert source_link(ImageInfo(source=GH + ".git", revision="bbb"), old) == (
        f"{GH}/compare/aaa...bbb"
    )
    assert source_link(ImageInfo(source=GH, version="v2", revision="bbb"), None) == (
        f"{GH}/releases/tag/v2"
    )
    assert source_link(ImageInfo(source=GH), old) == GH
    assert source_link(ImageInfo(source="https://gitlab.example/app"), old) == (
        "https://gitlab.example/app"
    )
    assert source_link(ImageInfo(source="javascript:alert(1)"), old) is None


def test_brings_says_only_what_the_images_say() -> None:
    assert brings(None, ImageInfo()) == {}
    assert brings(ImageInfo(version="1"), ImageInfo(version="2")) == {
        "from_version": "1", "to_version": "2"}


def test_index_entry_for_the_engine_platform_and_variant() -> None:
    entries = [
        {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
        {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"digest": "sha256:c", "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:d", "platform": {"os": "unknown", "architecture": "unknown"}},
    ]
    assert pick_platform(entries, Platform()) == "sha256:c"
    assert pick_platform(entries, Platform(architecture="arm", variant="v7")) == "sha256:b"
    assert pick_platform(entries, Platform(architecture="arm")) == "sha256:a"
    assert pick_platform(entries, Platform(architecture="s390x")) is None

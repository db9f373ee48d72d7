"""Newer version tags in a check pass, against the real engine and the real registries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.check.checker import Checker
from bot.domain.model import CheckResult, CheckStatus
from bot.domain.versions import Level
from bot.engines.docker import DockerEngine
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from tests.integration.tag_repos import shared_versions
from tests.services.images import ImageFactory
from tests.services.registry import Registries


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[RegistryClient]:
    config = tmp_path / "docker-config"
    config.mkdir()
    async with RegistryClient(credentials=DockerCredentials(str(config))) as client:
        yield client


@pytest.fixture(scope="module")
def versions(images: ImageFactory, registries: Registries) -> tuple[str, dict[str, str]]:
    """(reference without tag, tag -> digest) of a repository holding the version tags."""
    repository, digests = shared_versions(images, registries.anonymous)
    return f"{registries.anonymous.host}/{repository}", digests


async def _check(engine: DockerEngine, registry: RegistryClient, names: list[str],
                 semver: Level | None = None) -> dict[str, CheckResult]:
    checker = Checker(engine, registry, label_enable=False, default_policy="approve",
                      semver=semver)
    return {r.container: r for r in (await checker.check(names)).results}


async def test_each_level_gets_its_newest_tag_from_one_listing(
    engine: DockerEngine, registry: RegistryClient, containers: Any,
    versions: tuple[str, dict[str, str]],
) -> None:
    name, digests = versions
    running = {
        level: containers.run(f"{name}:1.2.3", labels={"dockwarden.semver": level})
        for level in ("patch", "minor", "major")
    }
    plain = containers.run(f"{name}:1.2.3")
    results = await _check(engine, registry, [c.name for c in (*running.values(), plain)])

    for level, new_tag in (("patch", "1.2.4"), ("minor", "1.3.0"), ("major", "2.0.0")):
        result = results[running[level].name]
        assert result.status is CheckStatus.UPDATE_AVAILABLE
        assert (result.new_tag, result.remote_digest) == (new_tag, digests[new_tag])
        assert result.local_digest == digests["1.2.3"]
        assert result.as_json()["new_tag"] == new_tag
    assert results[plain.name].status is CheckStatus.UP_TO_DATE
    assert results[plain.name].as_json()["new_tag"] is None
    # One listing for the repository; one HEAD for the running tag and one per proposed tag.
    assert registry.stats["tags"] == 1
    assert registry.stats["head"] == 4


async def test_default_level_applies_and_no_rule_costs_no_listing(
    engine: DockerEngine, registry: RegistryClient, containers: Any,
    versions: tuple[str, dict[str, str]],
) -> None:
    name, digests = versions
    plain = containers.run(f"{name}:1.2.3")
    alpine = containers.run(f"{name}:1.2.5-alpine")
    results = await _check(engine, registry, [plain.name, alpine.name])
    assert registry.stats["tags"] == 0
    assert all(r.new_tag is None for r in results.values())

    results = await _check(engine, registry, [plain.name, alpine.name], semver=Level.MINOR)
    assert results[plain.name].new_tag == "1.3.0"
    # Only -alpine tags follow -alpine, and there is none newer; pre-releases are never offered.
    assert results[alpine.name].new_tag is None
    assert results[alpine.name].status is CheckStatus.UP_TO_DATE
    assert registry.stats["tags"] == 1


async def test_bad_include_regex_is_that_container_s_error_not_the_pass_s(
    engine: DockerEngine, registry: RegistryClient, containers: Any,
    versions: tuple[str, dict[str, str]],
) -> None:
    name, _ = versions
    bad = containers.run(f"{name}:1.2.3", labels={"dockwarden.semver": "minor",
                                                  "dockwarden.tags.include": "1.(2"})
    good = containers.run(f"{name}:1.2.3", labels={"dockwarden.semver": "minor"})
    results = await _check(engine, registry, [bad.name, good.name])
    assert results[bad.name].status is CheckStatus.ERROR
    assert results[bad.name].error is not None
    assert results[bad.name].error.kind == "bad_rule"
    assert "dockwarden.tags.include" in results[bad.name].error.message
    assert results[good.name].new_tag == "1.3.0"

"""What an update brings, read from images carrying OCI labels in the real registries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest

from bot.check.checker import Checker
from bot.check.image_info import Describer, StoreCache, engine_platform, local_inspect
from bot.domain.model import CheckStatus
from bot.engines.docker import DockerEngine
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from bot.store.db import Store
from bot.usecases.alerting import Alerter
from tests.integration.tag_repos import unique
from tests.services.images import ImageFactory
from tests.services.registry import Registries

SOURCE = "https://github.com/example/app"


def _labels(version: str, revision: str, created: str) -> dict[str, str]:
    return {
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.source": SOURCE,
    }


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[RegistryClient]:
    config = tmp_path / "docker-config"
    config.mkdir()
    async with RegistryClient(credentials=DockerCredentials(str(config))) as client:
        yield client


def _checker(engine: DockerEngine, registry: RegistryClient, db: Store) -> Checker:
    describer = Describer(registry, StoreCache(db), platform=lambda: engine_platform(engine),
                          local=lambda reference: local_inspect(engine, reference))
    return Checker(engine, registry, label_enable=False, default_policy="approve",
                   describer=describer)


def _outdated(client: docker.DockerClient, images: ImageFactory, registry: Any,
              repository: str, v1: dict[str, Any], v2: dict[str, Any]) -> str:
    """Push v1 then v2 under tag 1; the engine keeps v1 under it. Returns the reference."""
    name = f"{registry.host}/{repository}"
    images.push(registry, repository, "1", version=1, **v1)
    old_id = client.images.get(f"{name}:1").id
    images.push(registry, repository, "1", version=2, **v2)
    client.images.remove(f"{name}:1")
    client.api.tag(old_id, name, "1")
    return f"{name}:1"


async def test_update_shows_versions_build_date_revision_and_a_compare_link_read_once(
    engine: DockerEngine, registry: RegistryClient, db: Store, images: ImageFactory,
    registries: Registries, containers: Any, docker_client: docker.DockerClient,
) -> None:
    reference = _outdated(docker_client, images, registries.anonymous, unique("oci"),
                          dict(labels=_labels("1.2.3", "aaa111", "2026-11-01T10:00:00Z")),
                          dict(labels=_labels("1.3.0", "bbb222", "2026-11-20T10:00:00Z")))
    running = containers.run(reference)
    checker = _checker(engine, registry, db)

    [result] = (await checker.check([running.name])).results
    assert result.status is CheckStatus.UPDATE_AVAILABLE
    assert (result.current_version, result.new_version) == ("1.2.3", "1.3.0")
    assert result.as_json()["new_version"] == "1.3.0"
    # The running image was asked of the engine; the new one's manifest and config once.
    assert (registry.stats["get"], registry.stats["blob"]) == (1, 1)

    report = await checker.check([running.name])
    assert report.results[0].new_version == "1.3.0"
    assert (registry.stats["get"], registry.stats["blob"]) == (1, 1)  # kept in the store

    [alert] = Alerter(db).observe(report).alerts
    fields = {f.name: f.value for f in alert.fields}
    assert fields["Version"] == "1.2.3 → 1.3.0"
    assert fields["Built"] == "2026-11-20T10:00:00Z"
    assert fields["Revision"] == "bbb222"
    assert fields["Source"] == f"{SOURCE}/compare/aaa111...bbb222"
    update = db.get_update(alert.update_id or "")
    assert update is not None and json.loads(update.brings)["to_version"] == "1.3.0"


async def test_an_index_is_read_for_the_engine_s_platform_and_unlabelled_images_say_nothing(
    engine: DockerEngine, registry: RegistryClient, db: Store, images: ImageFactory,
    registries: Registries, containers: Any, docker_client: docker.DockerClient,
) -> None:
    anon = registries.anonymous
    repository = unique("index")
    images.push_multiarch(anon, repository, "1", version=1)
    images.pull(anon, repository, "1")
    running = containers.run(f"{anon.host}/{repository}:1", command=["sleep", "86400"])
    new_digest = images.push_multiarch(anon, repository, "1", version=2)

    [result] = (await _checker(engine, registry, db).check([running.name])).results
    assert result.status is CheckStatus.UPDATE_AVAILABLE and result.remote_digest == new_digest
    assert (result.current_version, result.new_version) == (None, None)
    # The index, the platform's manifest, its config: and the config was kept.
    assert (registry.stats["get"], registry.stats["blob"]) == (2, 1)
    assert StoreCache(db).get(new_digest) is not None


async def test_a_config_blob_redirected_to_another_host_is_followed(
    registry: RegistryClient, images: ImageFactory, registries: Registries,
    odd_registry: Any,
) -> None:
    import httpx

    from bot.domain.reference import parse_reference
    from bot.registry.config_blob import Platform
    from bot.registry.manifests import MANIFEST_ACCEPT

    anon = registries.anonymous
    repository = unique("redirect")
    digest = images.push(anon, repository, "1", version=1,
                         labels=_labels("4.5.6", "ccc", "2026-11-03T00:00:00Z"))
    manifest = httpx.get(f"{anon.url}/v2/{repository}/manifests/{digest}",
                         headers={"Accept": MANIFEST_ACCEPT}).json()
    blob = manifest["config"]["digest"]
    # Storage elsewhere, as S3 or a CDN behind Docker Hub: another host and port.
    odd_registry.redirect("/blobs/", f"{anon.url}/v2/{repository}/blobs/{blob}")

    ref = parse_reference(f"{odd_registry.host}/{repository}:1")
    config = await registry.image_config(ref, digest, Platform())

    assert config["config"]["Labels"]["org.opencontainers.image.version"] == "4.5.6"
    assert [r.status for r in odd_registry.requests if "/blobs/" in r.path] == [307]

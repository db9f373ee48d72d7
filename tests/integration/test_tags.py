"""Tag listings against the real registries: every tag, pages, one listing per repository, scope."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.domain.reference import ImageRef, parse_reference
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from tests.integration.tag_repos import TAGS, copy_tag, shared_versions, unique
from tests.services.images import ImageFactory
from tests.services.odd_registry import OddRegistry
from tests.services.registry import Registries

MakeClient = Callable[..., RegistryClient]


@pytest.fixture(name="make_client")
async def _make_client(docker_config: Callable[..., str]) -> AsyncIterator[MakeClient]:
    made: list[RegistryClient] = []

    def make(auths: dict[str, Any] | None = None) -> RegistryClient:
        client = RegistryClient(credentials=DockerCredentials(docker_config(auths or {})))
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture(scope="module")
def versions_repo(images: ImageFactory, registries: Registries) -> str:
    """A repository of the anonymous registry holding TAGS."""
    return shared_versions(images, registries.anonymous)[0]


def _ref(host: str, repository: str, tag: str = "1.2.3") -> ImageRef:
    return parse_reference(f"{host}/{repository}:{tag}")


async def test_listing_gives_every_tag_in_one_request(
    versions_repo: str, registries: Registries, make_client: MakeClient
) -> None:
    client = make_client()
    lists = await client.tag_lists([_ref(registries.anonymous.host, versions_repo)])
    assert sorted(lists[(registries.anonymous.host, versions_repo)]) == sorted(TAGS)  # type: ignore[arg-type]
    assert client.stats["tags"] == 1


async def test_pages_are_followed_by_link_whatever_n_was_asked(
    versions_repo: str, odd_registry: OddRegistry, make_client: MakeClient
) -> None:
    odd_registry.tag_pages = 2  # the registry caps pages at 2 tags although 1000 are asked
    client = make_client()
    ref = _ref(odd_registry.host, versions_repo)
    lists = await client.tag_lists([ref])
    assert sorted(lists[(odd_registry.host, versions_repo)]) == sorted(TAGS)  # type: ignore[arg-type]
    assert client.stats["tags"] == 4  # 7 tags, 2 a page
    paths = [r.path for r in odd_registry.requests if "/tags/list" in r.path]
    assert paths[0].endswith("?n=1000") and "last=" in paths[-1]


async def test_one_listing_per_repository_however_many_references(
    versions_repo: str, registries: Registries, make_client: MakeClient
) -> None:
    client = make_client()
    host = registries.anonymous.host
    refs = [_ref(host, versions_repo, tag) for tag in ("1.2.3", "1.3.0", "latest")]
    lists = await client.tag_lists(refs)
    assert list(lists) == [(host, versions_repo)]
    assert client.stats["tags"] == 1


async def test_token_registry_lists_tags_with_the_pull_scope(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    registry = registries.token
    repository = unique("token")
    images.push(registry, repository, "1.0.0", version=1)
    copy_tag(registry, repository, "1.0.0", ["1.0.1", "1.1.0"])
    seen = len(registry.token_requests)
    client = make_client({registry.host: {"username": registry.username or "",
                                          "password": registry.password or ""}})
    lists = await client.tag_lists([_ref(registry.host, repository, "1.0.0")])
    assert sorted(lists[(registry.host, repository)]) == ["1.0.0", "1.0.1", "1.1.0"]  # type: ignore[arg-type]
    scopes = {s for r in registry.token_requests[seen:] for s in r.scopes}
    assert scopes == {f"repository:{repository}:pull"}


async def test_a_missing_repository_is_that_repository_s_error_only(
    versions_repo: str, registries: Registries, make_client: MakeClient
) -> None:
    client = make_client()
    host = registries.anonymous.host
    lists = await client.tag_lists([_ref(host, versions_repo), _ref(host, unique("none"))])
    errors = [v for v in lists.values() if not isinstance(v, list)]
    assert len(errors) == 1 and errors[0].kind == "not_found"
    assert isinstance(lists[(host, versions_repo)], list)


async def test_a_429_on_the_listing_is_waited_out_as_for_manifests(
    versions_repo: str, odd_registry: OddRegistry, make_client: MakeClient
) -> None:
    client = make_client()
    await client.tag_lists([_ref(odd_registry.host, versions_repo)])  # the ping is behind us
    odd_registry.rate_limit(1, retry_after="0")
    lists = await client.tag_lists([_ref(odd_registry.host, versions_repo)])
    assert sorted(lists[(odd_registry.host, versions_repo)]) == sorted(TAGS)  # type: ignore[arg-type]
    assert (client.stats["rate_limited"], client.stats["tags"]) == (1, 3)

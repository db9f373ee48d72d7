"""The registry client against real registries: every auth mode, odd registries, dead ones."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from bot.domain.reference import ImageRef, parse_reference
from bot.errors import (
    AuthFailed,
    BadResponse,
    ManifestNotFound,
    RateLimited,
    RegistryUnreachable,
    UnsupportedChallenge,
)
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from tests.services.images import ImageFactory, registry_headers
from tests.services.odd_registry import OddRegistry
from tests.services.registry import DeadRegistry, Registries, RegistryService

_names = itertools.count()

MakeClient = Callable[..., RegistryClient]


def unique(stem: str) -> str:
    """A repository name no other test uses (tests share the session's registries)."""
    return f"rc/{stem}-{next(_names)}"


def ref(host: str, repository: str, tag: str = "v1") -> ImageRef:
    return parse_reference(f"{host}/{repository}:{tag}")


def login(registry: RegistryService, **override: str) -> dict[str, dict[str, str]]:
    """A config.json `auths` entry with the registry's user."""
    entry = {"username": registry.username or "", "password": registry.password or ""}
    entry.update(override)
    return {registry.host: entry}


@pytest.fixture(name="make_client")
async def _make_client(docker_config: Callable[..., str]) -> AsyncIterator[MakeClient]:
    """make_client(auths=None, **options): an entered RegistryClient, closed after the test."""
    made: list[RegistryClient] = []

    def make(auths: dict[str, Any] | None = None, **options: Any) -> RegistryClient:
        credentials = DockerCredentials(docker_config(auths or {}))
        client = RegistryClient(credentials=credentials, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


# ---- auth modes ---------------------------------------------------------------------------


async def test_anonymous_registry_gives_the_pushed_digest(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    repository = unique("anon")
    pushed = images.push(registries.anonymous, repository, "v1", version=1)
    client = make_client()
    assert await client.remote_digest(ref(registries.anonymous.host, repository)) == pushed
    assert client.stats["head"] == 1
    assert client.stats["get"] == 0
    assert client.stats["token"] == 0


async def test_basic_registry_with_stored_credentials(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    repository = unique("basic")
    pushed = images.push_multiarch(registries.basic, repository, "v1")
    client = make_client(login(registries.basic))
    assert await client.remote_digest(ref(registries.basic.host, repository)) == pushed
    # The ping told us Basic: the HEAD carries it at once, no 401 round trip.
    assert client.stats["head"] == 1


async def test_basic_registry_without_credentials_says_to_docker_login(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    repository = unique("basic-nologin")
    images.push_multiarch(registries.basic, repository, "v1")
    client = make_client()
    with pytest.raises(AuthFailed, match="docker login") as caught:
        await client.remote_digest(ref(registries.basic.host, repository))
    assert caught.value.registry == registries.basic.host
    assert caught.value.repository == repository
    assert caught.value.kind == "auth_failed"


async def test_bearer_without_credentials_reads_a_public_repository(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    repository = f"public/{unique('pub').removeprefix('rc/')}"
    pushed = images.push_multiarch(registries.token, repository, "v1")
    token_server = registries.token.token_requests
    before = len(token_server)
    client = make_client()
    assert await client.remote_digest(ref(registries.token.host, repository)) == pushed
    asked = token_server[before:]
    assert [(r.method, r.scopes, r.user) for r in asked] == [
        ("GET", (f"repository:{repository}:pull",), None)
    ]


async def test_bearer_with_credentials_reads_a_private_repository(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    repository = unique("priv")
    pushed = images.push_multiarch(registries.token, repository, "v1")
    before = len(registries.token.token_requests)
    client = make_client(login(registries.token))
    assert await client.remote_digest(ref(registries.token.host, repository)) == pushed
    asked = registries.token.token_requests[before:]
    assert [(r.method, r.user) for r in asked] == [("GET", registries.token.username)]


async def test_identitytoken_is_exchanged_with_an_oauth2_refresh_post(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    repository = unique("identity")
    pushed = images.push_multiarch(registries.token, repository, "v1")
    identity = registries.token.identity_token
    assert identity
    before = len(registries.token.token_requests)
    client = make_client({registries.token.host: {"identitytoken": identity}})
    assert await client.remote_digest(ref(registries.token.host, repository)) == pushed
    asked = registries.token.token_requests[before:]
    assert [(r.method, r.scopes, r.user) for r in asked] == [
        ("POST", (f"repository:{repository}:pull",), registries.token.username)
    ]


@pytest.mark.parametrize("which", ["basic", "token"])
async def test_wrong_credentials_give_auth_failed_without_the_password(
    which: str, images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    registry: RegistryService = getattr(registries, which)
    repository = unique(f"wrong-{which}")
    images.push_multiarch(registry, repository, "v1")
    wrong = "not-the-password-" + (registry.password or "")
    client = make_client(login(registry, password=wrong))
    results = await client.remote_digests([ref(registry.host, repository)])
    error = results[ref(registry.host, repository)]
    assert isinstance(error, AuthFailed)
    assert error.kind == "auth_failed"
    assert wrong not in str(error)
    assert (registry.password or "") not in str(error)


@pytest.mark.parametrize("which", ["basic", "token"])
async def test_a_docker_login_between_passes_is_used_by_the_next_pass(
    which: str, images: ImageFactory, registries: Registries, docker_config: Callable[..., str]
) -> None:
    registry: RegistryService = getattr(registries, which)
    repository = unique(f"relogin-{which}")
    pushed = images.push_multiarch(registry, repository, "v1")
    image = ref(registry.host, repository)
    directory = docker_config(login(registry, password="wrong"))
    async with RegistryClient(credentials=DockerCredentials(directory)) as client:
        first = await client.remote_digests([image])
        assert isinstance(first[image], AuthFailed)
        docker_config_path = f"{directory}/config.json"
        with open(docker_config_path, "w") as config:  # what `docker login` does
            json.dump({"auths": login(registry)}, config)
        second = await client.remote_digests([image])
        assert second[image] == pushed


async def test_wrong_credentials_fail_the_whole_batch_after_one_token_request(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    repositories = [unique("wrong-batch") for _ in range(3)]
    for repository in repositories:
        images.push_multiarch(registries.token, repository, "v1")
    refs = [ref(registries.token.host, r) for r in repositories]
    before = len(registries.token.token_requests)
    client = make_client(login(registries.token, password="wrong"))
    results = await client.remote_digests(refs)
    assert all(isinstance(results[r], AuthFailed) for r in refs)
    # One refused login, not one per image: some registries lock accounts after a few.
    assert len(registries.token.token_requests) - before == 1
    assert client.stats["head"] == 0


# ---- tokens: batching, reuse, insufficient scope -----------------------------------------


async def test_one_token_request_covers_several_repositories(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    repositories = [unique("batch") for _ in range(3)]
    pushed = [images.push_multiarch(registries.token, r, "v1") for r in repositories]
    refs = [ref(registries.token.host, r) for r in repositories]
    before = len(registries.token.token_requests)
    client = make_client(login(registries.token))
    results = await client.remote_digests(refs)
    assert [results[r] for r in refs] == pushed
    asked = registries.token.token_requests[before:]
    assert len(asked) == 1
    assert sorted(asked[0].scopes) == sorted(f"repository:{r}:pull" for r in repositories)
    assert client.stats["token"] == 1


async def test_token_is_reused_across_images_and_passes(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    repositories = [unique("reuse") for _ in range(2)]
    for repository in repositories:
        images.push_multiarch(registries.token, repository, "v1")
    refs = [ref(registries.token.host, r) for r in repositories]
    before = len(registries.token.token_requests)
    client = make_client(login(registries.token))
    await client.remote_digests(refs)
    await client.remote_digests(refs)
    for one in refs:
        await client.remote_digest(one)
    assert len(registries.token.token_requests) - before == 1
    assert client.stats["token"] == 1
    assert client.stats["ping"] == 1


async def test_repository_missing_from_the_batched_token_asks_for_its_own(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    public = f"public/{unique('mixed').removeprefix('rc/')}"
    private = unique("mixed-priv")
    pushed = images.push_multiarch(registries.token, public, "v1")
    images.push_multiarch(registries.token, private, "v1")
    refs = [ref(registries.token.host, public), ref(registries.token.host, private)]
    before = len(registries.token.token_requests)
    client = make_client()
    results = await client.remote_digests(refs)
    assert results[refs[0]] == pushed
    error = results[refs[1]]
    assert isinstance(error, AuthFailed)
    assert "docker login" in str(error)
    asked = registries.token.token_requests[before:]
    # One batched request, then the registry's insufficient_scope for the private repository.
    assert len(asked) == 2
    assert asked[1].scopes == (f"repository:{private}:pull",)


async def test_steady_state_is_one_head_per_image_and_no_token_request(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    repositories = [unique("steady") for _ in range(3)]
    for repository in repositories:
        images.push_multiarch(registries.token, repository, "v1")
    refs = [ref(registries.token.host, r) for r in repositories]
    client = make_client(login(registries.token))
    first = await client.remote_digests(refs)
    client.stats.clear()
    before = len(registries.token.token_requests)
    second = await client.remote_digests(refs)
    assert second == first
    assert {k: v for k, v in client.stats.items() if k != "connect"} == {"head": 3}
    assert len(registries.token.token_requests) == before


# ---- manifests and digests ---------------------------------------------------------------


async def test_multiarch_tag_gives_the_index_digest_not_a_platform_manifest(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    repository = unique("multi")
    index_digest = images.push_multiarch(registries.anonymous, repository, "v1")
    index = httpx.get(
        f"{registries.anonymous.url}/v2/{repository}/manifests/{index_digest}",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
    ).json()
    platform_digests = {m["digest"] for m in index["manifests"]}
    client = make_client()
    digest = await client.remote_digest(ref(registries.anonymous.host, repository))
    assert digest == index_digest
    assert digest not in platform_digests


async def test_missing_tag_is_manifest_not_found(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    repository = unique("notag")
    images.push_multiarch(registries.anonymous, repository, "v1")
    client = make_client()
    with pytest.raises(ManifestNotFound) as caught:
        await client.remote_digest(ref(registries.anonymous.host, repository, "nope"))
    assert caught.value.kind == "not_found"
    assert caught.value.repository == repository


async def test_no_digest_on_head_falls_back_to_get_and_hashes_the_body(
    images: ImageFactory,
    registries: Registries,
    odd_registry: OddRegistry,
    make_client: MakeClient,
) -> None:
    repository = unique("nodigest")
    pushed = images.push_multiarch(registries.anonymous, repository, "v1")
    body = httpx.get(
        f"{registries.anonymous.url}/v2/{repository}/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
    ).content
    odd_registry.head_digest = False
    client = make_client()
    digest = await client.remote_digest(ref(odd_registry.host, repository))
    assert digest == "sha256:" + hashlib.sha256(body).hexdigest() == pushed
    assert client.stats["head"] == 1
    assert client.stats["get"] == 1


async def test_refused_head_falls_back_to_get(
    images: ImageFactory,
    registries: Registries,
    odd_registry: OddRegistry,
    make_client: MakeClient,
) -> None:
    repository = unique("nohead")
    pushed = images.push_multiarch(registries.anonymous, repository, "v1")
    odd_registry.head_allowed = False
    client = make_client()
    assert await client.remote_digest(ref(odd_registry.host, repository)) == pushed
    assert [(r.method, r.status) for r in odd_registry.requests if "manifests" in r.path] == [
        ("HEAD", 405),
        ("GET", 200),
    ]


async def test_garbage_answers_are_bad_response(
    odd_registry: OddRegistry, make_client: MakeClient
) -> None:
    odd_registry.garbage = True
    client = make_client()
    with pytest.raises(BadResponse) as caught:
        await client.remote_digest(ref(odd_registry.host, unique("garbage")))
    assert caught.value.kind == "bad_response"
    assert caught.value.registry == odd_registry.host


# ---- challenges ---------------------------------------------------------------------------


async def test_only_an_unknown_scheme_gives_unsupported_challenge_while_others_succeed(
    images: ImageFactory,
    registries: Registries,
    odd_registry: OddRegistry,
    make_client: MakeClient,
) -> None:
    odd_repository = unique("negotiate")
    images.push_multiarch(registries.anonymous, odd_repository, "v1")
    fine_repository = unique("fine")
    fine = images.push_multiarch(registries.anonymous, fine_repository, "v1")
    odd_registry.challenges = ["Negotiate YIIBhg=="]
    odd_ref = ref(odd_registry.host, odd_repository)
    fine_ref = ref(registries.anonymous.host, fine_repository)
    client = make_client()
    results = await client.remote_digests([odd_ref, fine_ref])
    assert results[fine_ref] == fine
    error = results[odd_ref]
    assert isinstance(error, UnsupportedChallenge)
    assert error.kind == "unsupported_challenge"
    assert error.scheme == "negotiate"
    assert error.header == "Negotiate YIIBhg=="
    assert error.registry == odd_registry.host
    assert error.repository == odd_repository


async def test_unknown_scheme_beside_basic_uses_basic(
    images: ImageFactory,
    registries: Registries,
    odd_registry: OddRegistry,
    make_client: MakeClient,
) -> None:
    repository = unique("beside-basic")
    pushed = images.push_multiarch(registries.anonymous, repository, "v1")
    odd_registry.challenges = ["Negotiate", 'Basic realm="odd"']
    odd_registry.expect_basic = ("odd-user", "odd-pass")
    client = make_client({odd_registry.host: {"username": "odd-user", "password": "odd-pass"}})
    assert await client.remote_digest(ref(odd_registry.host, repository)) == pushed
    heads = [r for r in odd_registry.requests if r.method == "HEAD"]
    assert [r.status for r in heads] == [200]
    sent = {name.lower(): value for name, value in heads[0].headers.items()}
    assert sent["authorization"].startswith("Basic ")


async def test_bearer_challenge_with_a_relative_realm_asks_the_registry_host(
    odd_registry: OddRegistry, make_client: MakeClient
) -> None:
    repository = unique("relative")
    odd_registry.challenges = ['Bearer realm="/token",service="odd-service"']
    client = make_client()
    with pytest.raises(BadResponse, match="token"):
        await client.remote_digest(ref(odd_registry.host, repository))
    asked = [r for r in odd_registry.requests if r.path.startswith("/token")]
    assert len(asked) == 1
    query = httpx.URL(asked[0].path).params
    assert query["service"] == "odd-service"
    assert query.get_list("scope") == [f"repository:{repository}:pull"]


# ---- rate limits, dead registries --------------------------------------------------------


async def test_rate_limit_then_success_honours_retry_after(
    images: ImageFactory,
    registries: Registries,
    odd_registry: OddRegistry,
    make_client: MakeClient,
) -> None:
    repository = unique("ratelimit")
    pushed = images.push_multiarch(registries.anonymous, repository, "v1")
    odd_registry.rate_limit(2, retry_after="1")
    client = make_client()
    assert await client.remote_digest(ref(odd_registry.host, repository)) == pushed
    assert client.stats["rate_limited"] == 2
    assert client.stats["retry"] == 2
    assert [r.status for r in odd_registry.requests] == [429, 429, 200, 200]


async def test_rate_limit_beyond_the_bound_gives_rate_limited_with_retry_after(
    odd_registry: OddRegistry, make_client: MakeClient
) -> None:
    odd_registry.rate_limit(10, retry_after="120")
    client = make_client(max_retry_wait=30.0)
    with pytest.raises(RateLimited) as caught:
        await client.remote_digest(ref(odd_registry.host, unique("limited")))
    assert caught.value.retry_after == 120.0
    assert caught.value.kind == "rate_limited"
    assert len(odd_registry.requests) == 1  # nothing retried that could not succeed in time


async def test_dead_registry_is_unreachable_while_others_succeed(
    images: ImageFactory,
    registries: Registries,
    dead_registry: DeadRegistry,
    make_client: MakeClient,
) -> None:
    repository = unique("alive")
    pushed = images.push_multiarch(registries.anonymous, repository, "v1")
    dead_refs = [ref(dead_registry.host, unique("dead")) for _ in range(3)]
    alive = ref(registries.anonymous.host, repository)
    client = make_client()
    results = await client.remote_digests([*dead_refs, alive])
    assert results[alive] == pushed
    for dead in dead_refs:
        error = results[dead]
        assert isinstance(error, RegistryUnreachable)
        assert error.kind == "unreachable"
        assert error.registry == dead_registry.host
        assert error.repository == dead.repository
    # One failed ping answers for every image of that registry.
    assert client.stats["ping"] == 2


async def test_unreachable_token_service_fails_the_batch_after_one_attempt(
    odd_registry: OddRegistry, dead_registry: DeadRegistry, make_client: MakeClient
) -> None:
    odd_registry.challenges = [f'Bearer realm="{dead_registry.url}/token",service="odd"']
    refs = [ref(odd_registry.host, unique("deadrealm")) for _ in range(3)]
    client = make_client()
    results = await client.remote_digests(refs)
    assert all(isinstance(results[r], RegistryUnreachable) for r in refs)
    assert {results[r].repository for r in refs} == {r.repository for r in refs}  # type: ignore[union-attr]
    assert client.stats["token"] == 1
    assert client.stats["head"] == 0


# ---- ping (doctor) and tags --------------------------------------------------------------


async def test_login_check_accepts_good_credentials_and_refuses_wrong_ones(
    registries: Registries, make_client: MakeClient
) -> None:
    await make_client(login(registries.basic)).check_login(registries.basic.host)
    await make_client(login(registries.token)).check_login(registries.token.host)
    await make_client().check_login(registries.anonymous.host)
    for registry in (registries.basic, registries.token):
        with pytest.raises(AuthFailed):
            await make_client(login(registry, password="wrong")).check_login(registry.host)


async def test_login_check_reports_unsupported_and_unreachable_registries(
    odd_registry: OddRegistry, dead_registry: DeadRegistry, make_client: MakeClient
) -> None:
    odd_registry.challenges = ["Negotiate"]
    with pytest.raises(UnsupportedChallenge) as caught:
        await make_client().check_login(odd_registry.host)
    assert caught.value.scheme == "negotiate"
    with pytest.raises(RegistryUnreachable):
        await make_client().check_login(dead_registry.host)


async def test_tags_lists_every_pushed_tag(
    images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    repository = unique("tags")
    for tag in ("v1", "v2", "v3"):
        images.push_multiarch(registries.token, repository, tag)
    client = make_client(login(registries.token))
    image = ref(registries.token.host, repository)
    assert sorted(await client.tags(image)) == ["v1", "v2", "v3"]
    # distribution 2.8 ignores `n` for tags; where a registry pages, Link is followed.
    assert sorted(await client.tags(image, page_size=1)) == ["v1", "v2", "v3"]


# ---- transports ---------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_either_transport_gives_the_same_answers_and_counts_connections(
    transport: str, images: ImageFactory, registries: Registries, make_client: MakeClient
) -> None:
    repositories = [unique(f"transport-{transport}") for _ in range(2)]
    pushed = [images.push_multiarch(registries.token, r, "v1") for r in repositories]
    refs = [ref(registries.token.host, r) for r in repositories]
    options: dict[str, Any] = {}
    if transport == "httpx":
        options["transport"] = httpx.AsyncHTTPTransport()
    client = make_client(login(registries.token), **options)
    results = await client.remote_digests(refs)
    assert [results[r] for r in refs] == pushed
    # The registry and its token server: at least one connection each.
    assert client.stats["connect"] >= 2


async def test_manifest_served_by_the_registry_matches_the_pushed_body(
    images: ImageFactory, registries: Registries
) -> None:
    # Guards the fixtures this module relies on: push_multiarch returns sha256(index body).
    repository = unique("guard")
    pushed = images.push_multiarch(registries.token, repository, "v1")
    headers = {
        "Accept": "application/vnd.oci.image.index.v1+json",
        **registry_headers(registries.token, repository, "pull"),
    }
    r = httpx.get(f"{registries.token.url}/v2/{repository}/manifests/v1", headers=headers)
    assert json.loads(r.content)["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert "sha256:" + hashlib.sha256(r.content).hexdigest() == pushed

"""Hostile registries against the client: dripping, huge, lying, 429 forever, clear-text realms.

Each fault is a mode of the odd front (tests/services/odd_registry.py) before the real
`docker-registry`. Outer `asyncio.timeout`s only turn a hang into a failure; nothing asserts a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest

from bot.check.checker import Checker
from bot.domain.model import CheckStatus
from bot.engines.docker import DockerEngine
from bot.errors import AuthFailed, BadResponse, ManifestNotFound, RateLimited, RegistryUnreachable
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from bot.registry.limits import MAX_MANIFEST_BYTES
from bot.registry.wire import MAX_RETRY_AFTER
from tests.integration.test_registry_client import (
    MakeClient,
    _make_client,  # noqa: F401 - the make_client fixture
    ref,
    unique,
)
from tests.services.containers import ContainerFactory
from tests.services.images import ImageFactory
from tests.services.odd_registry import OddRegistry
from tests.services.registry import Registries

# Turns a hang into a failure; far above what any of these tests takes when the client is right.
HANG = 45.0
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def _tls_front(registries: Registries) -> Iterator[OddRegistry]:
    odd = OddRegistry(registries.anonymous, tls=True)
    odd.start()
    yield odd
    odd.stop()


@pytest.fixture
def tls_registry(_tls_front: OddRegistry) -> OddRegistry:
    """An odd front of the anonymous registry on HTTPS (self-signed), reset for each test."""
    _tls_front.reset()
    return _tls_front


# ---- dripping: the request deadline and each registry's share of a pass ------------------


async def test_dripping_registry_is_unreachable_at_the_request_deadline_while_others_answer(
    images: ImageFactory,
    registries: Registries,
    odd_registry: OddRegistry,
    make_client: MakeClient,
) -> None:
    repository = unique("drip-fine")
    pushed = images.push_multiarch(registries.anonymous, repository, "v1")
    # A byte well within every read timeout, forever: only a deadline on the whole request ends it.
    odd_registry.drip(0.2)
    dripping = [ref(odd_registry.host, unique("drip")) for _ in range(2)]
    fine = ref(registries.anonymous.host, repository)
    client = make_client(timeout=1.0)
    async with asyncio.timeout(HANG):
        results = await client.remote_digests([*dripping, fine])
    assert results[fine] == pushed
    for one in dripping:
        error = results[one]
        assert isinstance(error, RegistryUnreachable)
        assert error.kind == "unreachable"
        assert error.repository == one.repository
    # The one ping gave up; no image of that registry asked on its own.
    assert [r.path for r in odd_registry.requests] == ["/v2/"]


async def test_registry_slower_than_its_share_of_the_pass_costs_only_its_own_images(
    images: ImageFactory,
    registries: Registries,
    odd_registry: OddRegistry,
    make_client: MakeClient,
) -> None:
    repository = unique("share-fine")
    pushed = images.push_multiarch(registries.anonymous, repository, "v1")
    # Each manifest answer takes about a second, well inside the request deadline; one at a
    # time, six of them do not fit in a two-second share.
    odd_registry.drip(0.003, match="/manifests/")
    slow_repository = unique("share-slow")
    slow = [ref(odd_registry.host, slow_repository, f"t{i}") for i in range(6)]
    fine = ref(registries.anonymous.host, repository)
    client = make_client(timeout=5.0, pass_timeout=2.0, max_per_registry=1)
    async with asyncio.timeout(HANG):
        results = await client.remote_digests([*slow, fine])
    assert results[fine] == pushed
    late = [r for r in slow if isinstance(results[r], RegistryUnreachable)]
    assert late, "every lookup finished although the share was over"
    for one in late:
        error = results[one]
        assert "share of the pass" in str(error)
        assert error.repository == slow_repository  # type: ignore[union-attr]
    # Those that came in time keep their own answer (these tags do not exist).
    assert all(isinstance(results[r], ManifestNotFound) for r in slow if r not in late)
    assert sum(r.method == "HEAD" for r in odd_registry.requests) < len(slow)


async def test_check_pass_ends_with_a_dripping_registry_and_keeps_the_other_answers(
    images: ImageFactory,
    registries: Registries,
    odd_registry: OddRegistry,
    containers: ContainerFactory,
    docker_client: docker.DockerClient,
    docker_host: str,
    docker_config: Callable[..., Any],
) -> None:
    repository = unique("drip-pass")
    pushed = images.push(registries.anonymous, repository, "v1")
    # The same image pulled through the front (while it still behaves): a RepoDigest of its own.
    docker_client.images.pull(f"{odd_registry.host}/{repository}", tag="v1")
    fine = containers.run(f"{registries.anonymous.host}/{repository}:v1")
    slow = containers.run(f"{odd_registry.host}/{repository}:v1")
    odd_registry.drip(0.2)
    engine = DockerEngine(docker_host)
    credentials = DockerCredentials(docker_config({}))
    try:
        async with RegistryClient(credentials=credentials, timeout=1.0) as client:
            checker = Checker(engine, client, label_enable=False, default_policy="approve")
            async with asyncio.timeout(HANG):
                report = await checker.check([fine.name, slow.name])
    finally:
        engine.close()
    results = {r.container: r for r in report.results}
    assert results[fine.name].status is CheckStatus.UP_TO_DATE
    assert results[fine.name].remote_digest == pushed
    assert results[slow.name].status is CheckStatus.ERROR
    error = results[slow.name].error
    assert error is not None and error.kind == "unreachable"


# ---- huge answers: caps by kind, refused by Content-Length or cut off --------------------


async def test_manifest_announced_over_4_mib_is_refused_before_reading(
    odd_registry: OddRegistry, make_client: MakeClient
) -> None:
    odd_registry.head_allowed = False  # the GET fallback is where bodies come in
    odd_registry.huge(MAX_MANIFEST_BYTES + 1)
    client = make_client()
    with pytest.raises(BadResponse) as caught:
        await client.remote_digest(ref(odd_registry.host, unique("huge-declared")))
    assert caught.value.kind == "bad_response"
    assert "announced an answer of 4194305 bytes" in str(caught.value)
    assert client.stats["get"] == 1


async def test_unannounced_manifest_is_cut_off_at_4_mib(
    odd_registry: OddRegistry, make_client: MakeClient
) -> None:
    odd_registry.head_allowed = False
    odd_registry.huge(64 * MIB, declare=False)  # chunked: no length to refuse up front
    client = make_client()
    with pytest.raises(BadResponse) as caught:
        await client.remote_digest(ref(odd_registry.host, unique("huge-chunked")))
    assert "more than 4 MiB" in str(caught.value)
    # The client hung up at the cap: the front could not push the rest (socket buffers aside).
    assert odd_registry.huge_sent < 32 * MIB


async def test_token_answer_over_1_mib_is_bad_response_and_never_sent_on(
    odd_registry: OddRegistry, make_client: MakeClient
) -> None:
    odd_registry.challenges = ['Bearer realm="/token",service="odd"']
    odd_registry.huge(2 * MIB, match="/token")
    client = make_client()
    with pytest.raises(BadResponse) as caught:
        await client.remote_digest(ref(odd_registry.host, unique("huge-token")))
    assert "1 MiB" in str(caught.value)
    assert client.stats["token"] == 1
    assert client.stats["head"] == 0


async def test_tag_list_over_1_mib_is_bad_response(
    odd_registry: OddRegistry, make_client: MakeClient
) -> None:
    odd_registry.huge(2 * MIB, match="/tags/list", declare=False)
    client = make_client()
    with pytest.raises(BadResponse) as caught:
        await client.tags(ref(odd_registry.host, unique("huge-tags")))
    assert "more than 1 MiB" in str(caught.value)


# ---- lying answers ------------------------------------------------------------------------


async def test_manifest_whose_claimed_digest_is_not_its_own_is_bad_response(
    images: ImageFactory,
    registries: Registries,
    odd_registry: OddRegistry,
    make_client: MakeClient,
) -> None:
    repository = unique("lying-digest")
    images.push_multiarch(registries.anonymous, repository, "v1")
    odd_registry.head_digest = False
    odd_registry.lie = "digest"
    client = make_client()
    with pytest.raises(BadResponse, match="not the one it claims"):
        await client.remote_digest(ref(odd_registry.host, repository))


async def test_manifest_of_broken_json_is_bad_response(
    images: ImageFactory,
    registries: Registries,
    odd_registry: OddRegistry,
    make_client: MakeClient,
) -> None:
    repository = unique("lying-json")
    images.push_multiarch(registries.anonymous, repository, "v1")
    odd_registry.head_digest = False
    odd_registry.lie = "json"
    client = make_client()
    with pytest.raises(BadResponse, match="not one"):
        await client.remote_digest(ref(odd_registry.host, repository))


# ---- 429 forever: Retry-After clamped, asked again afterwards ----------------------------


@pytest.mark.parametrize("retry_after", ["999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
async def test_429_forever_with_an_absurd_retry_after_waits_an_hour_then_asks_again(
    retry_after: str, odd_registry: OddRegistry, make_client: MakeClient
) -> None:
    now = [1000.0]
    odd_registry.rate_limit_forever(retry_after)
    image = ref(odd_registry.host, unique("limited-forever"))
    client = make_client(clock=lambda: now[0])
    with pytest.raises(RateLimited) as caught:
        await client.remote_digest(image)
    assert caught.value.retry_after == MAX_RETRY_AFTER == 3600.0
    assert len(odd_registry.requests) == 1
    now[0] += MAX_RETRY_AFTER - 1
    with pytest.raises(RateLimited):
        await client.remote_digest(image)  # still asked to wait: not asked
    assert len(odd_registry.requests) == 1
    now[0] += 2
    with pytest.raises(RateLimited):
        await client.remote_digest(image)
    assert len(odd_registry.requests) == 2  # the hour is over: asked again


async def test_429_forever_without_retry_after_gives_up_after_the_bounded_retries(
    odd_registry: OddRegistry, make_client: MakeClient
) -> None:
    odd_registry.rate_limit_forever(None)
    client = make_client()
    with pytest.raises(RateLimited):
        await client.remote_digest(ref(odd_registry.host, unique("limited-plain")))
    assert [r.status for r in odd_registry.requests] == [429, 429, 429]


# ---- token realms: never in clear text -----------------------------------------------------


async def test_https_registry_naming_a_plain_http_realm_is_auth_failed_and_gets_no_credentials(
    registries: Registries, tls_registry: OddRegistry, make_client: MakeClient
) -> None:
    token = registries.token
    assert token.realm is not None and token.realm.startswith("http://")
    tls_registry.challenges = [f'Bearer realm="{token.realm}",service="{token.service}"']
    before = len(token.token_requests)
    password = token.password or ""
    client = make_client(
        {tls_registry.host: {"username": token.username or "", "password": password}}
    )
    with pytest.raises(AuthFailed) as caught:
        await client.remote_digest(ref(tls_registry.host, unique("clear-realm")))
    assert caught.value.kind == "auth_failed"
    assert "plain http" in str(caught.value)
    assert password not in str(caught.value)
    assert len(token.token_requests) == before
    assert client.stats["token"] == 0


async def test_https_realm_redirecting_to_plain_http_is_not_followed(
    registries: Registries, tls_registry: OddRegistry, make_client: MakeClient
) -> None:
    token = registries.token
    assert token.realm is not None
    tls_registry.challenges = [f'Bearer realm="/token",service="{token.service}"']
    tls_registry.redirect("/token", token.realm)
    before = len(token.token_requests)
    client = make_client({tls_registry.host: {"identitytoken": token.identity_token or ""}})
    with pytest.raises(AuthFailed, match="redirected"):
        await client.remote_digest(ref(tls_registry.host, unique("redirect-realm")))
    assert len(token.token_requests) == before


async def test_token_realm_on_another_host_is_warned_about_once(
    tls_registry: OddRegistry, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    port = tls_registry.host.rpartition(":")[2]
    tls_registry.challenges = [f'Bearer realm="https://localhost:{port}/token",service="odd"']
    client = make_client()
    image = ref(tls_registry.host, unique("foreign-realm"))
    with caplog.at_level(logging.WARNING, logger="bot.registry.auth"):
        for _ in range(2):  # two passes
            with pytest.raises(BadResponse):  # the front has no token service
                await client.remote_digest(image)
    warnings = [r for r in caplog.records if "another host" in r.getMessage()]
    assert len(warnings) == 1
    assert "localhost" in warnings[0].getMessage()
    assert client.stats["token"] == 2

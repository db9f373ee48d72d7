"""Registry behaviours the real test registries cannot show, against a scripted HTTP peer.

distribution 2.8 and the odd front cover the common paths (tests/integration); this peer plays
what gcr.io, Docker Hub, Harbor and friends do differently: a 401 with no challenge, partial
token grants, OAuth2 endpoints that are missing, 5xx blips, HTTP-date Retry-After.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.domain.reference import ImageRef, parse_reference
from bot.errors import AuthFailed, BadResponse, RateLimited, RegistryError
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from bot.registry.manifests import digest_of
from tests.services.token_server import make_signing_cert

MANIFEST = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}'
DIGEST = digest_of(MANIFEST)

Handler = Callable[[web.Request], Any]


@dataclass
class Peer:
    """A registry whose every answer the test decides; it logs what it was asked."""

    host: str = ""
    ping: Handler | None = None
    token: Handler | None = None
    manifest: Handler | None = None
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def asked(self, path: str) -> list[tuple[str, str, dict[str, str]]]:
        return [entry for entry in self.seen if entry[1].startswith(path)]


def ok_manifest(request: web.Request, *, digest: str | None = DIGEST) -> web.Response:
    headers = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
    if digest is not None:
        headers["Docker-Content-Digest"] = digest
    return web.Response(body=b"" if request.method == "HEAD" else MANIFEST, headers=headers)


def unauthorized(*challenges: str) -> web.Response:
    return web.Response(status=401, headers=[("WWW-Authenticate", c) for c in challenges])


def token_answer(**fields: Any) -> web.Response:
    return web.json_response(fields)


async def serve(script: Peer, tls: ssl.SSLContext | None = None) -> web.AppRunner:
    """Start the scripted peer on a free loopback port (over TLS when given a context)."""

    async def route(request: web.Request) -> web.StreamResponse:
        body = (await request.read()).decode()
        script.seen.append((request.method, request.path_qs, {"body": body, **request.headers}))
        if request.path == "/v2/":
            handler = script.ping or (lambda r: web.json_response({}))
        elif request.path.startswith("/token"):
            handler = script.token or (lambda r: web.Response(status=404))
        else:
            handler = script.manifest or ok_manifest
        result = handler(request)
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, web.StreamResponse)
        return result

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", route)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    script.host = f"127.0.0.1:{runner.addresses[0][1]}"
    return runner


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    script = Peer()
    runner = await serve(script)
    yield script
    await runner.cleanup()


@pytest.fixture
async def tls_peer(tmp_path: Path) -> AsyncIterator[Peer]:
    """The scripted peer over TLS with a self-signed certificate."""
    from cryptography.hazmat.primitives import serialization

    key, cert = make_signing_cert("127.0.0.1")
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    script = Peer()
    runner = await serve(script, context)
    yield script
    await runner.cleanup()


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[Callable[..., RegistryClient]]:
    made: list[RegistryClient] = []

    def make(auths: dict[str, Any] | None = None, **options: Any) -> RegistryClient:
        config = tmp_path / f"config-{len(made)}"
        config.mkdir()
        (config / "config.json").write_text(json.dumps({"auths": auths or {}}))
        client = RegistryClient(credentials=DockerCredentials(str(config)), **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


def image(peer: Peer, repository: str = "app/one") -> ImageRef:
    return parse_reference(f"{peer.host}/{repository}:v1")


def bearer(peer: Peer, service: str | None = "svc") -> str:
    extra = f',service="{service}"' if service else ""
    return f'Bearer realm="http://{peer.host}/token"{extra}'


async def test_401_without_challenge_reuses_the_ping_challenge(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    issued = iter(["stale", "fresh"])
    peer.ping = lambda r: unauthorized(bearer(peer))
    peer.token = lambda r: token_answer(token=next(issued), expires_in=3600)
    # gcr.io answers a refused token with a bare 401: no WWW-Authenticate at all.
    peer.manifest = lambda r: (
        ok_manifest(r) if r.headers.get("Authorization") == "Bearer fresh" else unauthorized()
    )
    client = make_client()
    assert await client.remote_digest(image(peer)) == DIGEST
    assert client.stats["token"] == 2
    assert client.stats["head"] == 2


async def test_access_token_without_service_parameter(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    peer.ping = lambda r: unauthorized(bearer(peer, service=None))
    peer.token = lambda r: token_answer(access_token="tok")
    peer.manifest = lambda r: (
        ok_manifest(r) if r.headers.get("Authorization") == "Bearer tok" else unauthorized()
    )
    client = make_client()
    assert await client.remote_digest(image(peer)) == DIGEST
    (asked,) = peer.asked("/token")
    assert "service=" not in asked[1]
    assert "scope=repository%3Aapp%2Fone%3Apull" in asked[1]


async def test_insufficient_scope_fetches_that_scope_once_and_retries(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    def token(request: web.Request) -> web.Response:
        # Like a registry granting only part of a batch: "two" only when asked alone.
        scopes = request.query.getall("scope", [])
        granted = [s for s in scopes if "two" not in s or len(scopes) == 1]
        return token_answer(token="+".join(granted))

    def manifest(request: web.Request) -> web.Response:
        repository = request.path.split("/manifests/")[0].removeprefix("/v2/")
        scope = f"repository:{repository}:pull"
        if scope in request.headers.get("Authorization", "").removeprefix("Bearer ").split("+"):
            return ok_manifest(request)
        return unauthorized(bearer(peer) + f',error="insufficient_scope",scope="{scope}"')

    peer.ping = lambda r: unauthorized(bearer(peer))
    peer.token = token
    peer.manifest = manifest
    client = make_client()
    refs = [image(peer, "app/one"), image(peer, "app/two")]
    assert await client.remote_digests(refs) == {refs[0]: DIGEST, refs[1]: DIGEST}
    tokens = [entry[1] for entry in peer.asked("/token")]
    assert len(tokens) == 2
    assert tokens[1].count("scope=") == 1 and "app%2Ftwo" in tokens[1]


async def test_identitytoken_falls_back_to_get_where_oauth2_post_is_missing(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    peer.ping = lambda r: unauthorized(bearer(peer))
    peer.token = lambda r: (
        web.Response(status=404) if r.method == "POST" else token_answer(token="tok")
    )
    client = make_client({peer.host: {"identitytoken": "refresh-me"}})
    assert await client.remote_digest(image(peer)) == DIGEST
    assert [entry[0] for entry in peer.asked("/token")] == ["POST", "GET"]
    post_body = peer.asked("/token")[0][2]["body"]
    assert "grant_type=refresh_token" in post_body
    assert "refresh_token=refresh-me" in post_body
    assert "client_id=dockwarden" in post_body


async def test_basic_credentials_go_to_the_token_endpoint_never_to_a_basic_realm(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    # ECR: a Basic challenge whose realm is no token endpoint.
    peer.ping = lambda r: unauthorized(f'Basic realm="http://{peer.host}/token"')
    expected = "Basic " + base64.b64encode(b"AWS:secret").decode()
    peer.manifest = lambda r: (
        ok_manifest(r) if r.headers.get("Authorization") == expected else unauthorized()
    )
    client = make_client({peer.host: {"username": "AWS", "password": "secret"}})
    assert await client.remote_digest(image(peer)) == DIGEST
    assert peer.asked("/token") == []


async def test_anonymous_ping_then_bearer_401_on_the_manifest_is_honoured(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    peer.token = lambda r: token_answer(token="tok")
    peer.manifest = lambda r: (
        ok_manifest(r)
        if r.headers.get("Authorization") == "Bearer tok"
        else unauthorized(bearer(peer))
    )
    client = make_client()
    assert await client.remote_digest(image(peer)) == DIGEST
    assert client.stats["token"] == 1


async def test_only_unknown_scheme_on_ping_but_anonymous_manifest_works(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    peer.ping = lambda r: unauthorized("Negotiate", 'NTLM realm="corp"')
    client = make_client()
    assert await client.remote_digest(image(peer)) == DIGEST


async def test_ping_401_without_any_challenge_means_anonymous(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    peer.ping = lambda r: unauthorized()
    client = make_client()
    assert await client.remote_digest(image(peer)) == DIGEST


@pytest.mark.parametrize(
    ("challenges", "said"),
    [
        ((), "open (no challenge: anonymous access)"),
        (('Bearer realm="/token",service="peer"',), "bearer auth"),
        (('Negotiate', 'Basic realm="peer"'), "basic auth"),
        (('Negotiate', 'NTLM'), "offers only negotiate, ntlm"),
    ],
)
async def test_offered_auth_is_said_from_the_ping_the_lookups_then_reuse(
    peer: Peer, make_client: Callable[..., RegistryClient], challenges: tuple[str, ...],
    said: str,
) -> None:
    if challenges:
        peer.ping = lambda r: unauthorized(*challenges)
    async with make_client() as client:
        assert await client.offered_auth(image(peer)) == said
        await client.remote_digests([image(peer)])  # answers or errors, as values
    assert [path for _, path, _ in peer.seen].count("/v2/") == 1


async def test_offered_auth_of_a_registry_that_does_not_answer_says_why(
    make_client: Callable[..., RegistryClient],
) -> None:
    async with make_client(timeout=2.0) as client:
        said = await client.offered_auth(parse_reference("127.0.0.1:9/app/one:1"))
    assert "127.0.0.1:9" in said


async def test_server_error_is_retried_once(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    answers = iter([web.Response(status=503)])
    peer.manifest = lambda r: next(answers, None) or ok_manifest(r)
    client = make_client()
    assert await client.remote_digest(image(peer)) == DIGEST
    assert client.stats["retry"] == 1


async def test_repeated_server_errors_give_bad_response(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    peer.manifest = lambda r: web.Response(status=502)
    client = make_client()
    with pytest.raises(BadResponse, match="502"):
        await client.remote_digest(image(peer))
    assert client.stats["head"] == 2


async def test_429_with_an_http_date_retry_after_is_retried(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    limited = iter([True])
    peer.manifest = lambda r: (
        web.Response(status=429, headers={"Retry-After": formatdate(usegmt=True)})
        if next(limited, False)
        else ok_manifest(r)
    )
    client = make_client()
    assert await client.remote_digest(image(peer)) == DIGEST
    assert client.stats["rate_limited"] == 1
    assert client.stats["head"] == 2


async def test_get_body_that_does_not_match_its_claimed_digest_is_bad_response(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    peer.manifest = lambda r: (
        ok_manifest(r, digest=None)
        if r.method == "HEAD"
        else ok_manifest(r, digest="sha256:" + "0" * 64)
    )
    client = make_client()
    with pytest.raises(BadResponse, match="digest"):
        await client.remote_digest(image(peer))


async def test_errors_carry_registry_and_repository(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    peer.manifest = lambda r: web.Response(status=418)
    client = make_client()
    results = await client.remote_digests([image(peer, "team/app")])
    error = results[image(peer, "team/app")]
    assert isinstance(error, RegistryError)
    assert (error.registry, error.repository, error.kind) == (peer.host, "team/app", "bad_response")


async def test_pull_allowance_headers_are_kept_per_registry(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    def manifest(request: web.Request) -> web.Response:
        response = ok_manifest(request)
        response.headers["ratelimit-limit"] = "100;w=21600"
        response.headers["ratelimit-remaining"] = "97;w=21600"
        return response

    peer.manifest = manifest
    client = make_client()
    await client.remote_digest(image(peer))
    assert client.rate_limits == {peer.host: ("100;w=21600", "97;w=21600")}


async def test_loopback_registry_speaking_tls_is_used_over_https_without_cert_checks(
    tls_peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    client = make_client()
    assert await client.remote_digest(image(tls_peer)) == DIGEST
    # Plain HTTP first (loopback), then HTTPS once the port turned out to speak TLS.
    assert client.stats["ping"] == 2
    assert [entry[0] for entry in tls_peer.seen] == ["GET", "HEAD"]


async def test_forbidden_manifest_is_auth_failed(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    peer.manifest = lambda r: web.json_response({"errors": [{"code": "DENIED"}]}, status=403)
    client = make_client()
    with pytest.raises(AuthFailed, match="403"):
        await client.remote_digest(image(peer))


async def test_a_bare_401_after_an_insufficient_scope_asks_for_its_own_scope(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    refused: set[str] = set()

    def manifest(request: web.Request) -> web.Response:
        repository = request.path.split("/manifests/")[0].removeprefix("/v2/")
        scope = f"repository:{repository}:pull"
        if repository not in refused:
            refused.add(repository)  # each repository's first token is refused once
            if repository == "app/one":
                return unauthorized(bearer(peer) + f',error="insufficient_scope",scope="{scope}"')
            return unauthorized()
        if request.headers.get("Authorization") == f"Bearer {scope}":
            return ok_manifest(request)
        return unauthorized()

    peer.ping = lambda r: unauthorized(bearer(peer))
    peer.token = lambda r: token_answer(token=" ".join(r.query.getall("scope", [])))
    peer.manifest = manifest
    client = make_client()
    assert await client.remote_digest(image(peer, "app/one")) == DIGEST
    assert await client.remote_digest(image(peer, "app/two")) == DIGEST
    last = peer.asked("/token")[-1][1]
    assert "app%2Ftwo" in last and "app%2Fone" not in last


async def test_a_registry_asking_to_wait_long_is_not_asked_again_in_the_meantime(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    peer.manifest = lambda r: web.Response(status=429, headers={"Retry-After": "120"})
    client = make_client(max_per_registry=1)
    refs = [image(peer, f"app/{name}") for name in ("one", "two", "three")]
    results = await client.remote_digests(refs)
    assert all(isinstance(results[r], RateLimited) for r in refs)
    assert client.stats["head"] == 1
    assert all(0 < results[r].retry_after <= 120 for r in refs)  # type: ignore[union-attr]


async def test_closing_the_client_stops_a_shared_ping_its_cancelled_caller_left(
    peer: Peer, make_client: Callable[..., RegistryClient]
) -> None:
    answered = asyncio.Event()

    async def slow_ping(request: web.Request) -> web.Response:
        answered.set()
        await asyncio.sleep(1)
        return web.json_response({})

    peer.ping = slow_ping
    client = make_client()
    caller = asyncio.ensure_future(client.remote_digest(image(peer)))
    await answered.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await client.aclose()
    left = [t for t in asyncio.all_tasks() if "Authenticator._ping" in repr(t.get_coro())]
    assert left == []


async def test_requests_in_flight_per_registry_stay_within_the_configured_concurrency(
    peer: Peer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.config.settings import load_settings
    from bot.entrypoints.bootstrap import build_registry

    in_flight = most = 0

    async def slow_manifest(request: web.Request) -> web.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return ok_manifest(request)

    peer.manifest = slow_manifest
    monkeypatch.setenv("DOCKWARDEN_REGISTRY_CONCURRENCY", "3")
    settings = load_settings(docker_config=str(tmp_path))
    refs = [image(peer, f"app/n{i}") for i in range(12)]
    async with build_registry(settings) as client:
        results = await client.remote_digests(refs)
    assert all(results[r] == DIGEST for r in refs)
    assert most == 3


@pytest.mark.parametrize(
    ("realm_host", "registry_host", "same"),
    [
        ("auth.docker.io", "registry-1.docker.io", True),
        ("ghcr.io", "ghcr.io", True),
        ("Quay.IO", "quay.io", True),
        ("evil.example", "registry.corp.example.com", False),
        ("localhost", "127.0.0.1", False),
        ("127.0.0.2", "127.0.0.1", False),
    ],
)
def test_token_realm_of_the_registrys_own_site_is_not_foreign(
    realm_host: str, registry_host: str, same: bool
) -> None:
    from bot.registry.auth import same_site

    assert same_site(realm_host, registry_host) is same

"""The async registry client: ping, authenticate, and read manifest digests and tags.

One client serves every registry of a check pass and keeps what it learnt between passes: how
each registry wants to be spoken to (scheme, challenge, credentials) and the bearer tokens it
gave, so that a steady-state pass costs one HEAD per image and nothing more.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from bot.errors import (
    AuthFailed,
    BadResponse,
    ManifestNotFound,
    RateLimited,
    RegistryError,
    RegistryUnreachable,
    UnsupportedChallenge,
)
from bot.reference import DOCKER_HUB, ImageRef
from bot.registry.challenge import Challenge, choose_challenge, describe, parse_www_authenticate
from bot.registry.credentials import Credentials, DockerCredentials
from bot.registry.manifests import MANIFEST_ACCEPT, digest_of, is_valid_digest, looks_like_manifest
from bot.registry.tokens import (
    Token,
    TokenAnswerError,
    TokenCache,
    parse_token_answer,
    realm_url,
    refresh_form,
    token_url,
)
from bot.registry.transport import AiohttpTransport
from bot.registry.wire import next_link, parse_retry_after, scheme_for

log = logging.getLogger(__name__)

USER_AGENT = "dockwarden/0.1"
# Answers that mean "this registry will not do HEAD here": ask with GET instead.
_HEAD_REFUSED = frozenset({400, 405, 501})
_RATE_RETRIES = 2
_SERVER_RETRIES = 1
_SERVER_RETRY_DELAY = 0.5
_DEFAULT_RATE_WAIT = 1.0
# Keep token URLs well under the 8 KiB request line most servers accept.
_MAX_SCOPES_PER_TOKEN = 100
_HUB_ALIASES = frozenset({"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})


@dataclass
class _Auth:
    """The challenge a registry answers to, and the URL it came from (for relative realms)."""

    challenge: Challenge
    url: str


@dataclass
class _Registry:
    """What the client knows about one registry."""

    name: str
    base: str
    credentials_key: str
    semaphore: asyncio.Semaphore
    ping: asyncio.Future[None] | None = None
    pinged: bool = False
    auth: _Auth | None = None
    # Set when the ping offered only schemes we cannot speak: (schemes, raw header).
    unsupported: tuple[str, str] | None = None
    credentials: Credentials | None = None
    credentials_loaded: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _basic(credentials: Credentials | None) -> str | None:
    """The Basic Authorization value for a username and password, if there are both."""
    pair = credentials.basic if credentials is not None else None
    if pair is None:
        return None
    raw = f"{pair[0]}:{pair[1]}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _for_repository(error: RegistryError, repository: str | None) -> RegistryError:
    """The same error, told about the repository it concerns (shared errors are not mutated)."""
    if error.repository == repository:
        return error
    clone = type(error).__new__(type(error), *error.args)
    clone.__dict__.update(error.__dict__)
    clone.repository = repository
    return clone


def _login_hint(registry: str) -> str:
    target = "" if registry == DOCKER_HUB else f" {registry}"
    return f"run `docker login{target}` where DockWarden reads Docker's config"


class RegistryClient:
    """Async client for OCI / Docker v2 registries; use as an async context manager."""

    def __init__(
        self,
        *,
        credentials: DockerCredentials,
        insecure_registries: Sequence[str] = (),
        timeout: float = 10.0,
        max_per_registry: int = 16,
        max_retry_wait: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._credentials = credentials
        self._insecure = tuple(insecure_registries)
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._max_per_registry = max_per_registry
        self._max_retry_wait = max_retry_wait
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._registries: dict[str, _Registry] = {}
        self._tokens = TokenCache()
        self._token_fetches: dict[tuple[str, frozenset[str]], asyncio.Future[Token]] = {}
        self.stats: Counter[str] = Counter()

    async def __aenter__(self) -> RegistryClient:
        self._client()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=self._transport or AiohttpTransport(),
                timeout=self._timeout,
                follow_redirects=True,
                headers={"User-Agent": USER_AGENT},
                # Proxies from the environment would bypass the transport we chose.
                trust_env=False,
            )
        return self._http

    # ---- public API -------------------------------------------------------------------

    async def remote_digest(self, ref: ImageRef) -> str:
        """The digest of the manifest or index the tag points to (raises RegistryError)."""
        registry = self._registry(ref)
        try:
            await self._ensure_ping(registry)
            return await self._digest(registry, ref)
        except RegistryError as error:
            raise _for_repository(error, ref.repository) from None

    async def remote_digests(self, refs: Iterable[ImageRef]) -> dict[ImageRef, str | RegistryError]:
        """Digests for many references at once; failures come back as values, never raised."""
        groups: dict[str, list[ImageRef]] = {}
        for ref in dict.fromkeys(refs):
            groups.setdefault(ref.registry, []).append(ref)
        results: dict[ImageRef, str | RegistryError] = {}
        await asyncio.gather(*(self._batch(group, results) for group in groups.values()))
        return results

    async def ping(self, registry: str) -> None:
        """Check that the registry answers and accepts our credentials (raises RegistryError)."""
        name = DOCKER_HUB if registry in _HUB_ALIASES else registry
        state = self._registry(ImageRef(registry=name, repository=""))
        await self._ensure_ping(state)
        if state.unsupported is not None:
            schemes, header = state.unsupported
            raise UnsupportedChallenge(
                registry=state.name, repository=None, scheme=schemes, header=header
            )
        if state.auth is None:
            return
        challenge = state.auth.challenge
        if challenge.scheme == "bearer":
            await self._fetch_token(state, state.auth, [])
            return
        authorization = _basic(await self._creds(state))
        if authorization is None:
            raise AuthFailed(
                f"{state.name} requires a login; {_login_hint(state.name)}", registry=state.name
            )
        response = await self._send(
            state, "GET", f"{state.base}/v2/", kind="ping", authorization=authorization
        )
        if response.status_code == 401:
            raise AuthFailed(f"{state.name} refused the stored credentials", registry=state.name)

    async def tags(self, ref: ImageRef, *, page_size: int | None = None) -> list[str]:
        """Every tag of the repository, following Link pagination."""
        state = self._registry(ref)
        found: list[str] = []
        seen: set[str] = set()
        try:
            await self._ensure_ping(state)
            query = f"?n={page_size}" if page_size is not None else ""
            url: str | None = f"{state.base}/v2/{ref.repository}/tags/list{query}"
            while url is not None:
                async with state.semaphore:
                    response = await self._authorized(state, ref, "GET", url, kind="tags")
                if response.status_code == 404:
                    raise ManifestNotFound(f"{ref.name} does not exist", registry=ref.registry)
                if response.status_code != 200:
                    raise self._unexpected(state, response, "listing tags")
                try:
                    page = response.json()
                    found.extend(str(tag) for tag in page.get("tags") or [])
                except (ValueError, AttributeError, TypeError):
                    raise BadResponse(
                        f"{state.name} answered a tag list that is not JSON", registry=state.name
                    ) from None
                seen.add(url)
                link = next_link(response.headers.get("link"))
                url = str(response.url.join(link)) if link else None
                if url in seen:
                    break  # a Link back to a page already read would loop forever
        except RegistryError as error:
            raise _for_repository(error, ref.repository) from None
        return found

    # ---- registries and their auth ----------------------------------------------------

    def _registry(self, ref: ImageRef) -> _Registry:
        state = self._registries.get(ref.registry)
        if state is None:
            scheme = scheme_for(ref.api_host, self._insecure)
            if scheme == "https" and ref.api_host != ref.registry:
                scheme = scheme_for(ref.registry, self._insecure)
            state = _Registry(
                name=ref.registry,
                base=f"{scheme}://{ref.api_host}",
                credentials_key=ref.credentials_key,
                semaphore=asyncio.Semaphore(self._max_per_registry),
            )
            self._registries[ref.registry] = state
        return state

    async def _creds(self, state: _Registry) -> Credentials | None:
        """The registry's stored credentials (a credential helper may run: off the loop)."""
        if not state.credentials_loaded:
            async with state.lock:
                if not state.credentials_loaded:
                    state.credentials = await asyncio.to_thread(
                        self._credentials.lookup, state.credentials_key
                    )
                    state.credentials_loaded = True
        return state.credentials

    async def _ensure_ping(self, state: _Registry) -> None:
        """GET /v2/ once per registry; every image of the registry waits for the same one."""
        if state.pinged:
            return
        if state.ping is None:
            state.ping = asyncio.ensure_future(self._ping(state))
        ping = state.ping
        try:
            await asyncio.shield(ping)
        except RegistryError:
            # A failed ping is not remembered: the next pass tries again.
            if state.ping is ping:
                state.ping = None
            raise

    async def _ping(self, state: _Registry) -> None:
        url = f"{state.base}/v2/"
        response = await self._send(state, "GET", url, kind="ping")
        if response.status_code == 401:
            offered = parse_www_authenticate(response.headers.get_list("www-authenticate"))
            chosen = choose_challenge(offered)
            if chosen is not None:
                state.auth = _Auth(chosen, url)
            elif offered:
                # Try anonymously anyway; say "unsupported" only if that fails.
                header = ", ".join(response.headers.get_list("www-authenticate"))
                state.unsupported = (describe(offered), header)
                log.info("%s offers only %s authentication", state.name, describe(offered))
        elif response.status_code >= 500:
            raise self._unexpected(state, response, "answering /v2/")
        state.pinged = True
        log.debug("%s: %s", state.name, state.auth.challenge.scheme if state.auth else "anonymous")

    async def _authorization(self, state: _Registry, scope: str) -> str | None:
        """What to send in Authorization for this scope, before the registry asks."""
        if state.auth is None:
            return None
        if state.auth.challenge.scheme == "basic":
            return _basic(await self._creds(state))
        token = await self._token(state, state.auth, [scope])
        return f"Bearer {token.value}"

    async def _token(
        self, state: _Registry, auth: _Auth, scopes: list[str], *, fresh: bool = False
    ) -> Token:
        """A token for the scopes: cached, or shared with a fetch already under way."""
        if not fresh and len(scopes) == 1:
            cached = self._tokens.get(state.name, scopes[0])
            if cached is not None:
                return cached
        key = (state.name, frozenset(scopes))
        fetch = self._token_fetches.get(key)
        if fetch is None or fresh:
            fetch = asyncio.ensure_future(self._fetch_token(state, auth, scopes))
            self._token_fetches[key] = fetch
            fetch.add_done_callback(lambda done: self._forget_fetch(key, done))
        return await asyncio.shield(fetch)

    def _forget_fetch(self, key: tuple[str, frozenset[str]], done: asyncio.Future[Token]) -> None:
        if self._token_fetches.get(key) is done:
            del self._token_fetches[key]
        if not done.cancelled():
            done.exception()  # retrieved here, so a fetch nobody awaits any more is not logged

    async def _fetch_token(self, state: _Registry, auth: _Auth, scopes: list[str]) -> Token:
        """Ask the bearer realm for a token (OAuth2 refresh POST with an identitytoken)."""
        challenge = auth.challenge
        realm = challenge.params["realm"]
        service = challenge.params.get("service")
        creds = await self._creds(state)
        response: httpx.Response | None = None
        if creds is not None and creds.identitytoken:
            response = await self._send(
                state,
                "POST",
                str(realm_url(realm, auth.url)),
                kind="token",
                data=refresh_form(creds.identitytoken, service, scopes),
            )
            if response.status_code in (404, 405):
                response = None  # an endpoint without OAuth2: the plain GET below
        if response is None:
            response = await self._send(
                state,
                "GET",
                str(token_url(realm, auth.url, service, scopes)),
                kind="token",
                authorization=_basic(creds),
            )
        if response.status_code in (401, 403):
            if creds is None:
                raise AuthFailed(
                    f"{state.name}'s token service refused anonymous access; "
                    + _login_hint(state.name),
                    registry=state.name,
                )
            raise AuthFailed(
                f"{state.name}'s token service refused the stored credentials "
                f"(HTTP {response.status_code}); {_login_hint(state.name)} again",
                registry=state.name,
            )
        if response.status_code != 200:
            raise self._unexpected(state, response, "issuing a token")
        try:
            token = parse_token_answer(response.content, time.time())
        except TokenAnswerError as error:
            raise BadResponse(f"{state.name}: {error}", registry=state.name) from None
        if scopes:
            self._tokens.put(state.name, scopes, token)
        return token

    async def _authorized(
        self,
        state: _Registry,
        ref: ImageRef,
        method: str,
        url: str,
        *,
        kind: str,
        accept: str | None = None,
    ) -> httpx.Response:
        """Send with the registry's auth; answer one 401 by authenticating as it asks."""
        authorization = await self._authorization(state, ref.scope)
        response = await self._send(
            state, method, url, kind=kind, authorization=authorization, accept=accept
        )
        if response.status_code != 401:
            return response
        raw = response.headers.get_list("www-authenticate")
        offered = parse_www_authenticate(raw)
        chosen = choose_challenge(offered)
        if chosen is not None:
            state.auth = _Auth(chosen, url)
        elif offered:
            raise UnsupportedChallenge(
                registry=state.name,
                repository=ref.repository,
                scheme=describe(offered),
                header=", ".join(raw),
            )
        elif state.unsupported is not None:
            schemes, header = state.unsupported
            raise UnsupportedChallenge(
                registry=state.name, repository=ref.repository, scheme=schemes, header=header
            )
        if state.auth is None:
            raise AuthFailed(
                f"{state.name} refused access to {ref.repository} without saying how to "
                f"authenticate; {_login_hint(state.name)}",
                registry=state.name,
            )
        # A 401 without a challenge (gcr.io) means: the one from the ping, again.
        challenge = state.auth.challenge
        retry_authorization: str | None
        if challenge.scheme == "bearer":
            scopes = [ref.scope]
            if challenge.params.get("error") == "insufficient_scope" and challenge.params.get(
                "scope"
            ):
                scopes = challenge.params["scope"].split()
            token = await self._token(state, state.auth, scopes, fresh=True)
            retry_authorization = f"Bearer {token.value}"
        else:
            retry_authorization = _basic(await self._creds(state))
            if retry_authorization is None:
                raise AuthFailed(
                    f"{state.name} requires a login; {_login_hint(state.name)}",
                    registry=state.name,
                )
            if retry_authorization == authorization:
                raise AuthFailed(
                    f"{state.name} refused the stored credentials", registry=state.name
                )
        response = await self._send(
            state, method, url, kind=kind, authorization=retry_authorization, accept=accept
        )
        if response.status_code == 401:
            creds = await self._creds(state)
            hint = (
                "the stored credentials do not give access"
                if creds is not None
                else f"it needs a login; {_login_hint(state.name)}"
            )
            raise AuthFailed(
                f"{state.name} refused access to {ref.repository}: {hint} "
                "(or the repository does not exist)",
                registry=state.name,
            )
        return response

    # ---- manifests --------------------------------------------------------------------

    async def _batch(
        self, refs: list[ImageRef], results: dict[ImageRef, str | RegistryError]
    ) -> None:
        """All images of one registry: ping, one token for many scopes, then the HEADs."""
        state = self._registry(refs[0])
        try:
            await self._ensure_ping(state)
        except RegistryError as error:
            for ref in refs:
                results[ref] = _for_repository(error, ref.repository)
            return
        failed = await self._prefetch_tokens(state, refs)

        async def one(ref: ImageRef) -> None:
            try:
                error = failed.get(ref.scope)
                if error is not None:
                    raise error
                results[ref] = await self._digest(state, ref)
            except RegistryError as error:
                results[ref] = _for_repository(error, ref.repository)

        await asyncio.gather(*(one(ref) for ref in refs))

    async def _prefetch_tokens(
        self, state: _Registry, refs: list[ImageRef]
    ) -> dict[str, RegistryError]:
        """One token request for every scope of the batch, where the registry uses tokens.

        Returns the scopes whose images need not try on their own: the token service is
        unreachable or rate limiting. Other failures leave each image to ask for its own token
        and report its own error (a registry may refuse a batch for one repository's sake).
        """
        auth = state.auth
        if auth is None or auth.challenge.scheme != "bearer":
            return {}
        missing = self._tokens.missing(state.name, (ref.scope for ref in refs))
        if len(missing) < 2:
            return {}  # a single scope is fetched on the way, as usual
        chunks = [
            missing[i : i + _MAX_SCOPES_PER_TOKEN]
            for i in range(0, len(missing), _MAX_SCOPES_PER_TOKEN)
        ]
        outcomes = await asyncio.gather(
            *(self._token(state, auth, chunk) for chunk in chunks), return_exceptions=True
        )
        failed: dict[str, RegistryError] = {}
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if isinstance(outcome, RegistryUnreachable | RateLimited):
                failed.update(dict.fromkeys(chunk, outcome))
            elif isinstance(outcome, RegistryError):
                log.debug("%s: batched token request failed: %s", state.name, outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
        return failed

    async def _digest(self, state: _Registry, ref: ImageRef) -> str:
        reference = ref.tag or ref.digest
        url = f"{state.base}/v2/{ref.repository}/manifests/{reference}"
        async with state.semaphore:
            response = await self._authorized(
                state, ref, "HEAD", url, kind="head", accept=MANIFEST_ACCEPT
            )
            status = response.status_code
            if status == 404:
                raise ManifestNotFound(f"{ref} does not exist in {state.name}", registry=state.name)
            if status == 200:
                digest = str(response.headers.get("docker-content-digest", ""))
                if is_valid_digest(digest):
                    return digest
            elif status not in _HEAD_REFUSED:
                raise self._unexpected(state, response, f"HEAD of {ref}")
            return await self._digest_by_get(state, ref, url)

    async def _digest_by_get(self, state: _Registry, ref: ImageRef, url: str) -> str:
        """GET the manifest and hash the exact bytes (HEAD gave no usable digest)."""
        response = await self._authorized(
            state, ref, "GET", url, kind="get", accept=MANIFEST_ACCEPT
        )
        if response.status_code == 404:
            raise ManifestNotFound(f"{ref} does not exist in {state.name}", registry=state.name)
        if response.status_code != 200:
            raise self._unexpected(state, response, f"GET of {ref}")
        body = response.content
        if not looks_like_manifest(body):
            raise BadResponse(
                f"{state.name} answered the manifest of {ref} with something that is not one",
                registry=state.name,
            )
        computed = digest_of(body)
        claimed = str(response.headers.get("docker-content-digest", ""))
        if is_valid_digest(claimed):
            algorithm = claimed.partition(":")[0]
            if algorithm != "sha256":
                try:
                    computed = digest_of(body, algorithm)
                except ValueError:
                    return claimed  # an algorithm we cannot compute: take the registry's word
            if computed != claimed:
                raise BadResponse(
                    f"{state.name} sent a manifest of {ref} whose digest is not the one it claims",
                    registry=state.name,
                )
        return computed

    # ---- one HTTP exchange ------------------------------------------------------------

    async def _send(
        self,
        state: _Registry,
        method: str,
        url: str,
        *,
        kind: str,
        authorization: str | None = None,
        accept: str | None = None,
        data: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request, with 429 (Retry-After, bounded) and one 5xx retried; errors typed."""
        headers: dict[str, str] = {}
        if authorization:
            headers["Authorization"] = authorization
        if accept:
            headers["Accept"] = accept
        waited = 0.0
        rate_retries = server_retries = 0
        while True:
            self.stats[kind] += 1
            response = await self._exchange(state, method, url, headers, data)
            status = response.status_code
            if status == 429 or status >= 500:
                wait = parse_retry_after(response.headers.get("retry-after"), time.time())
                if status == 429:
                    self.stats["rate_limited"] += 1
                    delay = _DEFAULT_RATE_WAIT if wait is None else wait
                    if rate_retries < _RATE_RETRIES and waited + delay <= self._max_retry_wait:
                        rate_retries += 1
                    else:
                        raise RateLimited(
                            f"{state.name} is rate limiting DockWarden; it asks to wait "
                            f"{delay:.0f}s",
                            registry=state.name,
                            retry_after=delay,
                        )
                else:
                    delay = _SERVER_RETRY_DELAY if wait is None else wait
                    if server_retries >= _SERVER_RETRIES or waited + delay > self._max_retry_wait:
                        return response
                    server_retries += 1
                self.stats["retry"] += 1
                waited += delay
                log.info("%s answered %d; retrying in %.1fs", state.name, status, delay)
                await asyncio.sleep(delay)
                continue
            return response

    async def _exchange(
        self,
        state: _Registry,
        method: str,
        url: str,
        headers: dict[str, str],
        data: dict[str, str] | None,
    ) -> httpx.Response:
        target = httpx.URL(url)
        where = f"{target.host}:{target.port}" if target.port else target.host
        try:
            return await self._client().request(
                method, url, headers=headers, data=data, extensions={"trace": self._trace}
            )
        except httpx.TimeoutException as error:
            raise RegistryUnreachable(
                f"{where} did not answer within the timeout ({type(error).__name__})",
                registry=state.name,
            ) from None
        except httpx.TransportError as error:
            raise RegistryUnreachable(
                f"cannot reach {where}: {error}", registry=state.name
            ) from None
        except httpx.RequestError as error:  # undecodable body, redirect loop
            raise BadResponse(
                f"{where} answered unusably ({type(error).__name__})", registry=state.name
            ) from None

    async def _trace(self, event: str, info: dict[str, Any]) -> None:
        """Count new connections (httpx's trace extension; the aiohttp transport feeds it too)."""
        if event == "connection.connect_tcp.complete":
            self.stats["connect"] += 1

    def _unexpected(self, state: _Registry, response: httpx.Response, doing: str) -> BadResponse:
        return BadResponse(
            f"{state.name} answered HTTP {response.status_code} when {doing}", registry=state.name
        )

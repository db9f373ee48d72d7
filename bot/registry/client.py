"""The async registry client: manifest digests, tags, and a login check per registry.

One client serves every registry of a check pass and keeps what it learnt between passes: how
each registry wants to be spoken to (scheme, challenge, credentials) and the bearer tokens it
gave, so that a steady-state pass costs one HEAD per image and nothing more.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import httpx

from bot.domain.reference import DOCKER_HUB, ImageRef, is_docker_hub
from bot.errors import BadResponse, ManifestNotFound, RegistryError, RegistryUnreachable
from bot.registry.auth import Authenticator
from bot.registry.config_blob import Platform, read_config
from bot.registry.credentials import DockerCredentials
from bot.registry.exchange import Exchange, unexpected
from bot.registry.manifests import MANIFEST_ACCEPT, digest_of, is_valid_digest, looks_like_manifest
from bot.registry.ping import Pinger
from bot.registry.state import RegistryState, SharedTasks
from bot.registry.tags import Repository, list_tags, next_page
from bot.registry.tls import RegistryTls
from bot.registry.wire import api_scheme, next_link

# Answers that mean "this registry will not do HEAD here": ask with GET instead.
_HEAD_REFUSED = frozenset({400, 405, 501})


def _for_repository(error: RegistryError, repository: str | None) -> RegistryError:
    """The same error, told about the repository it concerns (shared errors are not mutated)."""
    if error.repository == repository:
        return error
    clone = type(error).__new__(type(error), *error.args)
    clone.__dict__.update(error.__dict__)
    clone.repository = repository
    return clone


class RegistryClient:
    """Async client for OCI / Docker v2 registries; use as an async context manager.

    `stats` counts requests by kind ("ping", "token", "head", "get", "tags"), new connections
    ("connect"), 429 answers ("rate_limited") and retries ("retry").
    """

    def __init__(
        self,
        *,
        credentials: DockerCredentials,
        insecure_registries: Sequence[str] = (),
        timeout: float = 10.0,
        max_per_registry: int = 64,
        max_retry_wait: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        tls: RegistryTls | None = None,
        pass_timeout: float | None = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stats: Counter[str] = Counter()
        # Each registry's share of a pass (and of one lookup or tag listing): a slow registry
        # costs its own images their answer, never the pass. None: no share, requests only.
        self._pass_timeout = pass_timeout
        # Insecure registries and certs.d CAs; `insecure_registries` is used without `tls`.
        self.tls = tls if tls is not None else RegistryTls(insecure=insecure_registries)
        self._exchange = Exchange(
            stats=self.stats,
            timeout=timeout,
            max_retry_wait=max_retry_wait,
            transport=transport,
            tls=self.tls,
            clock=clock,
        )
        self._tasks = SharedTasks()
        self._pinger = Pinger(self._exchange, self._tasks)
        self._auth = Authenticator(self._exchange, credentials, self._pinger, self._tasks)
        self._insecure = self.tls.insecure
        self._max_per_registry = max_per_registry
        self._registries: dict[str, RegistryState] = {}

    @property
    def rate_limits(self) -> dict[str, tuple[str, str]]:
        """Per registry, the last (ratelimit-limit, ratelimit-remaining) it reported (Hub)."""
        return dict(self._exchange.rate_limits)

    async def __aenter__(self) -> RegistryClient:
        self._exchange.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop what is still under way and close every connection."""
        await self._tasks.cancel()
        await self._exchange.aclose()

    async def remote_digest(self, ref: ImageRef) -> str:
        """The digest of the manifest or index the tag points to (raises RegistryError)."""
        state = self._registry(ref)
        try:
            async with self._share(state):
                await self._pinger.ensure(state)
                return await self._digest(state, ref)
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

    async def check_login(self, registry: str) -> None:
        """Check that the registry answers and accepts our credentials (raises RegistryError)."""
        name = DOCKER_HUB if is_docker_hub(registry) else registry
        await self._auth.check_login(self._registry(ImageRef(registry=name, repository="")))

    async def offered_auth(self, ref: ImageRef) -> str:
        """What the registry's /v2/ asks for, in words: the ping every lookup starts with."""
        state = self._registry(ref)
        try:
            async with self._share(state):
                await self._pinger.ensure(state)
        except RegistryError as error:
            return str(error)
        if state.auth is not None:
            return f"{state.auth.challenge.scheme} auth"
        if state.unsupported is not None:
            return f"offers only {state.unsupported[0]}"
        return "open (no challenge: anonymous access)"

    async def tags(self, ref: ImageRef, *, page_size: int | None = None) -> list[str]:
        """Every tag of the repository, following Link pagination."""
        state = self._registry(ref)
        found: list[str] = []
        seen: set[str] = set()
        query = f"?n={page_size}" if page_size is not None else ""
        url: str | None = f"{state.base}/v2/{ref.repository}/tags/list{query}"
        try:
            async with self._share(state):
                await self._pinger.ensure(state)
                while url is not None and url not in seen:
                    seen.add(url)  # a Link back to a page already read would loop forever
                    async with state.semaphore:
                        response = await self._auth.send(state, ref, "GET", url, kind="tags")
                    found.extend(self._tag_page(state, ref, response))
                    link = next_link(response.headers.get("link"))
                    url = next_page(state.name, response.url, link) if link else None
        except RegistryError as error:
            raise _for_repository(error, ref.repository) from None
        return found

    async def image_config(
        self, ref: ImageRef, digest: str, platform: Platform
    ) -> dict[str, Any]:
        """The config blob of the image at `digest` for the platform (raises RegistryError)."""
        state = self._registry(ref)

        async def get(url: str, kind: str, accept: str | None) -> httpx.Response:
            async with state.semaphore:
                return await self._auth.send(state, ref, "GET", url, kind=kind, accept=accept)

        try:
            async with self._share(state):
                await self._pinger.ensure(state)
                return await read_config(state.name, state.base, ref, digest, platform, get)
        except RegistryError as error:
            raise _for_repository(error, ref.repository) from None

    async def tag_lists(
        self, refs: Iterable[ImageRef]
    ) -> dict[Repository, list[str] | RegistryError]:
        """One tag listing per distinct repository among `refs`; failures come back as values."""
        return await list_tags(self, refs)

    def _tag_page(self, state: RegistryState, ref: ImageRef, response: httpx.Response) -> list[str]:
        if response.status_code == 404:
            raise ManifestNotFound(f"{ref.name} does not exist", registry=state.name)
        if response.status_code != 200:
            raise unexpected(state.name, response, "listing tags")
        try:
            return [str(tag) for tag in response.json().get("tags") or []]
        except (ValueError, AttributeError, TypeError):
            raise BadResponse(
                f"{state.name} answered a tag list that is not one", registry=state.name
            ) from None

    def _registry(self, ref: ImageRef) -> RegistryState:
        state = self._registries.get(ref.registry)
        if state is None:
            scheme = api_scheme(ref.registry, ref.api_host, self._insecure)
            state = RegistryState(
                name=ref.registry,
                base=f"{scheme}://{ref.api_host}",
                credentials_key=ref.credentials_key,
                semaphore=asyncio.Semaphore(self._max_per_registry),
                tls_fallback=f"https://{ref.api_host}" if scheme == "http" else None,
            )
            self._registries[ref.registry] = state
        return state

    @asynccontextmanager
    async def _share(self, state: RegistryState) -> AsyncIterator[None]:
        """Within it, the registry's share of the pass; past it, RegistryUnreachable."""
        try:
            async with asyncio.timeout(self._pass_timeout):
                yield
        except TimeoutError:
            raise RegistryUnreachable(
                f"{state.name} did not answer within its {self._pass_timeout:g}s share of the pass",
                registry=state.name,
            ) from None

    async def _batch(
        self, refs: list[ImageRef], results: dict[ImageRef, str | RegistryError]
    ) -> None:
        """All images of one registry within its share; past it, the rest are unreachable."""
        state = self._registry(refs[0])
        try:
            async with self._share(state):
                await self._lookups(state, refs, results)
        except RegistryUnreachable as late:
            # Answers that came in time are kept; only the images still waiting get this.
            for ref in refs:
                results.setdefault(ref, _for_repository(late, ref.repository))

    async def _lookups(
        self,
        state: RegistryState,
        refs: list[ImageRef],
        results: dict[ImageRef, str | RegistryError],
    ) -> None:
        """Ping, one token for many scopes, then the HEADs."""
        try:
            await self._auth.refresh_credentials(state)
            await self._pinger.ensure(state)
        except RegistryError as error:
            for ref in refs:
                results[ref] = _for_repository(error, ref.repository)
            return
        failed = await self._auth.prefetch(state, [ref.scope for ref in refs])

        async def one(ref: ImageRef) -> None:
            try:
                error = failed.get(ref.scope)
                if error is not None:
                    raise error
                results[ref] = await self._digest(state, ref)
            except RegistryError as error:
                results[ref] = _for_repository(error, ref.repository)

        await asyncio.gather(*(one(ref) for ref in refs))

    async def _digest(self, state: RegistryState, ref: ImageRef) -> str:
        """HEAD the manifest for its digest; GET it when HEAD gives none or is refused."""
        url = f"{state.base}/v2/{ref.repository}/manifests/{ref.tag or ref.digest}"
        async with state.semaphore:
            response = await self._auth.send(
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
                raise unexpected(state.name, response, f"HEAD of {ref}")
            return await self._digest_by_get(state, ref, url)

    async def _digest_by_get(self, state: RegistryState, ref: ImageRef, url: str) -> str:
        """GET the manifest and hash the exact bytes."""
        response = await self._auth.send(state, ref, "GET", url, kind="get", accept=MANIFEST_ACCEPT)
        if response.status_code == 404:
            raise ManifestNotFound(f"{ref} does not exist in {state.name}", registry=state.name)
        if response.status_code != 200:
            raise unexpected(state.name, response, f"GET of {ref}")
        body = response.content
        if not looks_like_manifest(body):
            raise BadResponse(
                f"{state.name} answered the manifest of {ref} with something that is not one",
                registry=state.name,
            )
        computed = digest_of(body)
        claimed = str(response.headers.get("docker-content-digest", ""))
        if not is_valid_digest(claimed):
            return computed
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

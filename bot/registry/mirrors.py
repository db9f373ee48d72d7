"""Docker Hub through registry mirrors, the way the Docker engine pulls through them.

An engine started with `registry-mirrors` (`docker info` → RegistryConfig.Mirrors) asks each
mirror in order for a Docker Hub image, and Docker Hub itself last; other registries are never
mirrored. A mirror serves the same `/v2/library/<name>/...` paths with its own auth (often none,
sometimes a token service or an odd challenge: the registry client's usual handling), and a
mirror that has not cached a repository answers 404, which only means "ask the next one". The
check does the same for every read (manifest digests, tag listings for version rules, image
configs for what an update brings), so people who reach Docker Hub only through a mirror get
answers, and a digest's result says which endpoint gave it. `DOCKWARDEN_REGISTRY_MIRRORS`
replaces the engine's list.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from bot.domain.model import CheckResult
from bot.domain.reference import DOCKER_HUB, ImageRef
from bot.errors import DockWardenError, RegistryError
from bot.registry.config_blob import Platform
from bot.registry.tags import Repository, repository_of, tags_of

log = logging.getLogger(__name__)

Answer = TypeVar("Answer")
# Asks one endpoint for many references at once; failures come back as values.
Ask = Callable[[list[ImageRef]], Awaitable[Mapping[ImageRef, Answer | RegistryError]]]

# What a result says when Docker Hub itself answered a lookup that mirrors were tried for.
HUB_ENDPOINT = DOCKER_HUB


@dataclass(frozen=True)
class Mirror:
    """One mirror: where it is (`host[:port]`) and how it is spoken to."""

    scheme: str  # http | https
    host: str

    @property
    def url(self) -> str:
        """`scheme://host[:port]`, as results name the endpoint."""
        return f"{self.scheme}://{self.host}"


def parse_mirror(text: str) -> Mirror:
    """A mirror as Docker takes it: `https://host[:port]`, `http://...`, or a bare host (HTTPS);
    raises ValueError saying why for anything else (a path included, as Docker refuses it)."""
    value = text.strip()
    if "://" not in value:
        value = f"https://{value}"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"invalid registry mirror {text!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid registry mirror {text!r}: expected http(s)://HOST[:PORT]")
    if parts.path.strip("/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"invalid registry mirror {text!r}: a mirror is a scheme, host and "
                         "port only")
    host = parts.netloc.lower()
    if port is None and host.endswith(":"):
        host = host.rstrip(":")
    return Mirror(parts.scheme, host)


def engine_mirrors(info: Mapping[str, Any]) -> tuple[Mirror, ...]:
    """The engine's registry mirrors from its `/info` document, in its order."""
    config = info.get("RegistryConfig") or {}
    found: list[Mirror] = []
    for entry in config.get("Mirrors") or []:
        try:
            mirror = parse_mirror(str(entry))
        except ValueError as exc:
            log.warning("ignoring the engine's registry mirror: %s", exc)
            continue
        if mirror not in found:
            found.append(mirror)
    return tuple(found)


def chosen_mirrors(
    setting: Sequence[str] | None, info: Callable[[], Mapping[str, Any]]
) -> tuple[Mirror, ...]:
    """DOCKWARDEN_REGISTRY_MIRRORS when set (validated URLs), else the engine's (`info()`)."""
    if setting is not None:
        return tuple(parse_mirror(url) for url in setting)
    return engine_mirrors(info())


def plain_http_hosts(mirrors: Iterable[Mirror]) -> tuple[str, ...]:
    """Hosts of the mirrors configured as http:// (the engine speaks plain HTTP to those)."""
    return tuple(m.host for m in mirrors if m.scheme == "http")


def on_mirror(ref: ImageRef, mirror: Mirror) -> ImageRef:
    """The same repository and tag, asked of the mirror (which serves Hub's paths)."""
    return dataclasses.replace(ref, registry=mirror.host)


class Lookups(Protocol):
    """What the check asks of the registry client (RegistryClient is the real one)."""

    async def remote_digests(
        self, refs: Iterable[ImageRef]
    ) -> Mapping[ImageRef, str | RegistryError]: ...

    async def tag_lists(
        self, refs: Iterable[ImageRef]
    ) -> Mapping[Repository, list[str] | RegistryError]: ...

    async def image_config(
        self, ref: ImageRef, digest: str, platform: Platform
    ) -> dict[str, Any]: ...


async def in_order(
    mirrors: Sequence[Mirror], refs: Sequence[ImageRef], ask: Ask[Answer]
) -> tuple[dict[ImageRef, Answer | RegistryError], dict[ImageRef, str | None]]:
    """Each mirror in turn for what is still unanswered, then Docker Hub: the answers, and per
    reference the endpoint that gave one (None when none did; the last error is the answer)."""
    results: dict[ImageRef, Answer | RegistryError] = {}
    endpoints: dict[ImageRef, str | None] = {}
    pending = list(refs)
    for mirror in mirrors:
        if not pending:
            break
        asked = {on_mirror(ref, mirror): ref for ref in pending}
        answers = await ask(list(asked))
        still = []
        for mirrored, ref in asked.items():
            answer = answers.get(mirrored)
            if answer is not None and not isinstance(answer, RegistryError):
                results[ref] = answer
                endpoints[ref] = mirror.url
            else:
                # Not cached there, or the mirror is away: the engine goes on too.
                log.debug("mirror %s gave no answer for %s: %s", mirror.url, ref, answer)
                still.append(ref)
        pending = still
    if pending:
        answers = await ask(pending)
        for ref in pending:
            answer = answers.get(ref)
            if answer is not None:
                results[ref] = answer
            ok = answer is not None and not isinstance(answer, RegistryError)
            endpoints[ref] = HUB_ENDPOINT if ok else None
    return results, endpoints


class MirroredDigests:
    """Registry reads with Docker Hub images asked of the mirrors first, Docker Hub last:
    digests, tag listings and image configs alike.

    `mirrors` is called once, in a thread, on first use (it may ask the engine); until it
    succeeds, lookups go to Docker Hub directly. `answered_by` holds, per reference of the last
    lookups, the endpoint that gave its digest, while mirrors are in use.
    """

    def __init__(
        self, registry: Lookups, mirrors: Callable[[], Sequence[Mirror]]
    ) -> None:
        self.registry = registry
        self._source = mirrors
        self._mirrors: tuple[Mirror, ...] | None = None
        self.answered_by: dict[ImageRef, str] = {}

    async def mirrors(self) -> tuple[Mirror, ...]:
        """The mirrors in use (read once; an engine that cannot say now is asked again later)."""
        if self._mirrors is None:
            try:
                found = tuple(await asyncio.to_thread(self._source))
            except DockWardenError as exc:
                log.warning("cannot read the engine's registry mirrors: %s", exc)
                return ()
            if found:
                log.info("Docker Hub images are checked through %s, then Docker Hub",
                         ", ".join(m.url for m in found))
            self._mirrors = found
        return self._mirrors

    async def tag_lists(
        self, refs: Iterable[ImageRef]
    ) -> dict[Repository, list[str] | RegistryError]:
        """One tag listing per repository, Docker Hub's asked of the mirrors first."""
        wanted: dict[Repository, ImageRef] = {}
        for ref in refs:
            wanted.setdefault(repository_of(ref), ref)

        async def ask(asked: list[ImageRef]) -> dict[ImageRef, list[str] | RegistryError]:
            lists = await self.registry.tag_lists(asked)
            found = {ref: tags_of(lists, ref) for ref in asked}
            return {ref: listing for ref, listing in found.items() if listing is not None}

        answers, _ = await self._spread(wanted.values(), ask)
        return {repository_of(ref): answer for ref, answer in answers.items()}

    async def image_config(
        self, ref: ImageRef, digest: str, platform: Platform
    ) -> dict[str, Any]:
        """The config blob of the image at `digest` by the same way (raises the last
        endpoint's RegistryError)."""

        async def ask(asked: list[ImageRef]) -> dict[ImageRef, dict[str, Any] | RegistryError]:
            found: dict[ImageRef, dict[str, Any] | RegistryError] = {}
            for one in asked:
                try:
                    found[one] = await self.registry.image_config(one, digest, platform)
                except RegistryError as error:
                    found[one] = error
            return found

        answers, _ = await self._spread([ref], ask)
        answer = answers[ref]
        if isinstance(answer, RegistryError):
            raise answer
        return answer

    async def remote_digests(
        self, refs: Iterable[ImageRef]
    ) -> dict[ImageRef, str | RegistryError]:
        """Digests for many references; failures come back as values, never raised."""
        results, endpoints = await self._spread(refs, self.registry.remote_digests)
        for ref, endpoint in endpoints.items():
            if endpoint is not None:
                self.answered_by[ref] = endpoint
            else:
                self.answered_by.pop(ref, None)
        return results

    async def remote_digest(self, ref: ImageRef) -> str:
        """One reference's digest by the same way (raises the last endpoint's RegistryError)."""
        answer = (await self.remote_digests([ref]))[ref]
        if isinstance(answer, RegistryError):
            raise answer
        return answer

    async def _spread(
        self, refs: Iterable[ImageRef], ask: Ask[Answer]
    ) -> tuple[dict[ImageRef, Answer | RegistryError], dict[ImageRef, str | None]]:
        """Docker Hub's references through the mirrors (`in_order`), the others straight to
        their registries, side by side; the endpoints of those that went through mirrors."""
        wanted = list(dict.fromkeys(refs))
        hub = [ref for ref in wanted if ref.registry == DOCKER_HUB]
        # The engine is asked for its mirrors only once a Docker Hub image is to be looked up.
        mirrors = await self.mirrors() if hub else ()
        if not mirrors:
            hub = []
        others = [ref for ref in wanted if ref.registry != DOCKER_HUB] if mirrors else wanted
        results: dict[ImageRef, Answer | RegistryError] = {}
        endpoints: dict[ImageRef, str | None] = {}

        async def direct() -> None:
            if others:
                results.update(await ask(others))

        async def through() -> None:
            if hub:
                answers, said = await in_order(mirrors, hub, ask)
                results.update(answers)
                endpoints.update(said)

        await asyncio.gather(direct(), through())
        return results, endpoints


def with_endpoints(
    results: Sequence[CheckResult],
    lookups: Sequence[ImageRef | None],
    registry: object,
) -> tuple[CheckResult, ...]:
    """Each result told which endpoint answered its lookup, when it went through mirrors."""
    answered = registry.answered_by if isinstance(registry, MirroredDigests) else {}
    if not answered:
        return tuple(results)
    told = []
    for result, ref in zip(results, lookups, strict=True):
        if ref is not None and result.remote_digest is not None:
            asked = ref.with_tag(result.new_tag) if result.new_tag else ref
            endpoint = answered.get(asked)
            if endpoint is not None:
                result = dataclasses.replace(result, endpoint=endpoint)
        told.append(result)
    return tuple(told)

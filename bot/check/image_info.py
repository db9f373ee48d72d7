"""What an update brings: what the running and the new image say about themselves.

Images say it in OCI labels (`org.opencontainers.image.version`, `.revision`, `.created`,
`.source`) and in their config's `created`. An image's config is read from the registry once per
digest and kept in the store (`image_configs`), so a digest already described costs nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bot.domain.model import CheckResult, CheckStatus
from bot.domain.reference import ImageRef, parse_reference
from bot.errors import DockWardenError, InvalidReference, RegistryError
from bot.registry.config_blob import Platform

if TYPE_CHECKING:  # `dockwarden check` keeps what it reads in memory: it never opens the store
    from bot.chat.messages import Field  # alerts only: a check never loads the chat boundary
    from bot.store.db import Store
    from bot.store.updates import PendingUpdate

log = logging.getLogger(__name__)

VERSION = "org.opencontainers.image.version"
REVISION = "org.opencontainers.image.revision"
CREATED = "org.opencontainers.image.created"
SOURCE = "org.opencontainers.image.source"
_GITHUB = re.compile(r"https?://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?")
_REVISION = re.compile(r"[0-9a-zA-Z._/-]{1,100}")
_MAX_TEXT = 200  # characters of an image's own words kept: they are shown in chat


def _text(value: object) -> str | None:
    """A label value fit to show: a short single line, or None."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())[:_MAX_TEXT]
    return text or None


@dataclass(frozen=True)
class ImageInfo:
    """What one image says about itself (each None when it does not say)."""

    version: str | None = None
    revision: str | None = None
    created: str | None = None
    source: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ImageInfo:
        """From an image config blob: its labels, and its build time when no label gives one."""
        inner = config.get("config")
        labels = inner.get("Labels") if isinstance(inner, Mapping) else None
        labels = labels if isinstance(labels, Mapping) else {}
        return cls(
            version=_text(labels.get(VERSION)),
            revision=_text(labels.get(REVISION)),
            created=_text(labels.get(CREATED)) or _text(config.get("created")),
            source=_text(labels.get(SOURCE)),
        )

    def to_json(self) -> str:
        """The stored form."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ImageInfo:
        """Back from the stored form (anything unreadable: nothing known)."""
        try:
            data = json.loads(text)
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        return cls(**{k: _text(data.get(k)) for k in ("version", "revision", "created", "source")})


def source_link(new: ImageInfo, old: ImageInfo | None) -> str | None:
    """A GitHub compare link when both revisions are known, else the new one's source."""
    if new.source is None:
        return None
    github = _GITHUB.fullmatch(new.source)
    if github is None or not new.source.startswith("https://"):
        return new.source if new.source.startswith("https://") else None
    repo = github.group(1)
    old_rev = old.revision if old is not None else None
    if old_rev and new.revision and old_rev != new.revision and all(
        _REVISION.fullmatch(r) for r in (old_rev, new.revision)
    ):
        return f"https://github.com/{repo}/compare/{old_rev}...{new.revision}"
    if new.version and _REVISION.fullmatch(new.version):
        return f"https://github.com/{repo}/releases/tag/{new.version}"
    return f"https://github.com/{repo}"


def brings(old: ImageInfo | None, new: ImageInfo) -> dict[str, str]:
    """What an update brings, as stored with the update: only what the images say."""
    said: dict[str, str] = {}
    if new.version:
        said["to_version"] = new.version
        if old is not None and old.version:
            said["from_version"] = old.version
    if new.created:
        said["created"] = new.created
    if new.revision:
        said["revision"] = new.revision
    link = source_link(new, old)
    if link:
        said["source"] = link
    return said


def brings_fields(update: PendingUpdate) -> tuple[Field, ...]:
    """The alert fields of what an update brings (none when the images say nothing)."""
    from bot.chat.messages import Field

    try:
        said = json.loads(update.brings or "{}")
    except ValueError:
        return ()
    if not isinstance(said, dict) or not said:
        return ()
    fields: list[Field] = []
    if said.get("to_version"):
        fields.append(Field("Version", f"{said.get('from_version') or '?'} → {said['to_version']}"))
    if said.get("created"):
        fields.append(Field("Built", str(said["created"])))
    if said.get("revision"):
        fields.append(Field("Revision", str(said["revision"])[:12]))
    if said.get("source"):
        fields.append(Field("Source", str(said["source"])))
    return tuple(fields)


# -- reading and keeping what images say -------------------------------------------------------


class ConfigCache(Protocol):
    """What was read of each digest's config, kept so that it is read once."""

    def get(self, digest: str) -> ImageInfo | None: ...

    def put(self, digest: str, info: ImageInfo) -> None: ...


class MemoryCache:
    """A cache for one process (`dockwarden check`)."""

    def __init__(self) -> None:
        self._known: dict[str, ImageInfo] = {}

    def get(self, digest: str) -> ImageInfo | None:
        """What is known of the digest, if anything."""
        return self._known.get(digest)

    def put(self, digest: str, info: ImageInfo) -> None:
        """Remember what the digest's config says."""
        self._known[digest] = info


class StoreCache:
    """The cache in the store's `image_configs` table: read once per digest, ever."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, digest: str) -> ImageInfo | None:
        """What is known of the digest, if anything."""
        said = self.store.image_config(digest)
        return None if said is None else ImageInfo.from_json(said)

    def put(self, digest: str, info: ImageInfo) -> None:
        """Remember what the digest's config says."""
        self.store.keep_image_config(digest, info.to_json())


def update_brings(store: Store, update: PendingUpdate) -> PendingUpdate:
    """The update with what it brings, from the images' kept configs (stored with it)."""
    cache = StoreCache(store)
    new = cache.get(update.remote_digest)
    if new is None:
        return update
    old = cache.get(update.old_digest) if update.old_digest else None
    said = json.dumps(brings(old, new), sort_keys=True)
    store.set_update_brings(update.id, said)
    return dataclasses.replace(update, brings=said)


class ConfigReader(Protocol):
    """What the describer needs of a registry client (RegistryClient is the real one)."""

    async def image_config(
        self, ref: ImageRef, digest: str, platform: Platform
    ) -> dict[str, Any]: ...


LocalInspect = Callable[[str], Mapping[str, Any] | None]  # "repo@digest" -> docker image inspect


class Describer:
    """Adds `current_version` and `new_version` to the results that found an update.

    The running image is asked of the engine (no request); the new one of the registry, its
    config read once per digest and kept in `cache`.
    """

    def __init__(
        self,
        registry: ConfigReader,
        cache: ConfigCache,
        *,
        platform: Callable[[], Platform],
        local: LocalInspect | None = None,
    ) -> None:
        self.registry = registry
        self.cache = cache
        self._platform_of = platform
        self._platform: Platform | None = None
        self.local = local

    async def describe(self, results: Sequence[CheckResult]) -> tuple[CheckResult, ...]:
        """The results, those with an update told what the images say of their versions."""
        wanted: dict[tuple[str, bool], ImageRef] = {}
        for result in results:
            ref = _ref(result)
            if ref is None or result.remote_digest is None:
                continue
            wanted.setdefault((result.remote_digest, False), ref)
            if result.local_digest:
                wanted.setdefault((result.local_digest, True), ref)
        if not wanted:
            return tuple(results)
        answers = await asyncio.gather(
            *(self._info(ref, digest, local) for (digest, local), ref in wanted.items())
        )
        infos = dict(zip(wanted, answers, strict=True))
        described = []
        for result in results:
            new = infos.get((result.remote_digest or "", False))
            old = infos.get((result.local_digest or "", True))
            if new is not None or old is not None:
                result = dataclasses.replace(
                    result,
                    current_version=old.version if old else None,
                    new_version=new.version if new else None,
                )
            described.append(result)
        return tuple(described)

    async def _info(self, ref: ImageRef, digest: str, local: bool) -> ImageInfo | None:
        known = self.cache.get(digest)
        if known is not None:
            return known
        if local and self.local is not None:
            inspected = await asyncio.to_thread(self.local, f"{ref.name}@{digest}")
            if inspected is not None:
                info = ImageInfo.from_config(
                    {"config": inspected.get("Config"), "created": inspected.get("Created")}
                )
                self.cache.put(digest, info)
                return info
        if self._platform is None:
            self._platform = await asyncio.to_thread(self._platform_of)
        try:
            config = await self.registry.image_config(ref, digest, self._platform)
        except RegistryError as error:
            log.info("could not read the config of %s@%s: %s", ref.name, digest[:19], error)
            if error.kind in ("not_found", "bad_response"):
                self.cache.put(digest, ImageInfo())  # it will not say more next time
            return None
        info = ImageInfo.from_config(config)
        self.cache.put(digest, info)
        return info


def _ref(result: CheckResult) -> ImageRef | None:
    if result.status is not CheckStatus.UPDATE_AVAILABLE:
        return None
    try:
        return parse_reference(result.image)
    except InvalidReference:
        return None


def engine_platform(engine: Any) -> Platform:
    """The platform of a DockerEngine's images (its /version Os and Arch)."""
    try:
        version = engine.version()
    except DockWardenError:
        return Platform()
    return Platform(os=str(version.get("Os") or "linux"),
                    architecture=str(version.get("Arch") or "amd64"))


def local_inspect(engine: Any, reference: str) -> Mapping[str, Any] | None:
    """`docker image inspect` of a DockerEngine's image, or None when it has none by that name."""
    document: Mapping[str, Any] | None = engine.image_document(reference)
    return document

"""What an update brings: what the running and the new image say about themselves.

Images say it in OCI labels (`org.opencontainers.image.version`, `.revision`, `.created`,
`.source`) and in their config's `created`. An image's config is read from the registry once per
digest and kept in the store (`image_configs`), so a digest already described costs nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from bot.chat import Field
from bot.store import PendingUpdate

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

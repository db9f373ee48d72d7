"""Versions in Docker tags: `v1.27.3`, `1.27`, `1.27.3-alpine`, `2.0.0-rc1`, `1.3.1-rc1-alpine`.

Semantic-versioning libraries (`packaging`, `semver`) read `-alpine` as a pre-release and reject
`1.27` or `v1.27.3`; Docker tags are looser than either, so they are parsed here.

A tag is a version when it is an optional `v`, one to four dot-separated numbers, then optional
dash-separated parts. A first part that reads as a pre-release (`rc1`, `beta`, `alpha.2`,
`preview`...) is one; whatever follows is the suffix (`alpine`, `bookworm-slim`). Two tags are
comparable only with the same form: same `v` or none, as many numbers, the same suffix — so
`1.27.3-alpine` is only ever followed by another `-alpine` tag, and `1.27` by `1.28`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum

_TAG = re.compile(r"(?P<v>[vV]?)(?P<numbers>\d{1,9}(?:\.\d{1,9}){0,3})(?:-(?P<rest>[\w.-]+))?")
_PRE = re.compile(
    r"(?P<word>alpha|beta|rc|pre|preview|dev|snapshot|nightly|canary|next|a|b)"
    r"[.]?(?P<number>\d{0,9})",
    re.IGNORECASE,
)
# Pre-releases of the same version come in this order; unknown words sort before "alpha".
_PRE_ORDER = {"dev": 0, "snapshot": 0, "nightly": 0, "canary": 0, "next": 0, "a": 1, "alpha": 1,
              "b": 2, "beta": 2, "pre": 3, "preview": 3, "rc": 4}


class Level(IntEnum):
    """How far two versions are apart: the first number that differs."""

    PATCH = 1
    MINOR = 2
    MAJOR = 3

    def __str__(self) -> str:
        return self.name.lower()


LEVELS = {str(level): level for level in Level}


@dataclass(frozen=True)
class Version:
    """A version read from a tag: numbers, an optional pre-release, and the suffix kept."""

    tag: str
    prefix: str  # "v" or ""
    numbers: tuple[int, ...]
    pre: tuple[int, int] | None  # (rank of the word, its number); None for a release
    suffix: str  # "" or what follows the version and pre-release, e.g. "alpine"

    @property
    def is_prerelease(self) -> bool:
        """True for `-rc1`, `-beta` and the like."""
        return self.pre is not None

    @property
    def form(self) -> tuple[str, int, str]:
        """What a tag must share with another to be compared with it."""
        return (self.prefix, len(self.numbers), self.suffix)

    @property
    def key(self) -> tuple[tuple[int, ...], int, tuple[int, int]]:
        """Sort key: numbers, then a release after all pre-releases of the same numbers."""
        if self.pre is None:
            return (self.numbers, 1, (0, 0))
        return (self.numbers, 0, self.pre)

    def __str__(self) -> str:
        return self.tag


def parse_version(tag: str) -> Version | None:
    """The version a tag names, or None when it names none (`latest`, `stable`, `alpine`)."""
    match = _TAG.fullmatch(tag)
    if match is None:
        return None
    numbers = tuple(int(n) for n in match["numbers"].split("."))
    rest = match["rest"] or ""
    pre: tuple[int, int] | None = None
    suffix = rest
    if rest:
        first, _, after = rest.partition("-")
        found = _PRE.fullmatch(first)
        if found is not None:
            pre = (_PRE_ORDER[found["word"].lower()], int(found["number"] or 0))
            suffix = after
    return Version(tag, match["v"].lower(), numbers, pre, suffix)


def change_level(old: Version, new: Version) -> Level:
    """The level at which `new` differs from `old` (same form): major, minor or patch."""
    for index, (a, b) in enumerate(zip(old.numbers, new.numbers, strict=False)):
        if a != b:
            return Level(max(Level.MAJOR - index, Level.PATCH))
    return Level.PATCH


def newest(
    current: Version,
    tags: Iterable[str],
    *,
    level: Level,
    allowed: Callable[[str], bool] | None = None,
) -> Version | None:
    """The newest tag of the same form above `current`, changing at most at `level`.

    Pre-releases are candidates only when `current` is one; `allowed` says which tag names
    may be proposed at all (the include/exclude rules).
    """
    best: Version | None = None
    for tag in tags:
        if allowed is not None and not allowed(tag):
            continue
        candidate = parse_version(tag)
        if candidate is None or candidate.form != current.form:
            continue
        if candidate.is_prerelease and not current.is_prerelease:
            continue
        if candidate.key <= current.key or change_level(current, candidate) > level:
            continue
        if best is None or candidate.key > best.key:
            best = candidate
    return best

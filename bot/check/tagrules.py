"""Which newer tag, if any, a container should be offered: its labels' rule applied to a tag list.

Labels (per container; `DOCKWARDEN_SEMVER` gives the default level, unset: digest checks only):
- `dockwarden.semver=patch|minor|major` — propose a newer tag differing at most at that level;
  `off` turns tag checks off for this container whatever the default.
- `dockwarden.tags.include=REGEX` / `dockwarden.tags.exclude=REGEX` — full match on the tag name.

A label that cannot work (an unknown level, a regex that does not compile) raises BadTagRule: it
is that container's error, never the pass's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.domain.versions import LEVELS, Level, Version, change_level, newest, parse_version
from bot.errors import BadTagRule

SEMVER_LABEL = "dockwarden.semver"
INCLUDE_LABEL = "dockwarden.tags.include"
EXCLUDE_LABEL = "dockwarden.tags.exclude"
_OFF = frozenset({"off", "none", "false", "no", "0"})
_MAX_REGEX = 1000  # characters: a label is no place for a novel


@dataclass(frozen=True)
class TagRule:
    """How far a container may be moved along its tags, and which tag names may be offered."""

    level: Level
    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None

    def allows(self, tag: str) -> bool:
        """Whether the include/exclude patterns let this tag name be proposed."""
        if self.include is not None and self.include.fullmatch(tag) is None:
            return False
        return self.exclude is None or self.exclude.fullmatch(tag) is None


@dataclass(frozen=True)
class Proposal:
    """A newer tag for a container, and how far it moves it."""

    tag: str
    current: Version
    new: Version
    level: Level


def parse_level(text: str, *, label: str = SEMVER_LABEL) -> Level | None:
    """`patch`, `minor`, `major` -> Level; `off` (and friends) or empty -> None."""
    word = text.strip().lower()
    if not word or word in _OFF:
        return None
    level = LEVELS.get(word)
    if level is None:
        raise BadTagRule(
            f"{label}={text.strip()[:40]!r} is not one of patch, minor, major, off", label=label
        )
    return level


def _pattern(labels: Mapping[str, str], label: str) -> re.Pattern[str] | None:
    text = labels.get(label)
    if text is None or not text.strip():
        return None
    if len(text) > _MAX_REGEX:
        raise BadTagRule(f"{label} is longer than {_MAX_REGEX} characters", label=label)
    try:
        return re.compile(text.strip())
    except re.error as exc:
        raise BadTagRule(f"{label} is not a valid regular expression: {exc}", label=label) from None


def rule_of(labels: Mapping[str, str], default: Level | None) -> TagRule | None:
    """The container's tag rule, or None for digest checks only (raises BadTagRule)."""
    level = default
    if SEMVER_LABEL in labels:
        level = parse_level(labels[SEMVER_LABEL])
    if level is None:
        return None
    return TagRule(
        level, include=_pattern(labels, INCLUDE_LABEL), exclude=_pattern(labels, EXCLUDE_LABEL)
    )


def propose(current_tag: str | None, tags: Iterable[str], rule: TagRule) -> Proposal | None:
    """The newest tag the rule allows above the running one; None when there is none."""
    current = parse_version(current_tag) if current_tag else None
    if current is None:
        return None  # `latest`, `stable`, ...: no version to move along, the digest says it
    found = newest(current, tags, level=rule.level, allowed=rule.allows)
    if found is None:
        return None
    return Proposal(found.tag, current, found, change_level(current, found))

"""Versions in Docker tags and the tag rules: examples, then properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.check.tagrules import propose, rule_of
from bot.domain.versions import Level, change_level, newest, parse_version
from bot.errors import BadTagRule

TAGS = ["1.2.3", "1.2.4", "1.3.0", "1.3.1-rc1", "2.0.0", "1.2.5-alpine", "latest"]


def _pick(current: str, level: str, tags: list[str] = TAGS, **labels: str) -> str | None:
    rule = rule_of({"dockwarden.semver": level, **labels}, None)
    assert rule is not None
    found = propose(current, tags, rule)
    return found.tag if found else None


def test_docker_style_tags_are_versions_and_words_are_not() -> None:
    assert parse_version("v1.27.3") is not None
    assert parse_version("1.27") is not None
    found = parse_version("1.27.3-alpine")
    assert found is not None and found.suffix == "alpine" and not found.is_prerelease
    pre = parse_version("1.3.1-rc1-alpine")
    assert pre is not None and pre.is_prerelease and pre.suffix == "alpine"
    for word in ("latest", "stable", "alpine", "main-1.2", "1.2.3.4.5", ""):
        assert parse_version(word) is None


def test_level_patch_minor_major_from_the_running_tag() -> None:
    assert _pick("1.2.3", "patch") == "1.2.4"
    assert _pick("1.2.3", "minor") == "1.3.0"
    assert _pick("1.2.3", "major") == "2.0.0"


def test_prerelease_never_proposed_to_a_release() -> None:
    assert _pick("1.3.0", "minor") is None  # 1.3.1-rc1 is the only one above within minor


def test_prerelease_running_is_offered_newer_prereleases_and_the_release() -> None:
    assert _pick("1.3.1-rc1", "patch", ["1.3.1-rc1", "1.3.1-rc2", "1.3.0"]) == "1.3.1-rc2"
    assert _pick("1.3.1-rc1", "patch", ["1.3.1-rc2", "1.3.1"]) == "1.3.1"
    assert _pick("1.3.1-beta", "patch", ["1.3.1-rc1", "1.3.1-alpha"]) == "1.3.1-rc1"


def test_suffix_kept_only_same_suffix_candidates() -> None:
    assert _pick("1.2.3-alpine", "major") == "1.2.5-alpine"
    assert _pick("1.2.5", "patch", ["1.2.6-alpine", "1.2.4"]) is None


def test_numbers_compare_numerically_not_as_text() -> None:
    assert _pick("1.9.0", "minor", ["1.10.0", "1.2.0"]) == "1.10.0"
    assert _pick("v1.27.3", "major", ["v1.27.10", "1.28.0", "v1.28.0"]) == "v1.28.0"
    assert _pick("1.27", "minor", ["1.28", "1.28.0"]) == "1.28"


def test_include_and_exclude_match_the_whole_tag() -> None:
    assert _pick("1.2.3", "major", **{"dockwarden.tags.exclude": r"2\..*"}) == "1.3.0"
    assert _pick("1.2.3", "major", **{"dockwarden.tags.include": r"1\.2"}) is None
    assert _pick("1.2.3", "major", **{"dockwarden.tags.include": r"1\.2\.\d+"}) == "1.2.4"


def test_bad_include_regex_is_a_bad_tag_rule_naming_the_label() -> None:
    with pytest.raises(BadTagRule) as caught:
        rule_of({"dockwarden.semver": "minor", "dockwarden.tags.include": "1.(2"}, None)
    assert caught.value.label == "dockwarden.tags.include"
    with pytest.raises(BadTagRule):
        rule_of({"dockwarden.semver": "sideways"}, None)


def test_no_rule_without_label_or_default_and_off_overrides_default() -> None:
    assert rule_of({}, None) is None
    assert rule_of({"dockwarden.semver": "off"}, Level.MAJOR) is None
    default = rule_of({}, Level.MINOR)
    assert default is not None and default.level is Level.MINOR


def test_latest_has_no_version_to_move_along() -> None:
    rule = rule_of({}, Level.MAJOR)
    assert rule is not None and propose("latest", TAGS, rule) is None


_numbers = st.lists(st.integers(0, 999), min_size=1, max_size=4)
_suffix = st.sampled_from(["", "-alpine", "-bookworm-slim"])
_pre = st.sampled_from(["", "-rc1", "-beta", "-alpha.2", "-rc10"])


@st.composite
def _tags(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["", "v"]))
    return prefix + ".".join(map(str, draw(_numbers))) + draw(_pre) + draw(_suffix)


@given(_tags())
def test_every_generated_tag_parses_back_to_its_parts(tag: str) -> None:
    version = parse_version(tag)
    assert version is not None and version.tag == tag
    assert version.is_prerelease == any(p in tag for p in ("-rc", "-beta", "-alpha"))


@given(_tags(), st.lists(_tags(), max_size=20), st.sampled_from(list(Level)))
def test_proposal_is_newer_same_form_within_level_and_the_newest(
    current_tag: str, tags: list[str], level: Level
) -> None:
    current = parse_version(current_tag)
    assert current is not None
    found = newest(current, tags, level=level)
    allowed = [
        v for v in map(parse_version, tags)
        if v is not None and v.form == current.form and v.key > current.key
        and change_level(current, v) <= level and (current.is_prerelease or not v.is_prerelease)
    ]
    if found is None:
        assert not allowed
        return
    assert found.form == current.form and found.key > current.key
    assert change_level(current, found) <= level
    assert all(found.key >= other.key for other in allowed)
    if not current.is_prerelease:
        assert not found.is_prerelease


@given(st.text(max_size=30))
def test_any_text_either_parses_or_is_none_never_raises(tag: str) -> None:
    version = parse_version(tag)
    assert version is None or version.tag == tag


def test_check_table_names_the_newer_tag() -> None:
    import dataclasses

    from bot.entrypoints.report import detail
    from tests.unit.fakes import outdated

    result = dataclasses.replace(outdated("app"), new_tag="1.3.0")
    assert detail(result).startswith("tag 1.3.0: ")
    assert not detail(outdated("app")).startswith("tag")

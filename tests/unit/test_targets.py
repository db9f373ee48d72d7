"""`HOST/NAME` targets: parsing, and resolving a name against the containers of several hosts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.targets import Target, parse_target, resolve_target
from bot.errors import AmbiguousTarget, ContainerNotFound, UnknownHost, UsageError

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
names = st.builds(lambda first, rest: first + rest, st.sampled_from(ALNUM),
                  st.text(alphabet=ALNUM + "._-", max_size=30))

HOSTS = ("a", "b", "nas")
EXISTING = [("a", "web"), ("b", "web"), ("a", "db"), ("nas", "media.server_1")]


@given(host=names, name=names)
def test_host_slash_name_parses_to_both_and_prints_back(host: str, name: str) -> None:
    target = parse_target(f"{host}/{name}")
    assert target == Target(name, host)
    assert parse_target(str(target)) == target


@given(name=names)
def test_a_bare_name_parses_to_no_host(name: str) -> None:
    assert parse_target(f"  {name} ") == Target(name)


@given(text=st.text(max_size=40))
def test_any_text_parses_or_is_a_usage_error(text: str) -> None:
    try:
        target = parse_target(text)
    except UsageError:
        return
    assert parse_target(str(target)) == target


@pytest.mark.parametrize("text", ["", "/web", "a/", "a/b/web", "-a/web", "a/.web", "a b/web",
                                  "a/web!", "a=b/web"])
def test_text_that_is_neither_host_slash_name_nor_name_is_refused(text: str) -> None:
    with pytest.raises(UsageError):
        parse_target(text)


def test_exact_host_and_name_resolve_even_when_another_host_has_the_name() -> None:
    assert resolve_target(parse_target("b/web"), HOSTS, EXISTING) == ("b", "web")


def test_a_bare_name_only_one_host_has_resolves_to_that_host() -> None:
    assert resolve_target(parse_target("media.server_1"), HOSTS, EXISTING) == (
        "nas", "media.server_1")


def test_a_bare_name_on_two_hosts_is_refused_naming_both_candidates() -> None:
    with pytest.raises(AmbiguousTarget, match="a/web, b/web") as caught:
        resolve_target(parse_target("web"), HOSTS, EXISTING)
    assert caught.value.candidates == ("a/web", "b/web")


def test_an_unknown_host_is_named_as_a_host_not_as_a_missing_container() -> None:
    with pytest.raises(UnknownHost, match="no Docker host named 'c'") as caught:
        resolve_target(parse_target("c/web"), HOSTS, EXISTING)
    assert caught.value.known == HOSTS


def test_a_watched_host_without_containers_is_not_unknown() -> None:
    with pytest.raises(ContainerNotFound, match="'spare/web'"):
        resolve_target(parse_target("spare/web"), (*HOSTS, "spare"), EXISTING)


@pytest.mark.parametrize("text", ["cache", "nas/web"])
def test_a_name_no_host_has_is_not_found(text: str) -> None:
    with pytest.raises(ContainerNotFound):
        resolve_target(parse_target(text), HOSTS, EXISTING)

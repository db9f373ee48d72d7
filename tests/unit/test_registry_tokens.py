"""Token answers, token URLs and the token cache."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import BadResponse
from bot.registry.tokens import (
    RENEW_MARGIN,
    Token,
    TokenCache,
    parse_token_answer,
    refresh_form,
    token_url,
)

NOW = 1_800_000_000.0
REGISTRY = "registry.example"
ISSUED = "2027-01-15T08:00:00Z"  # 1_800_000_000 is 2027-01-15T08:00:00Z


def parse(body: bytes, now: float) -> Token:
    return parse_token_answer(body, now, registry=REGISTRY)


def answer(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_token_field_is_used() -> None:
    assert parse(answer(token="abc"), NOW).value == "abc"


def test_access_token_field_is_used_when_token_is_absent() -> None:
    assert parse(answer(access_token="xyz"), NOW).value == "xyz"


def test_expires_in_defaults_to_sixty_seconds() -> None:
    assert parse(answer(token="t"), NOW).expires_at == NOW + 60


def test_expires_in_below_sixty_counts_as_sixty() -> None:
    assert parse(answer(token="t", expires_in=5), NOW).expires_at == NOW + 60


def test_expires_in_is_counted_from_issued_at() -> None:
    token = parse(answer(token="t", expires_in=300, issued_at=ISSUED), NOW + 100)
    assert token.expires_at == NOW + 300


@pytest.mark.parametrize("expires_in", [float("nan"), float("inf"), 10**12])
def test_absurd_lifetimes_are_bounded(expires_in: float) -> None:
    token = parse(answer(token="t", expires_in=expires_in), NOW)
    assert NOW + 60 <= token.expires_at <= NOW + 24 * 3600


def test_issued_at_skewed_beyond_the_lifetime_counts_from_now() -> None:
    token = parse(answer(token="t", expires_in=300, issued_at=ISSUED), NOW + 3600)
    assert token.expires_at == NOW + 3600 + 300
    future = parse(answer(token="t", expires_in=300, issued_at=ISSUED), NOW - 50)
    assert future.expires_at == NOW - 50 + 300


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>",
        b"[]",
        b'"token"',
        answer(token=""),
        answer(token=5),
        answer(other="x"),
        b"\xff\xfe",
    ],
)
def test_answers_without_a_token_are_refused(body: bytes) -> None:
    with pytest.raises(BadResponse) as refused:
        parse(body, NOW)
    assert refused.value.registry == REGISTRY and str(refused.value).startswith(REGISTRY)


@given(st.binary() | st.text().map(str.encode))
def test_token_answer_parser_raises_nothing_but_bad_response(body: bytes) -> None:
    try:
        parse(body, NOW)
    except BadResponse:
        pass


@given(
    st.dictionaries(
        st.sampled_from(["token", "access_token", "expires_in", "issued_at"]),
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    )
)
def test_any_json_object_gives_a_token_or_a_clear_refusal(fields: dict[str, object]) -> None:
    try:
        token = parse(json.dumps(fields).encode(), NOW)
    except BadResponse:
        return
    assert token.value
    assert NOW + 60 <= token.expires_at <= NOW + 24 * 3600


def test_token_repr_hides_the_value() -> None:
    assert "secret" not in repr(Token("secret", NOW))


def test_token_url_has_service_and_one_scope_parameter_per_scope() -> None:
    url = token_url(
        "https://auth.example/token",
        "https://reg.example/v2/",
        "reg",
        ["repository:a:pull", "repository:b/c:pull"],
    )
    assert url.host == "auth.example"
    assert url.params.get_list("scope") == ["repository:a:pull", "repository:b/c:pull"]
    assert url.params["service"] == "reg"


def test_token_url_keeps_the_realms_own_query() -> None:
    url = token_url("https://auth.example/token?account=me", "https://r/v2/", "s", ["x"])
    assert url.params["account"] == "me"
    assert url.params["service"] == "s"


def test_token_url_without_service_sends_none() -> None:
    url = token_url("https://auth.example/token", "https://r/v2/", None, ["x"])
    assert "service" not in url.params


def test_relative_realm_resolves_against_the_challenged_request() -> None:
    url = token_url("/token", "http://127.0.0.1:5000/v2/app/manifests/v1", "s", [])
    assert str(url) == "http://127.0.0.1:5000/token?service=s"


def test_refresh_form_joins_scopes_with_spaces() -> None:
    form = refresh_form("rt", "svc", ["repository:a:pull", "repository:b:pull"])
    assert form == {
        "grant_type": "refresh_token",
        "refresh_token": "rt",
        "client_id": "dockwarden",
        "service": "svc",
        "scope": "repository:a:pull repository:b:pull",
    }
    assert "service" not in refresh_form("rt", None, [])


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def test_cached_token_serves_every_scope_it_was_granted_for_until_shortly_before_expiry() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    token = Token("t", NOW + 300)
    cache.put("reg", ["a", "b"], token)
    assert cache.get("reg", "a") is token
    assert cache.get("reg", "b") is token
    assert cache.get("other", "a") is None
    assert cache.missing("reg", ["a", "c", "b", "c"]) == ["c"]
    clock.now = NOW + 300 - RENEW_MARGIN
    assert cache.get("reg", "a") is None
    assert cache.missing("reg", ["a", "b"]) == ["a", "b"]


_scope = st.builds(
    "repository:{}:pull".format,
    st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9._-]{1,8}){0,2}", fullmatch=True),
)
_param = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)


@given(
    st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), _param, max_size=3),
    st.none() | _param.filter(bool),
    st.lists(_scope, max_size=5),
)
def test_token_url_keeps_realm_query_and_adds_service_and_every_scope_in_order(
    query: dict[str, str], service: str | None, scopes: list[str]
) -> None:
    query.pop("service", None)
    query.pop("scope", None)
    realm = str(httpx.URL("https://auth.example/token", params=query))
    url = token_url(realm, "https://reg.example/v2/", service, scopes)
    items = url.params.multi_items()
    assert items[: len(query)] == list(query.items())
    rest = items[len(query) :]
    if service:
        assert rest[0] == ("service", service)
        rest = rest[1:]
    assert rest == [("scope", scope) for scope in scopes]

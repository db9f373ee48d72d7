"""WWW-Authenticate parsing: the headers real registries send, and the ones RFC 9110 allows."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.registry.challenge import (
    Challenge,
    choose_challenge,
    describe,
    parse_www_authenticate,
    render_www_authenticate,
)

HUB = (
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
    'scope="repository:library/nginx:pull"'
)


def test_docker_hub_bearer_challenge() -> None:
    assert parse_www_authenticate(HUB) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/nginx:pull",
            },
        )
    ]


def test_scope_with_commas_stays_one_param() -> None:
    (challenge,) = parse_www_authenticate(
        'Bearer realm="https://r.example/token",scope="repository:x:pull,push",error="insufficient_scope"'
    )
    assert challenge.params["scope"] == "repository:x:pull,push"
    assert challenge.params["error"] == "insufficient_scope"


def test_realm_case_is_preserved() -> None:
    (challenge,) = parse_www_authenticate('Bearer realm="https://Auth.Example/Token?X=Y"')
    assert challenge.realm == "https://Auth.Example/Token?X=Y"


def test_scheme_and_param_names_are_lowercased() -> None:
    (challenge,) = parse_www_authenticate('BASIC REALM="Sonatype Nexus Repository Manager"')
    assert challenge == Challenge("basic", {"realm": "Sonatype Nexus Repository Manager"})


def test_unquoted_token_values() -> None:
    (challenge,) = parse_www_authenticate("Basic realm=simple, charset=UTF-8")
    assert challenge.params == {"realm": "simple", "charset": "UTF-8"}


def test_unquoted_url_realm_survives() -> None:
    (challenge,) = parse_www_authenticate("Bearer realm=https://auth.example/token,service=reg")
    assert challenge.params == {"realm": "https://auth.example/token", "service": "reg"}


def test_backslash_escapes_in_quoted_strings() -> None:
    (challenge,) = parse_www_authenticate(r'Newauth title="Login to \"apps\" \\ here"')
    assert challenge.params["title"] == 'Login to "apps" \\ here'


def test_whitespace_around_equals_and_commas() -> None:
    (challenge,) = parse_www_authenticate('Bearer  realm = "https://r/t" ,\tservice =reg ')
    assert challenge.params == {"realm": "https://r/t", "service": "reg"}


def test_empty_list_elements_are_ignored() -> None:
    challenges = parse_www_authenticate(', ,Basic realm="a",, ,Bearer realm="b",,')
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[0].params == {"realm": "a"}


def test_rfc_9110_example_with_two_challenges_in_one_header() -> None:
    challenges = parse_www_authenticate(
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'
    )
    assert challenges == [
        Challenge("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
        Challenge("basic", {"realm": "simple"}),
    ]


def test_challenges_across_several_headers() -> None:
    challenges = parse_www_authenticate(["Negotiate", 'Basic realm="x"', "NTLM"])
    assert [c.scheme for c in challenges] == ["negotiate", "basic", "ntlm"]


def test_headers_joined_by_a_client_parse_like_separate_headers() -> None:
    separate = parse_www_authenticate(["Negotiate abc==", HUB, 'Basic realm="r"'])
    joined = parse_www_authenticate(", ".join(["Negotiate abc==", HUB, 'Basic realm="r"']))
    assert joined == separate


def test_token68_is_kept_as_a_param() -> None:
    (challenge,) = parse_www_authenticate("Negotiate YIIBhg+/x==")
    assert challenge == Challenge("negotiate", {"token68": "YIIBhg+/x=="})


def test_token68_before_another_challenge() -> None:
    challenges = parse_www_authenticate('Negotiate YIIB==, Bearer realm="https://r/t"')
    assert challenges == [
        Challenge("negotiate", {"token68": "YIIB=="}),
        Challenge("bearer", {"realm": "https://r/t"}),
    ]


def test_scheme_without_params() -> None:
    assert parse_www_authenticate("Basic") == [Challenge("basic", {})]


def test_first_of_a_repeated_param_wins() -> None:
    (challenge,) = parse_www_authenticate('Bearer realm="first", realm="second"')
    assert challenge.realm == "first"


def test_empty_quoted_value() -> None:
    (challenge,) = parse_www_authenticate('Bearer realm="", service=""')
    assert challenge.params == {"realm": "", "service": ""}


def test_unterminated_quote_keeps_what_was_read() -> None:
    (challenge,) = parse_www_authenticate('Bearer realm="https://r/t')
    assert challenge.realm == "https://r/t"


def test_params_before_any_scheme_are_dropped() -> None:
    assert parse_www_authenticate('realm="x", Basic realm="y"') == [
        Challenge("basic", {"realm": "y"})
    ]


def test_garbage_is_skipped_and_later_challenges_kept() -> None:
    challenges = parse_www_authenticate('"junk, more", =x, Basic realm="ok"')
    assert challenges[-1] == Challenge("basic", {"realm": "ok"})


@pytest.mark.parametrize("value", ["", "   ", ",,,", "\x00", '"', "=", "\\"])
def test_empty_or_junk_headers_give_no_challenge(value: str) -> None:
    assert parse_www_authenticate(value) == []


@pytest.mark.parametrize("value", [None, 42, [None, 42], [b"Basic"]])
def test_values_that_are_not_text_give_no_challenge(value: Any) -> None:
    assert parse_www_authenticate(value) == []


# --- choosing ---------------------------------------------------------------------------------


def test_unknown_scheme_beside_basic_is_chosen_as_basic() -> None:
    chosen = choose_challenge(parse_www_authenticate('Negotiate abc, Basic realm="r"'))
    assert chosen is not None and chosen.scheme == "basic"


def test_unknown_scheme_beside_bearer_is_chosen_as_bearer() -> None:
    chosen = choose_challenge(parse_www_authenticate(["NTLM", HUB]))
    assert chosen is not None and chosen.scheme == "bearer"


def test_first_usable_challenge_wins() -> None:
    chosen = choose_challenge(parse_www_authenticate(f'Basic realm="r", {HUB}'))
    assert chosen is not None and chosen.scheme == "basic"


def test_bearer_without_realm_is_not_usable() -> None:
    challenges = parse_www_authenticate('Bearer service="x", Basic realm="r"')
    chosen = choose_challenge(challenges)
    assert chosen is not None and chosen.scheme == "basic"
    assert choose_challenge(parse_www_authenticate('Bearer service="x"')) is None


def test_basic_without_realm_is_usable() -> None:
    assert choose_challenge(parse_www_authenticate("Basic")) == Challenge("basic", {})


def test_only_unknown_schemes_give_no_choice() -> None:
    assert choose_challenge(parse_www_authenticate("Negotiate, NTLM")) is None


def test_no_challenge_gives_no_choice() -> None:
    assert choose_challenge([]) is None


def test_describe_lists_offered_schemes_once() -> None:
    challenges = parse_www_authenticate("Negotiate a, NTLM, Negotiate b")
    assert describe(challenges) == "negotiate, ntlm"


def test_describe_says_when_bearer_lacks_a_realm() -> None:
    assert describe(parse_www_authenticate('Bearer service="x"')) == "bearer without realm"


def test_describe_nothing_offered() -> None:
    assert describe([]) == "none"


def test_constructed_challenges_are_normalised_and_copied() -> None:
    params = {"Realm": "R"}
    challenge = Challenge("BEARER", params)
    params["realm"] = "changed"
    assert challenge == Challenge("bearer", {"realm": "R"})
    assert challenge.usable


def test_challenges_are_hashable() -> None:
    a, b = parse_www_authenticate(HUB), parse_www_authenticate(HUB)
    assert len({a[0], b[0]}) == 1


# --- properties -------------------------------------------------------------------------------

_TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
_token = st.text(_TCHARS, min_size=1, max_size=10)
_token68 = st.builds(
    lambda body, pad: body + "=" * pad,
    st.text("-._~+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1),
    st.integers(0, 2),
)
_value = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
_params = st.dictionaries(_token, _value, max_size=4)
_challenge = st.one_of(
    st.builds(Challenge, _token, _params),
    st.builds(lambda scheme, t: Challenge(scheme, {"token68": t}), _token, _token68),
)


@given(st.lists(_challenge, max_size=4))
def test_rendered_challenges_parse_back_unchanged(challenges: list[Challenge]) -> None:
    assert parse_www_authenticate(render_www_authenticate(challenges)) == challenges


@given(st.lists(_challenge, max_size=4))
def test_rendered_challenges_parse_back_from_separate_headers(
    challenges: list[Challenge],
) -> None:
    headers = [render_www_authenticate([c]) for c in challenges]
    assert parse_www_authenticate(headers) == challenges


@given(st.text())
def test_parser_never_raises_on_text(text: str) -> None:
    for challenge in parse_www_authenticate(text):
        assert challenge.scheme == challenge.scheme.lower()
        assert all(name == name.lower() for name in challenge.params)


@given(st.lists(st.one_of(st.text(), st.none(), st.integers(), st.binary())))
def test_parser_never_raises_on_lists(values: list[Any]) -> None:
    parse_www_authenticate(values)


@given(st.text(st.sampled_from(' \t,="\\=abcBearer realm'), max_size=40))
def test_parser_never_raises_on_header_like_junk(text: str) -> None:
    challenges = parse_www_authenticate(text)
    choose_challenge(challenges)
    describe(challenges)


@pytest.mark.parametrize(
    ("header", "scheme", "params"),
    [
        (  # ECR: Basic with a realm that is no token endpoint
            'Basic realm="https://1234.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
            "basic",
            {
                "realm": "https://1234.dkr.ecr.us-east-1.amazonaws.com/",
                "service": "ecr.amazonaws.com",
            },
        ),
        (  # Google Artifact Registry: no service
            'Bearer realm="https://europe-docker.pkg.dev/v2/token"',
            "bearer",
            {"realm": "https://europe-docker.pkg.dev/v2/token"},
        ),
        (  # GHCR
            'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/r:pull"',
            "bearer",
            {
                "realm": "https://ghcr.io/token",
                "service": "ghcr.io",
                "scope": "repository:o/r:pull",
            },
        ),
        (  # a realm that already carries a query
            'Bearer realm="https://auth.example/token?account=a&x=1",service="reg"',
            "bearer",
            {"realm": "https://auth.example/token?account=a&x=1", "service": "reg"},
        ),
    ],
)
def test_registry_challenges_seen_in_the_wild(
    header: str, scheme: str, params: dict[str, str]
) -> None:
    assert parse_www_authenticate(header) == [Challenge(scheme, params)]

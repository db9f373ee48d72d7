"""Pure wire rules: which scheme a registry gets, Retry-After, Link pagination."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.registry.wire import (
    MAX_RETRY_AFTER,
    api_scheme,
    is_loopback,
    next_link,
    parse_retry_after,
    scheme_for,
    split_host,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    "registry",
    [
        "127.0.0.1:5000",
        "127.8.9.10",
        "localhost",
        "localhost:5000",
        "[::1]:5000",
        "[::1]",
        "app.localhost:80",
    ],
)
def test_loopback_registries_use_plain_http(registry: str) -> None:
    assert is_loopback(registry)
    assert scheme_for(registry) == "http"


@pytest.mark.parametrize(
    "registry", ["docker.io", "registry-1.docker.io", "ghcr.io", "10.0.0.5:5000", "[2001:db8::1]"]
)
def test_other_registries_use_https(registry: str) -> None:
    assert scheme_for(registry) == "https"


def test_configured_insecure_registry_uses_http_by_host_port_or_host() -> None:
    assert scheme_for("nexus.lan:8082", ["nexus.lan:8082"]) == "http"
    assert scheme_for("nexus.lan:8082", ["nexus.lan"]) == "http"
    assert scheme_for("nexus.lan:8082", ["other.lan:8082"]) == "https"


def test_insecure_cidr_covers_ip_registries_in_it() -> None:
    assert scheme_for("10.1.2.3:5000", ["10.0.0.0/8"]) == "http"
    assert scheme_for("192.168.1.2:5000", ["10.0.0.0/8"]) == "https"
    assert scheme_for("nexus.lan", ["10.0.0.0/8", "garbage/99"]) == "https"


def test_docker_hub_listed_insecure_by_either_name_is_spoken_to_in_plain_http() -> None:
    assert api_scheme("docker.io", "registry-1.docker.io", ["docker.io"]) == "http"
    assert api_scheme("docker.io", "registry-1.docker.io", ["registry-1.docker.io"]) == "http"
    assert api_scheme("docker.io", "registry-1.docker.io") == "https"
    assert api_scheme("ghcr.io", "ghcr.io", ["docker.io"]) == "https"


def test_split_host_handles_ports_and_ipv6() -> None:
    assert split_host("host:5000") == ("host", "5000")
    assert split_host("host") == ("host", None)
    assert split_host("[::1]:5000") == ("::1", "5000")
    assert split_host("::1") == ("::1", None)


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after(" 0 ", NOW) == 0.0


def test_retry_after_as_http_date_is_seconds_from_now() -> None:
    later = format_datetime(datetime.fromtimestamp(NOW + 42, UTC), usegmt=True)
    assert parse_retry_after(later, NOW) == pytest.approx(42.0)


def test_absurd_retry_after_is_clamped_to_an_hour() -> None:
    assert parse_retry_after("9" * 400, NOW) == MAX_RETRY_AFTER == 3600.0
    assert parse_retry_after("999999999", NOW) == 3600.0
    assert parse_retry_after("3601", NOW) == 3600.0
    assert parse_retry_after("0000000000042", NOW) == 42.0


def test_retry_after_date_far_ahead_is_clamped_to_an_hour() -> None:
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", NOW) == 3600.0
    in_a_year = format_datetime(datetime.fromtimestamp(NOW + 365 * 86400, UTC), usegmt=True)
    assert parse_retry_after(in_a_year, NOW) == 3600.0


def test_retry_after_in_the_past_means_now() -> None:
    earlier = format_datetime(datetime.fromtimestamp(NOW - 300, UTC), usegmt=True)
    assert parse_retry_after(earlier, NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "Mon, 99 Foo 2020", "²", "٣"])
def test_unusable_retry_after_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


@given(st.text())
def test_retry_after_parser_never_raises_and_never_goes_negative(value: str) -> None:
    wait = parse_retry_after(value, NOW)
    assert wait is None or 0 <= wait <= MAX_RETRY_AFTER


@given(st.integers(min_value=0, max_value=10**30))
def test_retry_after_seconds_are_exact_up_to_an_hour_then_an_hour(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == min(float(seconds), MAX_RETRY_AFTER)


@given(st.datetimes(timezones=st.just(UTC)))
def test_retry_after_dates_wait_at_most_an_hour(moment: datetime) -> None:
    wait = parse_retry_after(format_datetime(moment, usegmt=True), NOW)
    assert wait is not None and 0 <= wait <= MAX_RETRY_AFTER


def test_next_link_finds_rel_next() -> None:
    header = '</v2/app/tags/list?last=b&n=2>; rel="next"'
    assert next_link(header) == "/v2/app/tags/list?last=b&n=2"
    assert next_link('<https://r/x>; rel="prev", <https://r/y>; rel=next') == "https://r/y"
    assert next_link('<https://r/x>; rel="prev"') is None
    assert next_link(None) is None

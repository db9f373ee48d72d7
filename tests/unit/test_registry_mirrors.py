"""Registry mirrors: how they are read, and in which order Docker Hub lookups go to them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config.settings import load_settings
from bot.domain.model import CheckResult, CheckStatus
from bot.domain.reference import ImageRef, parse_reference
from bot.errors import ConfigError, ManifestNotFound, RegistryError, RegistryUnreachable
from bot.registry.config_blob import Platform
from bot.registry.mirrors import (
    Mirror,
    MirroredDigests,
    chosen_mirrors,
    engine_mirrors,
    parse_mirror,
    plain_http_hosts,
    with_endpoints,
)
from bot.registry.tags import Repository

HUB = parse_reference("nginx:1.27")
OTHER = parse_reference("ghcr.io/o/app:2")
LOCAL = Mirror("http", "127.0.0.1:5000")
CORP = Mirror("https", "mirror.corp.example")


class Registries:
    """An in-memory registry client: per registry host, the digests it holds by repo:tag."""

    def __init__(self, held: Mapping[str, Mapping[str, str]],
                 away: Iterable[str] = ()) -> None:
        self.held = held
        self.away = set(away)
        self.asked: list[tuple[str, str]] = []

    async def remote_digests(
        self, refs: Iterable[ImageRef]
    ) -> dict[ImageRef, str | RegistryError]:
        found: dict[ImageRef, str | RegistryError] = {}
        for ref in refs:
            self.asked.append((ref.registry, f"{ref.repository}:{ref.tag}"))
            if ref.registry in self.away:
                found[ref] = RegistryUnreachable("away", registry=ref.registry)
                continue
            digest = self.held.get(ref.registry, {}).get(f"{ref.repository}:{ref.tag}")
            found[ref] = digest or ManifestNotFound("not here", registry=ref.registry)
        return found

    async def tag_lists(
        self, refs: Iterable[ImageRef]
    ) -> dict[Repository, list[str] | RegistryError]:
        found: dict[Repository, list[str] | RegistryError] = {}
        for ref in refs:
            self.asked.append((ref.registry, f"{ref.repository} tags"))
            if ref.registry in self.away:
                found[(ref.registry, ref.repository)] = RegistryUnreachable(
                    "away", registry=ref.registry)
                continue
            held = self.held.get(ref.registry, {})
            tags = [key.partition(":")[2] for key in held
                    if key.partition(":")[0] == ref.repository]
            found[(ref.registry, ref.repository)] = tags or ManifestNotFound(
                "not here", registry=ref.registry)
        return found

    async def image_config(
        self, ref: ImageRef, digest: str, platform: Platform
    ) -> dict[str, Any]:
        self.asked.append((ref.registry, f"{ref.repository}@{digest}"))
        if ref.registry in self.away:
            raise RegistryUnreachable("away", registry=ref.registry)
        if digest not in self.held.get(ref.registry, {}).values():
            raise ManifestNotFound("not here", registry=ref.registry)
        return {"config": {"Labels": {"from": ref.registry}}}


def _digest(n: int) -> str:
    return "sha256:" + f"{n:x}" * 64


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,2}", fullmatch=True),
    port=st.none() | st.integers(1, 65535),
    slash=st.booleans(),
)
def test_a_mirror_url_is_read_back_as_scheme_host_and_port(
    scheme: str, host: str, port: int | None, slash: bool
) -> None:
    where = host if port is None else f"{host}:{port}"
    mirror = parse_mirror(f"{scheme}://{where}{'/' if slash else ''}")
    assert mirror == Mirror(scheme, where)
    assert parse_mirror(mirror.url) == mirror


def test_a_bare_mirror_host_is_spoken_to_over_https_as_docker_does() -> None:
    assert parse_mirror("mirror.gcr.io") == Mirror("https", "mirror.gcr.io")


@pytest.mark.parametrize("text", [
    "http://mirror.example/v2/", "https://mirror.example/?x=1", "ftp://mirror.example",
    "http://user:pw@mirror.example", "http://mirror.example:port", "http://",
])
def test_a_mirror_with_a_path_or_another_scheme_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid registry mirror"):
        parse_mirror(text)


def test_engine_mirrors_keep_the_engines_order_once_each_and_skip_bad_ones() -> None:
    info = {"RegistryConfig": {"Mirrors": [
        "http://127.0.0.1:5000/", "https://mirror.corp.example/", "http://127.0.0.1:5000",
        "https://bad.example/with/path/",
    ]}}
    assert engine_mirrors(info) == (LOCAL, CORP)
    assert engine_mirrors({}) == ()
    assert engine_mirrors({"RegistryConfig": {"Mirrors": None}}) == ()
    assert plain_http_hosts(engine_mirrors(info)) == ("127.0.0.1:5000",)


def test_the_setting_replaces_the_engines_mirrors() -> None:
    def info() -> dict[str, object]:
        return {"RegistryConfig": {"Mirrors": ["https://mirror.corp.example/"]}}

    assert chosen_mirrors(None, info) == (CORP,)
    assert chosen_mirrors(("http://127.0.0.1:5000",), info) == (LOCAL,)
    assert chosen_mirrors((), info) == ()


@pytest.mark.parametrize(("value", "expected"), [
    ("", None),
    ("none", ()),
    ("NONE", ()),
    ("http://127.0.0.1:5000/, mirror.corp.example", ("http://127.0.0.1:5000",
                                                     "https://mirror.corp.example")),
])
def test_registry_mirrors_setting(value: str, expected: tuple[str, ...] | None) -> None:
    settings = load_settings(_env_file=None, DOCKWARDEN_REGISTRY_MIRRORS=value)
    assert settings.registry_mirrors == expected


def test_registry_mirrors_setting_with_a_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="registry_mirrors|REGISTRY_MIRRORS"):
        load_settings(_env_file=None, DOCKWARDEN_REGISTRY_MIRRORS="http://mirror.example/v2")


async def test_hub_images_go_to_each_mirror_in_turn_and_docker_hub_last() -> None:
    held = {"127.0.0.1:5000": {}, "mirror.corp.example": {"library/nginx:1.27": _digest(1)},
            "docker.io": {"library/nginx:1.27": _digest(2)}}
    registries = Registries(held)
    mirrored = MirroredDigests(registries, lambda: (LOCAL, CORP))

    answers = await mirrored.remote_digests([HUB])

    assert answers == {HUB: _digest(1)}
    assert registries.asked == [("127.0.0.1:5000", "library/nginx:1.27"),
                                ("mirror.corp.example", "library/nginx:1.27")]
    assert mirrored.answered_by == {HUB: "https://mirror.corp.example"}


async def test_docker_hub_answers_what_no_mirror_has_and_says_so() -> None:
    registries = Registries({"docker.io": {"library/nginx:1.27": _digest(2)}},
                            away={"127.0.0.1:5000"})
    mirrored = MirroredDigests(registries, lambda: (LOCAL,))

    assert await mirrored.remote_digests([HUB]) == {HUB: _digest(2)}
    assert mirrored.answered_by == {HUB: "docker.io"}


async def test_when_every_endpoint_fails_docker_hubs_error_is_the_answer() -> None:
    registries = Registries({}, away={"docker.io"})
    mirrored = MirroredDigests(registries, lambda: (LOCAL,))

    (answer,) = (await mirrored.remote_digests([HUB])).values()

    assert isinstance(answer, RegistryUnreachable) and answer.registry == "docker.io"
    assert mirrored.answered_by == {}


async def test_other_registries_are_never_mirrored() -> None:
    registries = Registries({"ghcr.io": {"o/app:2": _digest(3)}})
    mirrored = MirroredDigests(registries, lambda: (LOCAL,))

    assert await mirrored.remote_digests([OTHER]) == {OTHER: _digest(3)}
    assert registries.asked == [("ghcr.io", "o/app:2")]
    assert mirrored.answered_by == {}


async def test_an_engine_that_cannot_say_its_mirrors_is_asked_again_next_time() -> None:
    from bot.errors import EngineError

    calls: list[int] = []

    def mirrors() -> tuple[Mirror, ...]:
        calls.append(1)
        if len(calls) == 1:
            raise EngineError("engine away")
        return (LOCAL,)

    registries = Registries({"127.0.0.1:5000": {"library/nginx:1.27": _digest(1)},
                             "docker.io": {"library/nginx:1.27": _digest(2)}})
    mirrored = MirroredDigests(registries, mirrors)

    assert await mirrored.remote_digests([HUB]) == {HUB: _digest(2)}
    assert await mirrored.remote_digests([HUB]) == {HUB: _digest(1)}
    assert await mirrored.remote_digests([HUB]) == {HUB: _digest(1)}
    assert len(calls) == 2


def test_results_name_the_endpoint_only_when_mirrors_answered() -> None:
    registries = Registries({})
    mirrored = MirroredDigests(registries, lambda: (LOCAL,))
    newer = HUB.with_tag("1.28")
    mirrored.answered_by.update({HUB: LOCAL.url, newer: "docker.io"})
    same = CheckResult("web", str(HUB), CheckStatus.UP_TO_DATE, _digest(1), _digest(1))
    proposed = CheckResult("api", str(HUB), CheckStatus.UPDATE_AVAILABLE, _digest(1),
                           _digest(4), new_tag="1.28")
    skipped = CheckResult("db", "local:1", CheckStatus.SKIPPED)

    told = with_endpoints([same, proposed, skipped], [HUB, HUB, None], mirrored)

    assert [r.endpoint for r in told] == [LOCAL.url, "docker.io", None]
    assert told[0].as_json()["endpoint"] == LOCAL.url
    assert "endpoint" not in told[2].as_json()
    assert with_endpoints([same], [HUB], registries) == (same,)


async def test_one_digest_is_asked_the_same_way_and_a_failure_is_raised() -> None:
    registries = Registries({"127.0.0.1:5000": {"library/nginx:1.27": _digest(1)}},
                            away={"docker.io"})
    mirrored = MirroredDigests(registries, lambda: (LOCAL,))

    assert await mirrored.remote_digest(HUB) == _digest(1)
    with pytest.raises(RegistryUnreachable):
        await mirrored.remote_digest(HUB.with_tag("1.28"))


async def test_the_engine_is_asked_for_mirrors_only_for_docker_hub_images() -> None:
    asked: list[int] = []

    def mirrors() -> tuple[Mirror, ...]:
        asked.append(1)
        return (LOCAL,)

    mirrored = MirroredDigests(Registries({"ghcr.io": {"o/app:2": _digest(3)}}), mirrors)

    assert await mirrored.remote_digests([OTHER]) == {OTHER: _digest(3)}
    assert asked == []


async def test_tag_listings_of_docker_hub_images_go_to_the_mirrors_in_order_then_docker_hub(
) -> None:
    registries = Registries({"mirror.corp.example": {"library/nginx:1.27": _digest(1),
                                                     "library/nginx:1.28": _digest(2)},
                             "ghcr.io": {"o/app:2": _digest(3)}},
                            away={"docker.io"})
    mirrored = MirroredDigests(registries, lambda: (LOCAL, CORP))

    lists = await mirrored.tag_lists([HUB, HUB.with_tag("1.28"), OTHER])

    assert lists == {("docker.io", "library/nginx"): ["1.27", "1.28"],
                     ("ghcr.io", "o/app"): ["2"]}
    # One listing per repository: the first mirror lacks it, the second has it; Hub never asked.
    assert sorted(registries.asked) == sorted([
        ("127.0.0.1:5000", "library/nginx tags"), ("mirror.corp.example", "library/nginx tags"),
        ("ghcr.io", "o/app tags")])
    assert mirrored.answered_by == {}


async def test_a_tag_listing_no_mirror_gives_is_docker_hubs_answer() -> None:
    registries = Registries({"docker.io": {"library/nginx:1.27": _digest(1)}},
                            away={"127.0.0.1:5000"})
    mirrored = MirroredDigests(registries, lambda: (LOCAL,))

    assert await mirrored.tag_lists([HUB]) == {("docker.io", "library/nginx"): ["1.27"]}
    registries.away.add("docker.io")
    (failed,) = (await mirrored.tag_lists([HUB])).values()
    assert isinstance(failed, RegistryUnreachable) and failed.registry == "docker.io"


async def test_an_image_config_is_read_from_the_first_mirror_that_has_it_else_docker_hub(
) -> None:
    registries = Registries({"mirror.corp.example": {"library/nginx:1.27": _digest(1)},
                             "docker.io": {"library/nginx:1.28": _digest(2)}},
                            away={"127.0.0.1:5000"})
    mirrored = MirroredDigests(registries, lambda: (LOCAL, CORP))

    mirrored_config = await mirrored.image_config(HUB, _digest(1), Platform())
    hub_config = await mirrored.image_config(HUB, _digest(2), Platform())

    assert mirrored_config == {"config": {"Labels": {"from": "mirror.corp.example"}}}
    assert hub_config == {"config": {"Labels": {"from": "docker.io"}}}
    with pytest.raises(ManifestNotFound) as missing:
        await mirrored.image_config(HUB, _digest(9), Platform())
    assert missing.value.registry == "docker.io"
    assert mirrored.answered_by == {}

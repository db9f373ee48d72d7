"""Image reference parsing and normalisation, against distribution/reference's behaviour."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.reference import (
    DOCKER_HUB,
    ImageRef,
    is_docker_hub,
    is_image_id,
    parse_reference,
    split_digest,
    without_tag,
)
from bot.errors import InvalidReference

DIGEST = "sha256:" + "0123456789abcdef" * 4
OTHER_DIGEST = "sha256:" + "f" * 64


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.27", "docker.io/library/nginx:1.27"),
        ("library/nginx", "docker.io/library/nginx:latest"),
        ("docker.io/nginx", "docker.io/library/nginx:latest"),
        ("index.docker.io/nginx", "docker.io/library/nginx:latest"),
        ("index.docker.io/user/app:2", "docker.io/user/app:2"),
        ("user/app", "docker.io/user/app:latest"),
        ("user/team/app:v1", "docker.io/user/team/app:v1"),
        ("ghcr.io/owner/repo:1.2", "ghcr.io/owner/repo:1.2"),
        ("quay.io/org/app", "quay.io/org/app:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/app:dev", "localhost:5000/app:dev"),
        ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest"),
        ("[::1]:5000/app:1", "[::1]:5000/app:1"),
        ("[fe80::1]/app", "[fe80::1]/app:latest"),
        ("Registry/app", "Registry/app:latest"),
        ("my-registry.example.com:443/a/b/c", "my-registry.example.com:443/a/b/c:latest"),
    ],
)
def test_references_normalise_like_docker(text: str, normalised: str) -> None:
    assert str(parse_reference(text)) == normalised


def test_first_component_without_dot_colon_or_uppercase_is_a_hub_namespace() -> None:
    ref = parse_reference("myuser/app")
    assert (ref.registry, ref.repository) == ("docker.io", "myuser/app")


def test_registry_only_counts_when_a_path_follows_it() -> None:
    # `localhost:5000` alone is the Hub image `localhost` at tag `5000`, as Docker reads it.
    ref = parse_reference("localhost:5000")
    assert (ref.registry, ref.repository, ref.tag) == ("docker.io", "library/localhost", "5000")


def test_missing_tag_and_digest_means_latest() -> None:
    assert parse_reference("alpine").tag == "latest"


def test_digest_only_reference_has_no_tag() -> None:
    ref = parse_reference(f"alpine@{DIGEST}")
    assert (ref.tag, ref.digest) == (None, DIGEST)
    assert str(ref) == f"docker.io/library/alpine@{DIGEST}"


def test_tag_and_digest_are_both_kept() -> None:
    ref = parse_reference(f"ghcr.io/o/r:1.2@{DIGEST}")
    assert (ref.tag, ref.digest) == ("1.2", DIGEST)
    assert str(ref) == f"ghcr.io/o/r:1.2@{DIGEST}"


def test_docker_hub_properties() -> None:
    ref = parse_reference("nginx")
    assert ref.api_host == "registry-1.docker.io"
    assert ref.credentials_key == "https://index.docker.io/v1/"
    assert ref.name == "docker.io/library/nginx"
    assert ref.scope == "repository:library/nginx:pull"


def test_other_registry_properties_use_the_host_itself() -> None:
    ref = parse_reference("127.0.0.1:5000/team/app:3")
    assert ref.api_host == "127.0.0.1:5000"
    assert ref.credentials_key == "127.0.0.1:5000"
    assert ref.name == "127.0.0.1:5000/team/app"
    assert ref.scope == "repository:team/app:pull"


@pytest.mark.parametrize(
    ("text", "familiar"),
    [
        ("nginx", "nginx:latest"),
        ("docker.io/library/nginx:1", "nginx:1"),
        ("user/app:2", "user/app:2"),
        ("library/a/b", "library/a/b:latest"),
        ("ghcr.io/o/r:1", "ghcr.io/o/r:1"),
        (f"nginx@{DIGEST}", f"nginx@{DIGEST}"),
    ],
)
def test_familiar_form_is_what_docker_shows(text: str, familiar: str) -> None:
    assert parse_reference(text).familiar == familiar


def test_with_digest_pins_and_keeps_the_tag() -> None:
    ref = parse_reference("ghcr.io/o/r:1.2").with_digest(DIGEST)
    assert str(ref) == f"ghcr.io/o/r:1.2@{DIGEST}"


def test_with_tag_drops_the_old_digest() -> None:
    ref = parse_reference(f"ghcr.io/o/r:1.2@{DIGEST}").with_tag("1.3")
    assert (ref.tag, ref.digest) == ("1.3", None)


def test_with_digest_rejects_a_bad_digest() -> None:
    with pytest.raises(InvalidReference, match="digest"):
        parse_reference("nginx").with_digest("sha256:abc")


def test_with_tag_rejects_a_bad_tag() -> None:
    with pytest.raises(InvalidReference, match="tag"):
        parse_reference("nginx").with_tag("-bad")


def test_refs_are_hashable_and_equal_by_value() -> None:
    a, b = parse_reference("nginx"), parse_reference("docker.io/library/nginx:latest")
    assert a == b
    assert {a: 1}[b] == 1


def test_constructed_ref_defaults_to_latest() -> None:
    assert str(ImageRef("ghcr.io", "o/r")) == "ghcr.io/o/r:latest"


def test_invalid_reference_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_reference("UPPER/Case")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("nginx latest", "whitespace"),
        ("Nginx", "lowercase"),
        ("ghcr.io/Owner/repo", "lowercase"),
        ("nginx:", "empty tag"),
        ("nginx:-x", "tag"),
        ("nginx:.x", "tag"),
        ("nginx:" + "a" * 129, "tag"),
        ("nginx@sha256:abc", "64 lowercase hex"),
        ("nginx@sha256:" + "A" * 64, "64 lowercase hex"),
        ("nginx@" + "a" * 64, "algorithm:hex"),
        ("nginx@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("nginx@sha256:" + "g" * 64, "64 lowercase hex"),
        ("nginx@sha256", "algorithm:hex"),
        ("nginx@", "algorithm:hex"),
        ("a//b", "empty path component"),
        ("a/b/", "empty path component"),
        ("/a", "empty path component"),
        ("a_-b", "path component"),
        ("-a", "path component"),
        ("a..b", "path component"),
        ("ghcr.io/", "empty path component"),
        ("-bad.io/a", "registry host"),
        ("host.io:port/a", "registry host"),
        ("0123456789abcdef" * 4, "image ID"),
        ("sha256:" + "0123456789abcdef" * 4, "image ID"),
        ("a/" + "b" * 254, "longer than 255"),
    ],
)
def test_invalid_references_say_why(text: str, why: str) -> None:
    with pytest.raises(InvalidReference, match=why) as raised:
        parse_reference(text)
    assert raised.value.text == text


def test_path_length_excludes_the_registry() -> None:
    assert parse_reference("example.com/" + "a" * 255).repository == "a" * 255
    with pytest.raises(InvalidReference):
        parse_reference("example.com/" + "a" * 256)


def test_library_prefix_counts_towards_the_path_length() -> None:
    parse_reference("a" * 247)
    with pytest.raises(InvalidReference):
        parse_reference("a" * 248)


def test_allowed_separators_in_path_components() -> None:
    ref = parse_reference("ghcr.io/a.b/c_d/e__f/g---h")
    assert ref.repository == "a.b/c_d/e__f/g---h"


# --- properties -------------------------------------------------------------------------------

_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_separator = st.sampled_from([".", "_", "__", "-", "--"])
_component = st.builds(
    lambda first, rest: first + "".join(sep + part for sep, part in rest),
    _alnum,
    st.lists(st.tuples(_separator, _alnum), max_size=2),
)
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_label = st.one_of(
    st.text(_ALNUM, min_size=1, max_size=1),
    st.builds(
        lambda a, mid, b: a + mid + b,
        st.text(_ALNUM, min_size=1, max_size=1),
        st.text(_ALNUM + "-", max_size=6),
        st.text(_ALNUM, min_size=1, max_size=1),
    ),
)
_domain = st.one_of(
    st.just("docker.io"),
    st.just("index.docker.io"),
    st.just("localhost"),
    st.builds(lambda labels: ".".join(labels), st.lists(_label, min_size=2, max_size=3)),
    st.builds(lambda a, b, c, d: f"{a}.{b}.{c}.{d}", *[st.integers(0, 255)] * 4),
    st.lists(st.text("0123456789abcdef", max_size=4), min_size=3, max_size=6).map(
        lambda groups: "[" + ":".join(groups) + "]"
    ),
)
_port = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
_tag = st.builds(
    lambda first, rest: first + rest,
    st.text(_ALNUM + "_", min_size=1, max_size=1),
    st.text(_ALNUM + "_.-", max_size=20),
)
_digest = st.builds(
    lambda algorithm, data: f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}",
    st.sampled_from(["sha256", "sha384", "sha512"]),
    st.binary(max_size=8),
)


@st.composite
def _parts(draw: st.DrawFn) -> tuple[str, str, str, str, str]:
    """(text, domain with port or "", path, tag or "", digest or "") of a valid reference."""
    domain = draw(st.one_of(st.just(""), st.builds(lambda d, p: d + p, _domain, _port)))
    path = "/".join(draw(st.lists(_component, min_size=1, max_size=4)))
    first = path.split("/")[0]
    if not domain and ("." in first or first == "localhost"):
        domain = "docker.io"  # without it the first component would read as a registry
    tag = draw(st.one_of(st.just(""), _tag))
    digest = draw(st.one_of(st.just(""), _digest))
    text = (f"{domain}/" if domain else "") + path
    return (
        text + (f":{tag}" if tag else "") + (f"@{digest}" if digest else ""),
        domain,
        path,
        tag,
        digest,
    )


def _references() -> st.SearchStrategy[str]:
    return _parts().map(lambda parts: parts[0])


@given(_references())
def test_generated_references_round_trip_through_str(text: str) -> None:
    ref = parse_reference(text)
    assert parse_reference(str(ref)) == ref


@given(_references())
def test_generated_references_round_trip_through_familiar(text: str) -> None:
    ref = parse_reference(text)
    assert parse_reference(ref.familiar) == ref


@given(_parts())
def test_generated_references_keep_their_parts(parts: tuple[str, str, str, str, str]) -> None:
    text, domain, path, tag, digest = parts
    ref = parse_reference(text)
    assert ref.tag == (tag or (None if digest else "latest"))
    assert ref.digest == (digest or None)
    if domain and domain not in ("docker.io", "index.docker.io"):
        assert (ref.registry, ref.repository) == (domain, path)
    elif "/" in path:
        assert (ref.registry, ref.repository) == ("docker.io", path)


@given(st.text(max_size=80))
def test_arbitrary_text_parses_or_raises_invalid_reference(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidReference as exc:
        assert exc.why
    else:
        assert parse_reference(str(ref)) == ref


@given(_references(), st.sampled_from([" ", "\t", "//", "@@", "::", "/-", "/_", ".."]), st.data())
def test_breaking_a_valid_reference_raises_invalid_reference(
    text: str, breaker: str, data: st.DataObject
) -> None:
    # Insert past the first '/' so that a registry port or label is not what gets broken.
    at = data.draw(st.integers(text.find("/") + 1, len(text)))
    broken = text[:at] + breaker + text[at:]
    if breaker == ".." and _in_tag(broken, at):
        return  # `..` is legal inside a tag
    with pytest.raises(InvalidReference):
        parse_reference(broken)


def _in_tag(text: str, at: int) -> bool:
    name = text.split("@")[0]
    colon = name.rfind(":")
    return colon > name.rfind("/") and colon < at <= len(name)


@given(_references(), _digest, _tag)
def test_with_digest_and_with_tag_give_parseable_references(
    text: str, digest: str, tag: str
) -> None:
    pinned = parse_reference(text).with_digest(digest)
    assert parse_reference(str(pinned)) == pinned and pinned.digest == digest
    retagged = pinned.with_tag(tag)
    assert parse_reference(str(retagged)) == retagged
    assert (retagged.tag, retagged.digest, retagged.name) == (tag, None, pinned.name)


# ---- reference-like text beside the grammar ---------------------------------------------------

IMAGE_ID = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "text",
    [IMAGE_ID, IMAGE_ID.removeprefix("sha256:"), "sha256:0123456789ab", "sha256:0123"],
)
def test_full_ids_and_sha256_prefixed_text_are_image_ids(text: str) -> None:
    assert is_image_id(text)
    assert is_image_id(text, "sha256:" + "f" * 64)


def test_a_short_hex_id_is_an_image_id_only_when_it_begins_the_containers_image() -> None:
    assert is_image_id("0123456789ab", IMAGE_ID)
    assert not is_image_id("0123456789ab", "sha256:" + "f" * 64)
    assert not is_image_id("0123456789ab")
    # Fewer than twelve digits is a Hub name Docker would look up, not an id.
    assert not is_image_id("0123456789a", IMAGE_ID)


@pytest.mark.parametrize(
    "text", ["nginx", "nginx:1.27", "ghcr.io/o/r@" + IMAGE_ID, "deadbeefcafe1"]
)
def test_references_are_not_image_ids(text: str) -> None:
    assert not is_image_id(text, IMAGE_ID)


@given(st.text(alphabet="0123456789abcdef", min_size=12, max_size=64))
def test_every_hex_prefix_of_the_running_image_is_an_image_id(prefix: str) -> None:
    assert is_image_id(prefix, "sha256:" + prefix + "0" * (64 - len(prefix)))


@pytest.mark.parametrize(
    "host", ["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com",
             "Index.Docker.IO"],
)
def test_every_name_of_docker_hub_is_docker_hub(host: str) -> None:
    assert is_docker_hub(host)


@pytest.mark.parametrize("host", ["ghcr.io", "docker.io:5000", "hub.docker.com", "localhost"])
def test_other_hosts_are_not_docker_hub(host: str) -> None:
    assert not is_docker_hub(host)


def test_a_reference_keeps_the_api_host_docker_itself_keeps() -> None:
    # distribution/reference folds only index.docker.io into docker.io.
    assert parse_reference("index.docker.io/app").registry == DOCKER_HUB
    assert parse_reference("registry-1.docker.io/app").registry == "registry-1.docker.io"


@pytest.mark.parametrize(
    ("image", "name", "tagless"),
    [
        ("nginx:1@" + IMAGE_ID, "nginx:1", "nginx"),
        ("localhost:5000/a/b:2@" + IMAGE_ID, "localhost:5000/a/b:2", "localhost:5000/a/b"),
        ("localhost:5000/a/b", "localhost:5000/a/b", "localhost:5000/a/b"),
        ("nginx@" + IMAGE_ID, "nginx", "nginx"),
    ],
)
def test_engine_image_text_splits_into_name_tag_and_digest(
    image: str, name: str, tagless: str
) -> None:
    assert split_digest(image)[0] == name
    assert without_tag(name) == tagless


@given(_references())
def test_without_tag_drops_exactly_the_parsed_tag(text: str) -> None:
    name, _ = split_digest(text)
    parsed = parse_reference(name)
    stripped = parse_reference(without_tag(name))
    assert (stripped.registry, stripped.repository) == (parsed.registry, parsed.repository)

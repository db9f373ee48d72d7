"""Docker credentials: config.json entries and real docker-credential-* programs."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import AuthFailed, ConfigError
from bot.registry.credentials import (
    Credentials,
    DockerCredentials,
    helper_server_url,
    registry_key,
)

HUB_KEY = "https://index.docker.io/v1/"

HELPER = """#!{python}
import json, pathlib, sys
here = pathlib.Path(__file__).parent
server = sys.stdin.read()
with open(here / "calls.log", "a") as log:
    log.write(" ".join(sys.argv[1:]) + " " + server + "\\n")
if sys.argv[1:] != ["get"]:
    sys.exit(2)
entry = json.loads((here / "store.json").read_text()).get(server)
if entry == "crash":
    print("the keychain is locked", file=sys.stderr)
    sys.exit(3)
if entry == "not-found-on-stderr":
    print("credentials not found in native keychain", file=sys.stderr)
    sys.exit(1)
if entry == "garbage":
    print("not json s3cr3t-leak")
    sys.exit(0)
if entry is None:
    print("credentials not found in native keychain")
    sys.exit(1)
print(json.dumps(dict(ServerURL=server, **entry)))
"""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_config(directory: Path, config: dict[str, Any]) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return str(directory)


class Helper:
    """A real `docker-credential-test` program on PATH, answering from a JSON store."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.store: dict[str, Any] = {}

    def set(self, server: str, entry: Any) -> None:
        self.store[server] = entry
        (self.bin_dir / "store.json").write_text(json.dumps(self.store))

    @property
    def calls(self) -> list[str]:
        log = self.bin_dir / "calls.log"
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Helper:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "docker-credential-test"
    program.write_text(HELPER.format(python=sys.executable))
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    found = Helper(bin_dir)
    found.set("__placeholder__", None)
    return found


# --- config.json auths ------------------------------------------------------------------------


def test_missing_config_means_anonymous(tmp_path: Path) -> None:
    assert DockerCredentials(str(tmp_path / "nowhere")).lookup("ghcr.io") is None


def test_empty_config_file_means_anonymous(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("")
    assert DockerCredentials(str(tmp_path)).lookup("ghcr.io") is None


def test_auth_field_is_base64_user_and_password(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"auths": {"ghcr.io": {"auth": b64("me:pa:ss")}}})
    assert DockerCredentials(config).lookup("ghcr.io") == Credentials("me", "pa:ss")


def test_username_and_password_fields(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"auths": {"ghcr.io": {"username": "u", "password": "p"}}})
    assert DockerCredentials(config).lookup("ghcr.io") == Credentials("u", "p")


def test_identity_token_entry(tmp_path: Path) -> None:
    entry = {"auth": b64("u:"), "identitytoken": "refresh-me"}
    config = write_config(tmp_path, {"auths": {"127.0.0.1:5000": entry}})
    found = DockerCredentials(config).lookup("127.0.0.1:5000")
    assert found == Credentials("u", None, "refresh-me")
    assert found is not None and found.basic is None


def test_entry_without_secrets_means_anonymous(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"auths": {HUB_KEY: {}}})
    assert DockerCredentials(config).lookup("docker.io") is None


def test_other_registries_do_not_match(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"auths": {"ghcr.io": {"auth": b64("u:p")}}})
    assert DockerCredentials(config).lookup("quay.io") is None


def test_port_is_part_of_the_registry(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"auths": {"127.0.0.1:5000": {"auth": b64("u:p")}}})
    creds = DockerCredentials(config)
    assert creds.lookup("127.0.0.1:5000") == Credentials("u", "p")
    assert creds.lookup("127.0.0.1:5001") is None


@pytest.mark.parametrize(
    "key",
    [
        HUB_KEY,
        "index.docker.io",
        "docker.io",
        "registry-1.docker.io",
        "https://registry-1.docker.io/v2/",
        "http://index.docker.io/v1",
    ],
)
@pytest.mark.parametrize("asked", ["docker.io", "registry-1.docker.io", HUB_KEY, "index.docker.io"])
def test_docker_hub_is_found_under_any_of_its_keys(tmp_path: Path, key: str, asked: str) -> None:
    config = write_config(tmp_path, {"auths": {key: {"auth": b64("hubuser:hubpass")}}})
    assert DockerCredentials(config).lookup(asked) == Credentials("hubuser", "hubpass")


def test_canonical_hub_key_wins_over_an_alias(tmp_path: Path) -> None:
    auths = {"docker.io": {"auth": b64("alias:x")}, HUB_KEY: {"auth": b64("canonical:y")}}
    config = write_config(tmp_path, {"auths": auths})
    found = DockerCredentials(config).lookup("docker.io")
    assert found is not None and found.username == "canonical"


@pytest.mark.parametrize("key", ["https://ghcr.io", "https://ghcr.io/v2/", "GHCR.IO", "ghcr.io/"])
def test_keys_with_scheme_path_or_case_are_normalised(tmp_path: Path, key: str) -> None:
    config = write_config(tmp_path, {"auths": {key: {"auth": b64("u:p")}}})
    assert DockerCredentials(config).lookup("ghcr.io") == Credentials("u", "p")


def test_registry_key_unifies_hub_names() -> None:
    assert {registry_key(k) for k in (HUB_KEY, "index.docker.io", "registry-1.docker.io")} == {
        "docker.io"
    }


def test_default_directory_is_home_dot_docker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path / ".docker", {"auths": {"ghcr.io": {"auth": b64("home:p")}}})
    monkeypatch.setenv("HOME", str(tmp_path))
    assert DockerCredentials().lookup("ghcr.io") == Credentials("home", "p")


def test_docker_config_env_is_left_to_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = write_config(tmp_path / "env", {"auths": {"ghcr.io": {"auth": b64("env:p")}}})
    monkeypatch.setenv("DOCKER_CONFIG", elsewhere)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert DockerCredentials(None).lookup("ghcr.io") is None


# --- malformed config -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"auths": []}', "'auths' must be a JSON object"),
        ('{"auths": {"ghcr.io": "x"}}', "must be an object"),
        ('{"auths": {"ghcr.io": {"auth": "%%%"}}}', "not base64"),
        ('{"auths": {"ghcr.io": {"auth": "' + b64("nocolon") + '"}}}', "user:password"),
        ('{"auths": {"ghcr.io": {"password": 5}}}', "'password' must be a string"),
        ('{"credHelpers": {"ghcr.io": 1}}', "credHelpers"),
        ('{"credHelpers": ["x"]}', "credHelpers"),
        ('{"credsStore": true}', "credsStore"),
        ('{"credsStore": "../../bin/sh"}', "not a credential helper name"),
        ('{"credHelpers": {"ghcr.io": "a b"}}', "not a credential helper name"),
    ],
)
def test_malformed_config_names_the_file_and_the_problem(
    tmp_path: Path, text: str, complaint: str
) -> None:
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ConfigError, match=complaint) as raised:
        DockerCredentials(str(tmp_path))
    assert str(tmp_path / "config.json") in str(raised.value)


def test_malformed_auth_message_does_not_echo_the_value(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"auths": {"ghcr.io": {"auth": "s3cr3t!"}}}')
    with pytest.raises(ConfigError) as raised:
        DockerCredentials(str(tmp_path))
    assert "s3cr3t" not in str(raised.value)


# --- credential helpers -----------------------------------------------------------------------


def test_creds_store_answer_is_used(tmp_path: Path, helper: Helper) -> None:
    helper.set("ghcr.io", {"Username": "store-user", "Secret": "store-secret"})
    config = write_config(tmp_path / "cfg", {"credsStore": "test"})
    assert DockerCredentials(config).lookup("ghcr.io") == Credentials("store-user", "store-secret")


def test_creds_store_not_found_means_anonymous(tmp_path: Path, helper: Helper) -> None:
    config = write_config(tmp_path / "cfg", {"credsStore": "test"})
    assert DockerCredentials(config).lookup("quay.io") is None
    assert helper.calls == ["get quay.io"]


def test_creds_store_not_found_falls_back_to_inline_auth(tmp_path: Path, helper: Helper) -> None:
    config = write_config(
        tmp_path / "cfg",
        {"credsStore": "test", "auths": {"quay.io": {"auth": b64("inline:p")}}},
    )
    assert DockerCredentials(config).lookup("quay.io") == Credentials("inline", "p")


def test_helper_answer_wins_over_inline_auth(tmp_path: Path, helper: Helper) -> None:
    helper.set("quay.io", {"Username": "helper", "Secret": "h"})
    config = write_config(
        tmp_path / "cfg",
        {"credsStore": "test", "auths": {"quay.io": {"auth": b64("inline:p")}}},
    )
    assert DockerCredentials(config).lookup("quay.io") == Credentials("helper", "h")


def test_token_username_means_identity_token(tmp_path: Path, helper: Helper) -> None:
    helper.set("127.0.0.1:5000", {"Username": "<token>", "Secret": "refresh-token"})
    config = write_config(tmp_path / "cfg", {"credsStore": "test"})
    found = DockerCredentials(config).lookup("127.0.0.1:5000")
    assert found == Credentials(identitytoken="refresh-token")


def test_helper_is_asked_for_docker_hub_by_its_v1_url(tmp_path: Path, helper: Helper) -> None:
    helper.set(HUB_KEY, {"Username": "hub", "Secret": "s"})
    config = write_config(tmp_path / "cfg", {"credsStore": "test"})
    assert DockerCredentials(config).lookup("registry-1.docker.io") == Credentials("hub", "s")
    assert helper.calls == [f"get {HUB_KEY}"]


def test_cred_helpers_entry_beats_creds_store(tmp_path: Path, helper: Helper) -> None:
    helper.set("ghcr.io", {"Username": "per-registry", "Secret": "s"})
    config = write_config(
        tmp_path / "cfg", {"credsStore": "absent-store", "credHelpers": {"ghcr.io": "test"}}
    )
    assert DockerCredentials(config).lookup("ghcr.io") == Credentials("per-registry", "s")


def test_cred_helpers_keys_are_normalised(tmp_path: Path, helper: Helper) -> None:
    helper.set(HUB_KEY, {"Username": "hub", "Secret": "s"})
    config = write_config(tmp_path / "cfg", {"credHelpers": {"docker.io": "test"}})
    assert DockerCredentials(config).lookup(HUB_KEY) == Credentials("hub", "s")


def test_registries_without_a_helper_entry_do_not_run_it(tmp_path: Path, helper: Helper) -> None:
    config = write_config(tmp_path / "cfg", {"credHelpers": {"ghcr.io": "test"}})
    assert DockerCredentials(config).lookup("quay.io") is None
    assert helper.calls == []


def test_lookups_are_cached_per_registry(tmp_path: Path, helper: Helper) -> None:
    helper.set("ghcr.io", {"Username": "u", "Secret": "s"})
    creds = DockerCredentials(write_config(tmp_path / "cfg", {"credsStore": "test"}))
    for _ in range(3):
        creds.lookup("ghcr.io")
        creds.lookup("https://ghcr.io/v2/")
        creds.lookup("quay.io")
    assert sorted(helper.calls) == ["get ghcr.io", "get quay.io"]


def test_crashing_helper_raises_auth_failed_naming_it(tmp_path: Path, helper: Helper) -> None:
    helper.set("ghcr.io", "crash")
    creds = DockerCredentials(write_config(tmp_path / "cfg", {"credsStore": "test"}))
    with pytest.raises(AuthFailed, match="docker-credential-test") as raised:
        creds.lookup("ghcr.io")
    assert raised.value.registry == "ghcr.io"
    assert raised.value.kind == "auth_failed"
    assert "exit 3" in str(raised.value)
    assert "keychain is locked" in str(raised.value)


def test_failed_lookup_is_not_cached(tmp_path: Path, helper: Helper) -> None:
    helper.set("ghcr.io", "crash")
    creds = DockerCredentials(write_config(tmp_path / "cfg", {"credsStore": "test"}))
    with pytest.raises(AuthFailed):
        creds.lookup("ghcr.io")
    helper.set("ghcr.io", {"Username": "u", "Secret": "s"})
    assert creds.lookup("ghcr.io") == Credentials("u", "s")


def test_missing_helper_raises_auth_failed_naming_it(tmp_path: Path, helper: Helper) -> None:
    creds = DockerCredentials(write_config(tmp_path / "cfg", {"credsStore": "nosuchthing"}))
    with pytest.raises(AuthFailed, match="docker-credential-nosuchthing is .* not on PATH"):
        creds.lookup("ghcr.io")


def test_helper_garbage_is_reported_without_echoing_it(tmp_path: Path, helper: Helper) -> None:
    helper.set("ghcr.io", "garbage")
    creds = DockerCredentials(write_config(tmp_path / "cfg", {"credsStore": "test"}))
    with pytest.raises(AuthFailed, match="not JSON") as raised:
        creds.lookup("ghcr.io")
    assert "s3cr3t" not in str(raised.value)


def test_not_found_said_on_stderr_means_anonymous(tmp_path: Path, helper: Helper) -> None:
    helper.set("ghcr.io", "not-found-on-stderr")
    creds = DockerCredentials(write_config(tmp_path / "cfg", {"credsStore": "test"}))
    assert creds.lookup("ghcr.io") is None


def test_helper_that_is_not_executable_raises_auth_failed(tmp_path: Path, helper: Helper) -> None:
    (helper.bin_dir / "docker-credential-test").chmod(0o644)
    creds = DockerCredentials(write_config(tmp_path / "cfg", {"credsStore": "test"}))
    with pytest.raises(AuthFailed, match="docker-credential-test"):
        creds.lookup("ghcr.io")


def test_helper_answer_with_empty_secret_means_anonymous(tmp_path: Path, helper: Helper) -> None:
    helper.set("ghcr.io", {"Username": "", "Secret": ""})
    creds = DockerCredentials(write_config(tmp_path / "cfg", {"credsStore": "test"}))
    assert creds.lookup("ghcr.io") is None


def test_helper_answers_expire_after_the_ttl(tmp_path: Path, helper: Helper) -> None:
    helper.set("ghcr.io", {"Username": "u", "Secret": "s"})
    config = write_config(tmp_path / "cfg", {"credsStore": "test"})
    creds = DockerCredentials(config, helper_ttl=0)
    creds.lookup("ghcr.io")
    creds.lookup("ghcr.io")
    assert helper.calls == ["get ghcr.io", "get ghcr.io"]


# --- config changes after start ---------------------------------------------------------------


def rewrite(directory: Path, config: dict[str, Any], bump: int) -> None:
    """Rewrite config.json with a distinct mtime, as a later `docker login` would."""
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump * 1_000_000_000))


def test_docker_login_after_start_is_seen(tmp_path: Path) -> None:
    creds = DockerCredentials(write_config(tmp_path, {"auths": {}}))
    assert creds.lookup("ghcr.io") is None
    rewrite(tmp_path, {"auths": {"ghcr.io": {"auth": b64("late:p")}}}, bump=1)
    assert creds.lookup("ghcr.io") == Credentials("late", "p")


def test_docker_logout_after_start_is_seen(tmp_path: Path) -> None:
    creds = DockerCredentials(write_config(tmp_path, {"auths": {"ghcr.io": {"auth": b64("u:p")}}}))
    assert creds.lookup("ghcr.io") is not None
    (tmp_path / "config.json").unlink()
    assert creds.lookup("ghcr.io") is None


def test_config_broken_after_start_fails_lookups_until_fixed(tmp_path: Path) -> None:
    creds = DockerCredentials(write_config(tmp_path, {"auths": {"ghcr.io": {"auth": b64("u:p")}}}))
    (tmp_path / "config.json").write_text("{broken")
    os.utime(tmp_path / "config.json", ns=(0, 10**18))
    for _ in range(2):
        with pytest.raises(AuthFailed, match="not valid JSON") as raised:
            creds.lookup("ghcr.io")
        assert str(tmp_path / "config.json") in str(raised.value)
    rewrite(tmp_path, {"auths": {"ghcr.io": {"auth": b64("fixed:p")}}}, bump=1)
    assert creds.lookup("ghcr.io") == Credentials("fixed", "p")


# --- secrets stay hidden ----------------------------------------------------------------------


def test_repr_and_str_hide_password_and_identity_token() -> None:
    creds = Credentials("alice", "hunter2", "refresh-xyz")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "alice" in text
        assert "hunter2" not in text
        assert "refresh-xyz" not in text


def test_basic_pair_only_with_username_and_password() -> None:
    assert Credentials("u", "p").basic == ("u", "p")
    assert Credentials(identitytoken="t").basic is None
    assert Credentials("u").basic is None


# --- properties -------------------------------------------------------------------------------

_host = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9.-]{0,20}[a-zA-Z0-9])?(:[0-9]{1,5})?", fullmatch=True)
_server = st.builds(
    lambda scheme, host, path: scheme + host + path,
    st.sampled_from(["", "https://", "http://"]),
    st.one_of(
        _host, st.sampled_from(sorted(["docker.io", "index.docker.io", "registry-1.docker.io"]))
    ),
    st.sampled_from(["", "/", "/v1/", "/v2/"]),
)


@given(_server)
def test_registry_key_is_idempotent_and_ignores_scheme_and_path(server: str) -> None:
    key = registry_key(server)
    assert registry_key(key) == key
    assert registry_key(helper_server_url(server)) == key
    assert "/" not in key and key == key.lower()


@given(
    st.text(max_size=10).filter(lambda u: "SECRET" not in u),
    st.text(min_size=1).map(lambda s: "SECRET-" + s),
)
def test_repr_never_shows_generated_secrets(username: str, secret: str) -> None:
    for creds in (Credentials(username, secret), Credentials(username, None, secret)):
        assert "SECRET-" not in repr(creds)

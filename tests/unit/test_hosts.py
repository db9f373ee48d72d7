"""DOCKWARDEN_HOSTS: `NAME=URL` entries and Docker contexts as the docker CLI stores them."""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config.settings import load_settings
from bot.engines.hosts import DEFAULT_SOCKET, Host, HostTLS, connect, parse_hosts
from bot.errors import ConfigError, EngineUnavailable
from tests.services.contexts import context_dir_name, write_context
from tests.services.procs import free_port

KEY = b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n"
CERT = b"-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n"
TLS = {"ca.pem": CERT, "cert.pem": CERT, "key.pem": KEY}
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
host_names = st.builds(lambda first, rest: first + rest, st.sampled_from(ALNUM),
                       st.text(alphabet=ALNUM + "._-", max_size=20))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """For settings tests: the test's folder (no stray .env) and none of the engine variables."""
    monkeypatch.chdir(tmp_path)
    for name in ("DOCKWARDEN_HOSTS", "DOCKER_CONFIG", "DOCKER_HOST", "DOCKWARDEN_ENV_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def hosts(text: str | None, config: Path | None = None, docker_host: str | None = None
          ) -> tuple[Host, ...]:
    return parse_hosts(text, docker_host=docker_host,
                       docker_config=str(config) if config else None)


def refused(text: str, config: Path | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        hosts(text, config)
    return str(caught.value)


def test_unset_is_one_host_named_local_on_docker_host_or_the_default_socket() -> None:
    assert hosts(None) == (Host("local", DEFAULT_SOCKET),)
    assert hosts(" , ", docker_host="tcp://10.0.0.5:2375") == (
        Host("local", "tcp://10.0.0.5:2375"),)


def test_name_equals_url_entries_keep_their_order_and_no_tls() -> None:
    assert hosts(" nas=unix:///run/nas.sock , pi.lan_2=tcp://10.0.0.7:2375") == (
        Host("nas", "unix:///run/nas.sock"), Host("pi.lan_2", "tcp://10.0.0.7:2375"))


@pytest.mark.parametrize(("text", "says"), [
    ("-nas=unix:///x", "entry '-nas=unix:///x': '-nas' cannot name a host"),
    ("n/a=unix:///x", "'n/a' cannot name a host"),
    ("my nas=unix:///x", "'my nas' cannot name a host"),
    ("=unix:///x", "'' cannot name a host"),
    ("nas=", "entry 'nas=': the engine URL is empty"),
    ("nas=http://10.0.0.5:2375", "unknown scheme 'http'; use unix://, tcp://, ssh://"),
    ("nas=/var/run/docker.sock", "unknown scheme '(none)'"),
    ("nas=tcp://", "entry 'nas=tcp://': not a Docker engine address"),
    ("a=unix:///x, b=unix:///y, a=tcp://h:2375", "entry 'a=tcp://h:2375': the name 'a' is "
                                                 "given twice"),
])
def test_an_entry_that_cannot_work_is_a_config_error_naming_it(text: str, says: str) -> None:
    assert says in refused(text)


@given(names=st.lists(host_names, min_size=1, max_size=5, unique=True))
def test_distinct_host_names_with_urls_are_kept_in_order(names: list[str]) -> None:
    text = ",".join(f"{name}=unix:///run/{name}.sock" for name in names)
    assert [(h.name, h.url) for h in hosts(text)] == [
        (name, f"unix:///run/{name}.sock") for name in names]


@given(name=host_names, bad=st.sampled_from("/:@!#+*~"), at=st.integers(0, 20))
def test_a_host_name_with_another_character_is_refused(name: str, bad: str, at: int) -> None:
    wrong = name[:at] + bad + name[at:]
    with pytest.raises(ConfigError, match="cannot name a host"):
        hosts(f"{wrong}=unix:///x")


def test_an_ssh_entry_is_a_host_where_paramiko_is_installed(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = types.ModuleType("paramiko")
    installed.__spec__ = importlib.machinery.ModuleSpec("paramiko", None)
    monkeypatch.setitem(sys.modules, "paramiko", installed)
    assert hosts("vps=ssh://admin@vps.example:2222") == (
        Host("vps", "ssh://admin@vps.example:2222"),)


def test_ssh_without_paramiko_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "paramiko", None)  # as if not installed
    assert "pip install 'dockwarden[ssh]'" in refused("vps=ssh://admin@vps.example")


@pytest.mark.parametrize("text", ["vps=ssh://admin:hunter2@vps", "vps=ftp://u:hunter2@vps",
                                  "vps=tcp://u:hunter2@vps:2375, vps=unix:///x"])
def test_a_url_password_never_reaches_a_message(text: str) -> None:
    message = refused(text)
    assert "hunter2" not in message
    assert "u:***@vps" in message or "admin:***@vps" in message


def test_a_docker_host_password_never_reaches_the_settings_error(
    env: pytest.MonkeyPatch
) -> None:
    env.setenv("DOCKER_HOST", "tcp://admin:hunter2@10.0.0.5:2375")
    with pytest.raises(ConfigError, match=r"DOCKER_HOST: not a Docker engine address") as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


def test_a_hosts_repr_and_where_hide_the_url_password() -> None:
    host = Host("vps", "ssh://admin:hunter2@vps.example")
    assert "hunter2" not in repr(host)
    assert host.where == "ssh://admin:***@vps.example"


def test_a_context_name_gives_its_docker_endpoint(tmp_path: Path) -> None:
    write_context(tmp_path, "pi", "tcp://10.0.0.7:2375")
    assert hosts("nas=unix:///run/nas.sock,pi", tmp_path) == (
        Host("nas", "unix:///run/nas.sock"), Host("pi", "tcp://10.0.0.7:2375", None, "pi"))


def test_a_contexts_tls_files_are_found_by_the_digest_of_its_name(tmp_path: Path) -> None:
    write_context(tmp_path, "vps", "tcp://vps.example:2376", tls=TLS)
    where = tmp_path / "contexts" / "tls" / context_dir_name("vps") / "docker"
    (host,) = hosts("vps", tmp_path)
    assert host.tls == HostTLS(where / "ca.pem", where / "cert.pem", where / "key.pem", True)


def test_skip_tls_verify_keeps_tls_but_does_not_verify(tmp_path: Path) -> None:
    write_context(tmp_path, "lab", "tcp://lab:2376", tls={"ca.pem": CERT}, skip_tls_verify=True)
    write_context(tmp_path, "bare", "tcp://bare:2376", skip_tls_verify=True)
    lab, bare = hosts("lab,bare", tmp_path)
    assert lab.tls is not None and lab.tls.cert is None and lab.tls.verify is False
    assert bare.tls == HostTLS(None, None, None, False)


def test_contexts_are_read_from_home_docker_without_docker_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_context(tmp_path / ".docker", "pi", "unix:///run/pi.sock")
    assert hosts("pi") == (Host("pi", "unix:///run/pi.sock", None, "pi"),)


def test_the_default_context_is_docker_hosts_engine(tmp_path: Path) -> None:
    assert parse_hosts("default", docker_host="tcp://h:2375", docker_config=str(tmp_path)) == (
        Host("default", "tcp://h:2375"),)


def test_an_unknown_context_is_named_with_the_contexts_there(tmp_path: Path) -> None:
    write_context(tmp_path, "pi", "unix:///run/pi.sock")
    message = refused("nas", tmp_path)
    assert "entry 'nas': no Docker context of that name" in message
    assert "(contexts there: pi)" in message


@pytest.mark.parametrize("endpoints", [{}, {"docker": {"Host": ""}}, {"docker": None}])
def test_a_context_without_a_docker_endpoint_is_refused(tmp_path: Path, endpoints: object
                                                        ) -> None:
    meta = write_context(tmp_path, "k8s", "unix:///x")
    meta.write_text(json.dumps({"Name": "k8s", "Metadata": {}, "Endpoints": endpoints}))
    message = refused("k8s", tmp_path)
    assert "entry 'k8s'" in message
    assert "no docker endpoint" in message or "the engine URL is empty" in message


def test_a_context_with_an_unknown_scheme_names_the_context(tmp_path: Path) -> None:
    write_context(tmp_path, "odd", "http://odd:2375")
    assert "entry 'odd': unknown scheme 'http'" in refused("odd", tmp_path)


@pytest.mark.parametrize(("files", "missing"), [
    ({"ca.pem": CERT, "cert.pem": CERT}, "key.pem"),
    ({"key.pem": KEY}, "cert.pem"),
])
def test_a_client_certificate_without_its_pair_is_refused_without_quoting_the_key(
    tmp_path: Path, files: dict[str, bytes], missing: str
) -> None:
    write_context(tmp_path, "vps", "tcp://vps:2376", tls=files)
    message = refused("vps", tmp_path)
    assert f"entry 'vps': TLS files missing: {missing}" in message
    assert "c2VjcmV0" not in message


def test_an_empty_tls_folder_is_missing_files(tmp_path: Path) -> None:
    write_context(tmp_path, "vps", "tcp://vps:2376")
    (tmp_path / "contexts" / "tls" / context_dir_name("vps") / "docker").mkdir(parents=True)
    assert "TLS files missing" in refused("vps", tmp_path)


def test_a_name_given_as_entry_and_as_context_is_a_duplicate(tmp_path: Path) -> None:
    write_context(tmp_path, "pi", "unix:///run/pi.sock")
    assert "the name 'pi' is given twice" in refused("pi=unix:///x,pi", tmp_path)


def test_settings_read_hosts_with_docker_config_from_the_env_file(
    tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    write_context(tmp_path / "cfg", "pi", "unix:///run/pi.sock")
    (tmp_path / ".env").write_text(f"DOCKER_CONFIG={tmp_path / 'cfg'}\n"
                                   "DOCKWARDEN_HOSTS=nas=tcp://nas:2375,pi\n")
    assert [h.name for h in load_settings().hosts] == ["nas", "pi"]
    env.setenv("DOCKWARDEN_HOSTS", "nas=ftp://nas")
    with pytest.raises(ConfigError, match=r"^invalid configuration: DOCKWARDEN_HOSTS: entry "
                                          r"'nas=ftp://nas': unknown scheme 'ftp'"):
        load_settings()


def test_settings_without_hosts_watch_docker_host_as_local(env: pytest.MonkeyPatch) -> None:
    env.setenv("DOCKER_HOST", "tcp://10.0.0.5:2375")
    assert load_settings().hosts == (Host("local", "tcp://10.0.0.5:2375"),)


def test_a_tls_context_connects_over_tls_and_says_when_nothing_answers(tmp_path: Path) -> None:
    write_context(tmp_path, "vps", f"tcp://127.0.0.1:{free_port()}", tls=TLS)
    (host,) = hosts("vps", tmp_path)
    with pytest.raises(EngineUnavailable, match="no Docker engine answers at tcp://127.0.0.1"):
        connect(host, timeout=5)


def test_tls_files_gone_after_start_are_a_config_error_naming_the_host(tmp_path: Path) -> None:
    write_context(tmp_path, "vps", f"tcp://127.0.0.1:{free_port()}", tls=TLS)
    (host,) = hosts("vps", tmp_path)
    assert host.tls is not None and host.tls.key is not None
    host.tls.key.unlink()
    with pytest.raises(ConfigError, match="host 'vps': the TLS files of context 'vps'"):
        connect(host, timeout=5)

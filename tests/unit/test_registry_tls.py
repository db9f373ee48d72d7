"""Insecure registries from the engine's /info, and certs.d read as the Docker engine reads it."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import bot.registry.tls as tls_module
from bot.errors import RegistryUnreachable
from bot.registry.tls import (
    SYSTEM_STORE,
    RegistryTls,
    engine_insecure_registries,
    load_setup,
)
from bot.registry.wire import scheme_for
from tests.services.tls_registry import issue, make_ca

# `docker info` of an engine started with --insecure-registry=10.20.0.0/16 and
# --insecure-registry=registry.lan:5000 (Docker 20.10/26 shape).
ENGINE_INFO: dict[str, Any] = {
    "RegistryConfig": {
        "AllowNondistributableArtifactsCIDRs": [],
        "AllowNondistributableArtifactsHostnames": [],
        "InsecureRegistryCIDRs": ["10.20.0.0/16", "127.0.0.0/8", "::1/128"],
        "IndexConfigs": {
            "docker.io": {"Mirrors": [], "Name": "docker.io", "Official": True, "Secure": True},
            "registry.lan:5000": {
                "Mirrors": [], "Name": "registry.lan:5000", "Official": False, "Secure": False,
            },
        },
        "Mirrors": [],
    },
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, and a client certificate it issued, in one directory."""
    root = tmp_path_factory.mktemp("pki")
    ca = make_ca(root)
    issue(ca, root / "client.cert", root / "client.key", client=True)
    return root


def certs_d(root: Path, registry: str, pki: Path, *names: str) -> Path:
    """`root/<registry>/` holding copies of the named PKI files."""
    directory = root / registry
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes((pki / name).read_bytes())
    return directory


def test_engine_info_gives_insecure_index_names_and_cidrs() -> None:
    assert engine_insecure_registries(ENGINE_INFO) == (
        "registry.lan:5000", "10.20.0.0/16", "127.0.0.0/8", "::1/128",
    )


def test_podman_compat_info_gives_registries_conf_insecure_entries() -> None:
    # Podman 4.3's /info through its Docker-compatible API, registries.conf marking one insecure.
    info = {"RegistryConfig": {
        "AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
        "InsecureRegistryCIDRs": [],
        "IndexConfigs": {"reg.lan:5000": {
            "Name": "reg.lan:5000", "Mirrors": [], "Secure": False, "Official": False}},
        "Mirrors": [],
    }}
    assert engine_insecure_registries(info) == ("reg.lan:5000",)


def test_engine_insecure_cidr_makes_a_registry_in_it_plain_http() -> None:
    tls = RegistryTls(engine_insecure=engine_insecure_registries(ENGINE_INFO))
    assert scheme_for("10.20.3.4:5000", tls.insecure) == "http"
    assert scheme_for("registry.lan:5000", tls.insecure) == "http"
    assert scheme_for("10.21.0.1:5000", tls.insecure) == "https"
    assert tls.insecure_reason("10.20.3.4:5000") == "insecure for the Docker engine"


def test_setting_adds_to_the_engines_insecure_registries() -> None:
    tls = RegistryTls(insecure=("other.lan",), engine_insecure=("10.20.0.0/16",))
    assert tls.insecure == ("other.lan", "10.20.0.0/16")
    assert tls.insecure_reason("other.lan") == "in DOCKWARDEN_INSECURE_REGISTRIES"
    assert tls.insecure_reason("127.0.0.1:5000") == "loopback"
    assert tls.insecure_reason("secure.lan") is None


def test_engine_info_without_registry_config_gives_nothing() -> None:
    assert engine_insecure_registries({}) == ()
    assert engine_insecure_registries({"RegistryConfig": None}) == ()
    garbled = {"RegistryConfig": {"IndexConfigs": [], "InsecureRegistryCIDRs": "x"}}
    assert engine_insecure_registries(garbled) == ()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from(["RegistryConfig", "IndexConfigs", "x"]), _json,
                       max_size=2))
def test_engine_info_of_any_shape_never_breaks_the_parser(info: dict[str, Any]) -> None:
    found = engine_insecure_registries(info)
    assert all(isinstance(entry, str) for entry in found)


def test_missing_certs_directory_means_the_system_store(tmp_path: Path) -> None:
    setup = load_setup("reg.lan:5000", tmp_path / "reg.lan:5000")
    assert setup.context is None
    assert setup.describe() == SYSTEM_STORE


def test_crt_files_are_trusted_beside_the_system_store(tmp_path: Path, pki: Path) -> None:
    directory = certs_d(tmp_path, "reg.lan:5000", pki, "ca.crt")
    setup = RegistryTls(tmp_path).setup("reg.lan:5000")
    assert setup.cas == (directory / "ca.crt",)
    assert setup.client_cert is None
    assert isinstance(setup.context, ssl.SSLContext)
    assert setup.context.verify_mode == ssl.CERT_REQUIRED
    assert setup.describe() == f"{SYSTEM_STORE} + {directory / 'ca.crt'}"


def test_cert_and_key_pair_is_the_client_certificate(tmp_path: Path, pki: Path) -> None:
    directory = certs_d(tmp_path, "reg.lan", pki, "ca.crt", "client.cert", "client.key")
    setup = RegistryTls(tmp_path).setup("reg.lan")
    assert setup.client_cert == (directory / "client.cert", directory / "client.key")
    assert "client certificate" in setup.describe()


def test_key_without_its_client_certificate_is_refused_like_the_engine(
    tmp_path: Path, pki: Path
) -> None:
    certs_d(tmp_path, "reg.lan", pki, "client.key")
    with pytest.raises(RegistryUnreachable, match="key client.key has no client certificate"):
        RegistryTls(tmp_path).setup("reg.lan")


def test_client_certificate_without_its_key_is_refused(tmp_path: Path, pki: Path) -> None:
    certs_d(tmp_path, "reg.lan", pki, "client.cert")
    with pytest.raises(RegistryUnreachable, match=r"client.cert has no client.key"):
        RegistryTls(tmp_path).setup("reg.lan")


def test_unreadable_ca_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "reg.lan").mkdir()
    (tmp_path / "reg.lan" / "ca.crt").write_text("not a certificate")
    with pytest.raises(RegistryUnreachable, match="ca.crt is no usable CA certificate"):
        RegistryTls(tmp_path).setup("reg.lan")


def test_docker_hub_uses_the_system_store_only(tmp_path: Path, pki: Path) -> None:
    certs_d(tmp_path, "docker.io", pki, "ca.crt")
    assert RegistryTls(tmp_path).context("docker.io") is None


def test_files_added_later_are_picked_up(
    tmp_path: Path, pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tls_module, "_RECHECK_SECONDS", 0.0)
    tls = RegistryTls(tmp_path)
    assert tls.context("reg.lan") is None
    certs_d(tmp_path, "reg.lan", pki, "ca.crt")
    assert tls.context("reg.lan") is not None


def test_untrusted_certificate_error_says_where_the_ca_goes(tmp_path: Path) -> None:
    tls = RegistryTls(tmp_path)
    hint = tls.untrusted_hint("reg.lan:5000", "[SSL: CERTIFICATE_VERIFY_FAILED] certificate")
    assert f"{tmp_path}/reg.lan:5000/ca.crt" in hint
    assert tls.untrusted_hint("reg.lan:5000", "Connection refused") == ""
    refused = tls.untrusted_hint("reg.lan:5000", "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] alert")
    assert f"client.cert and client.key in {tmp_path}/reg.lan:5000/" in refused

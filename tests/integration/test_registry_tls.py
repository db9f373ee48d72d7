"""Private registries as the Docker engine trusts them: certs.d CAs and client certificates,
insecure registries from the engine's settings; real registries on a network namespace."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config.settings import load_settings
from bot.doctor.checks import registry_findings, tls_summary
from bot.domain.reference import ImageRef, parse_reference
from bot.engines.docker import DockerEngine
from bot.entrypoints.bootstrap import build_registry, engine_insecure_registries
from bot.errors import RegistryUnreachable
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from bot.registry.tls import RegistryTls
from tests.services.tls_registry import REPOSITORY, TAG, TlsRegistries, TlsRegistry

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def tls_registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRegistries]:
    """The namespace's three registries (private CA, mutual TLS, plain HTTP)."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2 is not installed")
    regs = TlsRegistries(tmp_path_factory.mktemp("tls-registries"))
    regs.start()
    yield regs
    regs.stop()


@pytest.fixture
def no_credentials(tmp_path: Path) -> DockerCredentials:
    """A Docker config without any login."""
    (tmp_path / "docker-config").mkdir()
    return DockerCredentials(str(tmp_path / "docker-config"))


def ref_of(registry: TlsRegistry) -> ImageRef:
    """The image each namespace registry holds."""
    return parse_reference(f"{registry.host}/{REPOSITORY}:{TAG}")


def certs_dir(root: Path, regs: TlsRegistries, registry: TlsRegistry, *, client: bool) -> Path:
    """A certs.d tree with the registry's CA (and the client certificate) in Docker's layout."""
    directory = root / "certs.d" / registry.host
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(regs.ca.cert.read_bytes())
    if client:
        (directory / "client.cert").write_bytes(regs.client.cert.read_bytes())
        (directory / "client.key").write_bytes(regs.client.key.read_bytes())
    return root / "certs.d"


async def test_private_ca_registry_fails_with_a_tls_error_without_its_ca(
    tls_registries: TlsRegistries, no_credentials: DockerCredentials, tmp_path: Path
) -> None:
    registry = tls_registries.private_ca
    tls = RegistryTls(tmp_path / "empty-certs.d")
    async with RegistryClient(credentials=no_credentials, tls=tls) as client:
        with pytest.raises(RegistryUnreachable) as caught:
            await client.remote_digest(ref_of(registry))
    message = str(caught.value)
    assert "certificate verify failed" in message
    assert f"{tmp_path / 'empty-certs.d' / registry.host}/ca.crt" in message


async def test_ca_from_certs_d_verifies_the_private_registry(
    tls_registries: TlsRegistries, no_credentials: DockerCredentials, tmp_path: Path
) -> None:
    registry = tls_registries.private_ca
    tls = RegistryTls(certs_dir(tmp_path, tls_registries, registry, client=False))
    async with RegistryClient(credentials=no_credentials, tls=tls) as client:
        assert await client.remote_digest(ref_of(registry)) == registry.digest


async def test_certs_dir_setting_reaches_the_client_build_registry_makes(
    tls_registries: TlsRegistries, tmp_path: Path
) -> None:
    registry = tls_registries.private_ca
    (tmp_path / "docker-config").mkdir()
    settings = load_settings(
        certs_dir=str(certs_dir(tmp_path, tls_registries, registry, client=False)),
        docker_config=str(tmp_path / "docker-config"),
    )
    async with build_registry(settings) as client:
        assert await client.remote_digest(ref_of(registry)) == registry.digest


async def test_client_certificate_from_certs_d_is_presented_to_a_mutual_tls_registry(
    tls_registries: TlsRegistries, no_credentials: DockerCredentials, tmp_path: Path
) -> None:
    registry = tls_registries.mutual
    tls = RegistryTls(certs_dir(tmp_path, tls_registries, registry, client=True))
    async with RegistryClient(credentials=no_credentials, tls=tls) as client:
        assert await client.remote_digest(ref_of(registry)) == registry.digest
        assert await client.tags(ref_of(registry)) == [TAG]


async def test_mutual_tls_registry_refuses_a_client_without_certificate(
    tls_registries: TlsRegistries, no_credentials: DockerCredentials, tmp_path: Path
) -> None:
    registry = tls_registries.mutual
    tls = RegistryTls(certs_dir(tmp_path, tls_registries, registry, client=False))
    async with RegistryClient(credentials=no_credentials, tls=tls) as client:
        with pytest.raises(RegistryUnreachable) as caught:
            await client.remote_digest(ref_of(registry))
    assert f"put client.cert and client.key in {tmp_path / 'certs.d' / registry.host}/" in str(
        caught.value
    )


async def test_insecure_cidr_from_engine_info_speaks_plain_http_to_the_registry(
    tls_registries: TlsRegistries, no_credentials: DockerCredentials, tmp_path: Path
) -> None:
    registry = tls_registries.plain
    # What `docker info` says for an engine started with --insecure-registry=<the netns /24>.
    info = {"RegistryConfig": {
        "InsecureRegistryCIDRs": [tls_registries.netns.cidr, "127.0.0.0/8"],
        "IndexConfigs": {"docker.io": {"Name": "docker.io", "Secure": True, "Official": True}},
    }}
    from bot.registry.tls import engine_insecure_registries as from_info

    # The no_credentials fixture made tmp_path/docker-config.
    settings = load_settings(certs_dir=str(tmp_path), docker_config=str(tmp_path / "docker-config"))
    async with build_registry(settings, engine_insecure=from_info(info)) as client:
        assert client.tls.insecure_reason(registry.host) == "insecure for the Docker engine"
        assert await client.remote_digest(ref_of(registry)) == registry.digest
    async with RegistryClient(credentials=no_credentials, tls=RegistryTls(tmp_path)) as client:
        with pytest.raises(RegistryUnreachable):
            await client.remote_digest(ref_of(registry))


async def test_real_engine_reports_its_insecure_registries(docker_host: str) -> None:
    engine = DockerEngine(docker_host)
    try:
        insecure = engine_insecure_registries(engine)
    finally:
        engine.close()
    # Every engine counts loopback as insecure; that is how the default shows in `docker info`.
    assert "127.0.0.0/8" in insecure


async def test_doctor_names_the_certs_d_ca_that_verified_the_registry(
    tls_registries: TlsRegistries, tmp_path: Path
) -> None:
    registry = tls_registries.mutual
    root = certs_dir(tmp_path, tls_registries, registry, client=True)
    (tmp_path / "docker-config").mkdir()
    settings = load_settings(certs_dir=str(root), docker_config=str(tmp_path / "docker-config"))
    async with build_registry(settings) as client:
        findings = await registry_findings(
            settings, client, DockerCredentials(settings.docker_config), [ref_of(registry)]
        )
    [finding] = findings
    assert finding.ok, finding.text
    assert f"TLS: certificate verified with {root / registry.host / 'ca.crt'}" in finding.text


async def test_doctor_says_when_no_ca_verifies_and_when_a_registry_is_insecure(
    tls_registries: TlsRegistries, tmp_path: Path
) -> None:
    tls = RegistryTls(tmp_path, engine_insecure=(tls_registries.netns.cidr,))
    unverified = await tls_summary(RegistryTls(tmp_path), ref_of(tls_registries.private_ca),
                                   timeout=5)
    assert unverified.startswith("certificate not verified (the system store:")
    insecure = await tls_summary(tls, ref_of(tls_registries.plain), timeout=5)
    assert insecure.startswith("insecure (insecure for the Docker engine)")

"""Several Docker hosts: connections built from DOCKWARDEN_HOSTS reach the engines they name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from bot.engines.hosts import Host, connect, parse_hosts
from bot.errors import EngineUnavailable
from tests.integration.engines import EngineUnderTest
from tests.services.contexts import write_context
from tests.services.tls_front import TlsFront


def data_roots(hosts: tuple[Host, ...]) -> dict[str, str]:
    """Each host's engine's data root (`docker info`), through DockWarden's own connection."""
    roots = {}
    for host in hosts:
        engine = connect(host, timeout=30)
        try:
            roots[host.name] = str(engine.info()["DockerRootDir"])
        finally:
            engine.close()
    return roots


@pytest.fixture(scope="module")
def expected_roots(docker_client: docker.DockerClient, second_engine: EngineUnderTest
                   ) -> dict[str, str]:
    roots = {"a": docker_client.info()["DockerRootDir"],
             "b": second_engine.client.info()["DockerRootDir"]}
    assert roots["a"] != roots["b"]
    return roots


def test_two_hosts_named_by_url_reach_two_engines(
    docker_host: str, second_engine: EngineUnderTest, expected_roots: dict[str, str]
) -> None:
    hosts = parse_hosts(f"a={docker_host}, b={second_engine.url}")
    assert data_roots(hosts) == expected_roots


def test_two_hosts_named_by_docker_context_reach_two_engines(
    docker_host: str, second_engine: EngineUnderTest, expected_roots: dict[str, str],
    tmp_path: Path
) -> None:
    write_context(tmp_path, "a", docker_host)
    write_context(tmp_path, "b", second_engine.url, description="the second engine")
    hosts = parse_hosts("a,b", docker_config=str(tmp_path))
    assert [host.context for host in hosts] == ["a", "b"]
    assert data_roots(hosts) == expected_roots


@pytest.fixture
def tls_front(second_engine: EngineUnderTest, tmp_path: Path) -> Iterator[TlsFront]:
    front = TlsFront(second_engine.url.removeprefix("unix://"), tmp_path / "pki")
    yield front
    front.stop()


def test_a_context_with_tls_material_reaches_an_engine_that_asks_for_client_certificates(
    tls_front: TlsFront, expected_roots: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CA bundle for everything else (common in images) must not replace the context's CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_front.client.cert))
    write_context(tmp_path, "tls", tls_front.url, tls=tls_front.context_files())
    assert data_roots(parse_hosts("tls", docker_config=str(tmp_path))) == {
        "tls": expected_roots["b"]}


def test_a_context_without_its_client_certificate_is_turned_away(
    tls_front: TlsFront, tmp_path: Path
) -> None:
    write_context(tmp_path, "tls", tls_front.url, tls=tls_front.context_files(client=False))
    (host,) = parse_hosts("tls", docker_config=str(tmp_path))
    with pytest.raises(EngineUnavailable, match=f"no Docker engine answers at {tls_front.url}"):
        connect(host, timeout=10)
    assert tls_front.saw_refusal()

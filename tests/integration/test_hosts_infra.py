"""What the tests of several hosts stand on: a second engine, a Docker Hub mirror, Compose v2."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.integration.engines import EngineUnderTest
from tests.services.compose import Compose
from tests.services.contexts import write_context
from tests.services.images import ImageFactory
from tests.services.registry import RegistryService


def hub_name(stem: str) -> str:
    """A Docker Hub name of this session's own (no registry part: it resolves to Hub)."""
    return f"dw{stem}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def test_second_engine_is_another_daemon_with_its_own_data_root_and_subnet(
    docker_client: docker.DockerClient, images: ImageFactory, second_engine: EngineUnderTest
) -> None:
    first, second = docker_client.info(), second_engine.client.info()
    # (Both say the same ID: it is the machine's key.json, not the daemon's.)
    assert first["DockerRootDir"] != second["DockerRootDir"]
    only_first = images.build_local(f"{hub_name('firstonly')}:1")
    with pytest.raises(docker.errors.ImageNotFound):
        second_engine.client.images.get(only_first)
    bridge = second_engine.client.networks.get("bridge").attrs
    subnet = ipaddress.IPv4Network(bridge["IPAM"]["Config"][0]["Subnet"])
    assert subnet.subnet_of(ipaddress.IPv4Network("198.18.0.0/15"))


def test_docker_hub_name_is_pulled_through_the_mirror(
    images: ImageFactory, mirror: RegistryService, second_engine: EngineUnderTest
) -> None:
    name = hub_name("mirrored")
    digest = images.push(mirror, f"library/{name}", "v1")
    assert second_engine.client.info()["RegistryConfig"]["Mirrors"] == [f"{mirror.url}/"]

    pulled = second_engine.client.images.pull(name, tag="v1")

    assert f"{name}@{digest}" in pulled.attrs["RepoDigests"]
    assert f"{name}:v1" in pulled.tags


def test_compose_v2_brings_a_project_up_on_the_test_engine_and_down_again(
    images: ImageFactory, compose: Compose, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    image = f"dwcompose-{os.getpid()}-{uuid.uuid4().hex[:6]}:1"
    images.build_local(image)
    project = f"dwc{uuid.uuid4().hex[:8]}"
    with compose.project(tmp_path, project, {"web": {"image": image}}):
        listed = compose.run(tmp_path, "ps", "--format", "json").stdout
        # 2.26 prints one JSON object per line.
        running = [json.loads(line) for line in listed.splitlines() if line.strip()]
        assert [(c["Service"], c["State"]) for c in running] == [("web", "running")]
        again = compose.run(tmp_path, "up", "-d")
        assert "Recreate" not in again.stderr
    assert not docker_client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"})


def test_docker_compose_is_a_plugin_of_the_docker_cli(compose: Compose, docker_host: str) -> None:
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    done = subprocess.run(
        ["docker", "compose", "version", "--short"],
        env={**os.environ, "DOCKER_CONFIG": str(compose.config), "DOCKER_HOST": docker_host},
        capture_output=True, text=True, timeout=60, check=False,
    )
    if done.returncode != 0 and "not a docker command" in done.stderr:
        pytest.fail(f"the docker CLI did not find the plugin: {done.stderr}")
    assert done.stdout.strip() == compose.version()


def test_a_context_written_for_the_second_engine_reaches_it(
    second_engine: EngineUnderTest, tmp_path: Path
) -> None:
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    write_context(tmp_path, "b", second_engine.url, description="the second engine")
    done = subprocess.run(
        ["docker", "--context", "b", "info", "--format", "{{.DockerRootDir}}"],
        env={k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
        | {"DOCKER_CONFIG": str(tmp_path)},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == second_engine.client.info()["DockerRootDir"]

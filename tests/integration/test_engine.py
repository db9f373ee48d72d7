"""DockerEngine against the real engine: what a running container looks like to the checker."""

from __future__ import annotations

import gc
import http.server
import json
import os
import socketserver
import threading
import time
import uuid
from typing import Any

import docker
import docker.errors
import pytest

from bot.domain.model import Workload
from bot.engines.docker import DockerEngine
from bot.errors import EngineError, EngineUnavailable
from bot.update import selfinfo
from tests.integration.engines import *  # noqa: F403 - runs on each Docker engine
from tests.integration.engines import EngineUnderTest, proc_files_of
from tests.services.swarm import SwarmEngine


def _repo(stem: str) -> str:
    return f"dwengine/{stem}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _find(engine: DockerEngine, name: str) -> Workload:
    by_name = {w.name: w for w in engine.list_workloads()}
    return by_name[name]


def test_running_container_carries_its_reference_digests_and_labels(
    engine: DockerEngine, registries: Any, images: Any, containers: Any
) -> None:
    repo = _repo("plain")
    digest = images.push(registries.anonymous, repo, "v1", version=1)
    ref = f"{registries.anonymous.host}/{repo}:v1"
    c = containers.run(ref, labels={"dockwarden.policy": "notify"})
    w = _find(engine, c.name)
    assert w.image == ref
    assert w.id == c.id
    assert w.image_id == c.image.id
    assert f"{registries.anonymous.host}/{repo}@{digest}" in w.repo_digests
    assert w.labels["dockwarden.policy"] == "notify"
    assert w.kind == "container"


def test_container_whose_tag_moved_on_keeps_the_reference_it_was_created_from(
    engine: DockerEngine, registries: Any, images: Any, containers: Any
) -> None:
    repo = _repo("moved")
    old = images.push(registries.anonymous, repo, "v1", version=1)
    ref = f"{registries.anonymous.host}/{repo}:v1"
    c = containers.run(ref)
    # v2 lands under the same tag locally: the list API now shows the image id instead.
    new = images.push(registries.anonymous, repo, "v1", version=2)
    assert new != old
    w = _find(engine, c.name)
    assert w.image == ref
    # (On the containerd store the old image is gone: its id, which is its digest, remains.)
    assert w.image_id == c.attrs["Image"]
    assert f"{registries.anonymous.host}/{repo}@{old}" in w.repo_digests
    assert f"{registries.anonymous.host}/{repo}@{new}" not in w.repo_digests


def test_local_image_has_no_repo_digest_on_the_classic_store_and_its_own_on_containerd(
    engine: DockerEngine, images: Any, containers: Any, engine_under_test: EngineUnderTest
) -> None:
    name_tag = f"dwengine-local-{os.getpid()}-{uuid.uuid4().hex[:6]}:1"
    image_id = images.build_local(name_tag, 1)
    c = containers.run(name_tag)
    w = _find(engine, c.name)
    assert w.image == name_tag
    if engine_under_test.store == "classic":
        assert w.repo_digests == ()
        assert w.digests_prove_pull
    else:
        # Its own digest under its own name: looks pulled, which the checker must not believe.
        assert w.repo_digests == (f"{name_tag.rsplit(':', 1)[0]}@{image_id}",)
        assert not w.digests_prove_pull


def test_image_with_a_second_name_keeps_the_repo_digest_of_the_containers_repository(
    engine: DockerEngine, registries: Any, images: Any, containers: Any,
    docker_client: docker.DockerClient,
) -> None:
    repo = _repo("twonames")
    digest = images.push(registries.anonymous, repo, "v1", version=1)
    ref = f"{registries.anonymous.host}/{repo}:v1"
    c = containers.run(ref)
    # The containerd store's image list shows one RepoDigest per image, here the other name's.
    other = f"dwengine-other-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    docker_client.api.tag(ref, other, "2")
    try:
        w = _find(engine, c.name)
    finally:
        docker_client.api.remove_image(f"{other}:2")
    assert f"{registries.anonymous.host}/{repo}@{digest}" in w.repo_digests


def test_processes_in_a_container_are_told_inside_it_and_the_host_is_not(
    images: Any, containers: Any, tmp_path: Any
) -> None:
    name_tag = f"dwengine-self-{os.getpid()}-{uuid.uuid4().hex[:6]}:1"
    images.build_local(name_tag, 1)
    script = "cat /proc/self/cgroup; echo =====; cat /proc/self/mountinfo; sleep 86400"
    inside = containers.run(name_tag, command=["sh", "-c", script])
    beside = containers.run(name_tag)
    proc = proc_files_of(inside, tmp_path)
    assert selfinfo.runs_inside(inside.id, proc=proc)
    assert not selfinfo.runs_inside(beside.id, proc=proc)
    # On the host (this test process) no container is ours, though with the containerd store
    # each one's root filesystem is mounted in the host's mountinfo.
    assert not selfinfo.runs_inside(inside.id)
    assert not selfinfo.runs_inside(beside.id)



def test_stopped_containers_are_not_listed(
    engine: DockerEngine, images: Any, containers: Any
) -> None:
    name_tag = f"dwengine-stop-{os.getpid()}-{uuid.uuid4().hex[:6]}:1"
    images.build_local(name_tag, 1)
    c = containers.run(name_tag)
    c.stop(timeout=0)
    # Docker 26's list can show a just-stopped container as running for a moment.
    deadline = time.monotonic() + 10
    while c.name in {w.name for w in engine.list_workloads()}:
        assert time.monotonic() < deadline, "the stopped container is still listed"
        time.sleep(0.2)


def test_api_version_is_negotiated_with_the_engine(
    engine: DockerEngine, docker_client: docker.DockerClient, engine_under_test: EngineUnderTest
) -> None:
    assert engine.api_version == docker_client.version()["ApiVersion"]
    assert engine.version()["ApiVersion"] == engine.api_version
    assert engine.store() == engine_under_test.store
    if engine_under_test.store == "containerd":
        # Docker 29 refuses anything below 1.44: a fixed old version would stop working there.
        major, minor = (int(part) for part in engine.api_version.split("."))
        assert (major, minor) >= (1, 44)


def test_the_store_is_read_from_what_the_engine_already_said(
    engine: DockerEngine, engine_under_test: EngineUnderTest
) -> None:
    # Connecting asked /version (for the API version), and a check asks /info (for its insecure
    # registries) before it lists: the image store needs neither asked again.
    asked: list[str] = []
    sdk_info, sdk_version = engine.docker.info, engine.docker.api.version
    engine.docker.info = lambda: asked.append("info") or sdk_info()
    engine.docker.api.version = lambda *a, **k: asked.append("version") or sdk_version(*a, **k)
    assert engine.info()["Driver"]
    assert engine.store() == engine_under_test.store
    assert asked == ["info"]
    assert engine.version()["ApiVersion"] == engine.api_version
    assert asked == ["info", "version"]


# The SDK's unix-socket connect leaks its socket object when the connect fails; collect it here
# so the warning belongs to this test, not to whichever test the collector next runs in.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_no_engine_gives_engine_unavailable_naming_where_and_what_to_do(tmp_path: Any) -> None:
    where = f"unix://{tmp_path}/no-docker.sock"
    with pytest.raises(EngineUnavailable) as caught:
        DockerEngine(where)
    gc.collect()
    message = str(caught.value)
    assert where in message
    assert "start Docker or set DOCKER_HOST" in message


def test_engine_that_is_not_a_swarm_manager_has_no_services(
    engine: DockerEngine, docker_client: docker.DockerClient
) -> None:
    if docker_client.info()["Swarm"].get("ControlAvailable"):
        pytest.skip("this engine manages a swarm")
    assert engine.list_services() == []


class _FlakyEngineHandler(http.server.BaseHTTPRequestHandler):
    """A Docker API that answers /version, then misbehaves as the server's `mode` says."""

    protocol_version = "HTTP/1.1"
    server: _FlakyEngine

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        """Quiet."""

    def address_string(self) -> str:
        return "unix"

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path = self.path.split("?")[0]
        if path.endswith("/version"):
            self._json(200, {"Version": "20.10.0", "ApiVersion": "1.41", "MinAPIVersion": "1.12"})
        elif self.server.mode == "dies":
            self.close_connection = True  # no answer at all: the engine went away
        elif self.server.mode == "fails":
            self._json(500, {"message": "storage driver exploded"})
        elif path.endswith("/containers/json"):
            self._json(200, [{
                "Id": "c" * 64, "Names": ["/vanishing"], "Image": "sha256:" + "d" * 64,
                "ImageID": "sha256:" + "d" * 64, "Labels": {},
            }])
        elif path.endswith("/images/json"):
            self._json(200, [])
        else:  # the container is gone by the time it is inspected
            self._json(404, {"message": "No such container"})


class _FlakyEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, mode: str) -> None:
        super().__init__(path, _FlakyEngineHandler)
        self.mode = mode


@pytest.fixture
def flaky_engine(tmp_path: Any) -> Any:
    """start(mode) -> a DockerEngine on a socket whose API misbehaves after /version."""
    servers: list[_FlakyEngine] = []
    engines: list[DockerEngine] = []

    def start(mode: str) -> DockerEngine:
        path = str(tmp_path / f"{mode}.sock")
        server = _FlakyEngine(path, mode)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        engine = DockerEngine(f"unix://{path}", timeout=5)
        engines.append(engine)
        return engine

    yield start
    for engine in engines:
        engine.close()
    for server in servers:
        server.shutdown()
        server.server_close()


def test_engine_that_stops_answering_mid_pass_raises_engine_unavailable(
    flaky_engine: Any,
) -> None:
    engine = flaky_engine("dies")
    with pytest.raises(EngineUnavailable) as caught:
        engine.list_workloads()
    assert "stopped answering while listing containers" in str(caught.value)


def test_engine_error_during_listing_is_an_engine_error_with_its_explanation(
    flaky_engine: Any,
) -> None:
    engine = flaky_engine("fails")
    with pytest.raises(EngineError) as caught:
        engine.list_workloads()
    assert not isinstance(caught.value, EngineUnavailable)
    assert "storage driver exploded" in str(caught.value)


def test_container_that_vanishes_between_list_and_inspect_is_left_out(
    flaky_engine: Any,
) -> None:
    assert flaky_engine("vanishes").list_workloads() == []


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("engine_under_test", ["classic"], indirect=True)  # the swarm's own
async def test_swarm_service_is_checked_by_its_tag_against_its_spec_digest(
    swarm: SwarmEngine, registries: Any, images: Any, tmp_path: Any
) -> None:
    from bot.check.checker import Checker
    from bot.domain.model import CheckStatus
    from bot.registry.client import RegistryClient
    from bot.registry.credentials import DockerCredentials

    anon = registries.anonymous
    repo = _repo("svc")
    old = images.push(anon, repo, "v1", version=1)
    ref = f"{anon.host}/{repo}:v1"
    client, url = swarm.client, swarm.url
    assert client is not None
    # What `docker service create` does: pin the spec to the digest the tag resolves to.
    name = f"dwsvc-{uuid.uuid4().hex[:8]}"
    client.services.create(f"{ref}@{old}", name=name, command=["sleep", "86400"])

    engine = DockerEngine(url)
    try:
        (service,) = [s for s in engine.list_services() if s.name == name]
        assert (service.kind, service.name, service.image) == ("service", name, ref)
        assert service.repo_digests == (f"{anon.host}/{repo}@{old}",)

        new = images.push(anon, repo, "v1", version=2)
        config = tmp_path / "cfg"
        config.mkdir()
        async with RegistryClient(credentials=DockerCredentials(str(config))) as registry:
            checker = Checker(engine, registry, label_enable=False, default_policy="approve")
            (result,) = (await checker.check([name])).results
        assert (result.kind, result.status) == ("service", CheckStatus.UPDATE_AVAILABLE)
        assert (result.local_digest, result.remote_digest) == (old, new)
    finally:
        engine.close()

"""One check pass against the real engine and real registries."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.check.checker import Checker
from bot.domain.model import CheckReport, CheckResult, CheckStatus, SkipReason
from bot.engines.docker import DockerEngine
from bot.errors import ContainerNotFound
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from tests.integration.engines import *  # noqa: F403 - runs on each Docker engine
from tests.integration.engines import EngineUnderTest
from tests.services.images import MEDIA_TYPES
from tests.services.registry import RegistryService


def _repo(stem: str) -> str:
    return f"dwcheck/{stem}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[RegistryClient]:
    empty_config = tmp_path / "docker-config"
    empty_config.mkdir()
    async with RegistryClient(credentials=DockerCredentials(str(empty_config))) as client:
        yield client


def _checker(engine: DockerEngine, registry: RegistryClient, *, label_enable: bool = False
             ) -> Checker:
    return Checker(engine, registry, label_enable=label_enable, default_policy="approve")


def _by_name(report: CheckReport) -> dict[str, CheckResult]:
    return {r.container: r for r in report.results}


def _pushed_and_running(images: Any, containers: Any, registry: Any, stem: str,
                        **run: Any) -> tuple[Any, str, str]:
    """Push v1 of a fresh repository, pull it, run it; (container, reference, digest)."""
    repo = _repo(stem)
    digest = images.push(registry, repo, "v1", version=1)
    ref = f"{registry.host}/{repo}:v1"
    return containers.run(ref, **run), ref, digest


async def test_up_to_date_outdated_pinned_and_local_in_one_pass(
    engine: DockerEngine, registry: RegistryClient, registries: Any, images: Any,
    containers: Any, engine_under_test: EngineUnderTest,
) -> None:
    anon = registries.anonymous
    current, current_ref, current_digest = _pushed_and_running(images, containers, anon, "cur")
    outdated, outdated_ref, old_digest = _pushed_and_running(images, containers, anon, "old")
    new_digest = images.push(anon, outdated_ref.split("/", 1)[1].rsplit(":", 1)[0], "v1",
                             version=2)
    pinned = containers.run(f"{current_ref.rsplit(':', 1)[0]}@{current_digest}")
    # Built here under a registry's name, never pushed (the containerd store gives it a
    # RepoDigest of its own; the registry does not know it).
    local_tag = f"{anon.host}/dwcheck/local-{os.getpid()}-{uuid.uuid4().hex[:6]}:1"
    images.build_local(local_tag, 1)
    local = containers.run(local_tag)

    names = [current.name, outdated.name, pinned.name, local.name]
    results = _by_name(await _checker(engine, registry).check(names))

    assert results[current.name].status is CheckStatus.UP_TO_DATE
    assert results[current.name].local_digest == current_digest
    assert results[current.name].remote_digest == current_digest
    assert results[current.name].image == current_ref

    assert results[outdated.name].status is CheckStatus.UPDATE_AVAILABLE
    assert results[outdated.name].local_digest == old_digest
    assert results[outdated.name].remote_digest == new_digest

    assert results[pinned.name].reason is SkipReason.PINNED_DIGEST
    assert results[pinned.name].local_digest == current_digest
    assert (results[local.name].status, results[local.name].reason) == (
        CheckStatus.SKIPPED, SkipReason.LOCAL_IMAGE)
    assert results[local.name].error is None
    assert results[local.name].image == local_tag
    # One HEAD per reference looked up (the local one only where it has a RepoDigest);
    # no manifest was downloaded.
    assert registry.stats["head"] == (2 if engine_under_test.store == "classic" else 3)
    assert registry.stats["get"] == 0


async def test_pull_over_the_tag_leaves_the_running_container_outdated_not_local(
    engine: DockerEngine, registry: RegistryClient, registries: Any, images: Any,
    containers: Any, docker_client: Any,
) -> None:
    # `docker compose pull` without `up`: the tag moves to the new image; on the containerd
    # store the container's old image is gone and only its id (its digest) remains.
    anon = registries.anonymous
    c, ref, old = _pushed_and_running(images, containers, anon, "pulled")
    repo = ref.split("/", 1)[1].rsplit(":", 1)[0]
    new = images.push(anon, repo, "v2", version=2)
    _retag_in_registry(anon, repo, "v2", "v1")
    docker_client.api.remove_image(f"{anon.host}/{repo}:v2")
    images.pull(anon, repo, "v1")
    (result,) = (await _checker(engine, registry).check([c.name])).results
    assert result.status is CheckStatus.UPDATE_AVAILABLE
    assert (result.local_digest, result.remote_digest) == (old, new)


def _retag_in_registry(registry: Any, repo: str, source: str, target: str) -> None:
    """Point `target` at the manifest `source` names, in the registry only."""
    accept = ", ".join(MEDIA_TYPES["oci"][:2] + MEDIA_TYPES["docker"][:2])
    got = httpx.get(f"{registry.url}/v2/{repo}/manifests/{source}", headers={"Accept": accept})
    got.raise_for_status()
    put = httpx.put(f"{registry.url}/v2/{repo}/manifests/{target}", content=got.content,
                    headers={"Content-Type": got.headers["Content-Type"]})
    put.raise_for_status()


@pytest.mark.parametrize("family", ["oci", "docker"])
async def test_multiarch_image_pulled_by_tag_is_up_to_date_not_a_false_update(
    engine: DockerEngine, registry: RegistryClient, registries: Any, images: Any,
    containers: Any, family: str,
) -> None:
    anon = registries.anonymous
    repo = _repo("multi")
    index_digest = images.push_multiarch(anon, repo, "v1", family=family)
    images.pull(anon, repo, "v1")
    c = containers.run(f"{anon.host}/{repo}:v1")
    (result,) = (await _checker(engine, registry).check([c.name])).results
    assert result.status is CheckStatus.UP_TO_DATE
    assert result.local_digest == result.remote_digest == index_digest


@pytest.mark.parametrize(
    "label", ["dockwarden.enable", "com.centurylinklabs.watchtower.enable", "diun.enable"]
)
async def test_each_enable_label_set_false_disables_checking(
    engine: DockerEngine, registry: RegistryClient, registries: Any, images: Any,
    containers: Any, label: str,
) -> None:
    c, _, _ = _pushed_and_running(images, containers, registries.anonymous, "off",
                                  labels={label: "false"})
    (result,) = (await _checker(engine, registry).check([c.name])).results
    assert (result.status, result.reason) == (CheckStatus.SKIPPED, SkipReason.DISABLED)
    assert registry.stats["head"] == 0


async def test_label_enable_mode_checks_only_opted_in_containers(
    engine: DockerEngine, registry: RegistryClient, registries: Any, images: Any,
    containers: Any,
) -> None:
    anon = registries.anonymous
    opted, _, _ = _pushed_and_running(images, containers, anon, "in",
                                      labels={"dockwarden.enable": "true"})
    plain, _, _ = _pushed_and_running(images, containers, anon, "plain")
    checker = _checker(engine, registry, label_enable=True)
    results = _by_name(await checker.check([opted.name, plain.name]))
    assert results[opted.name].status is CheckStatus.UP_TO_DATE
    assert results[plain.name].reason is SkipReason.DISABLED


# The front is a Python server, which the containerd store's HTTPS-first pull cannot fall back
# from; the challenge handling does not depend on the engine.
@pytest.mark.parametrize("engine_under_test", ["classic"], indirect=True)
async def test_unsupported_challenge_is_an_error_with_its_scheme_while_others_are_checked(
    engine: DockerEngine, registry: RegistryClient, registries: Any, images: Any,
    containers: Any, odd_registry: Any,
) -> None:
    # Pushed straight to the registry behind the front, pulled through the front: the local
    # RepoDigests then name the front's address.
    repo = _repo("odd")
    images.push(registries.anonymous, repo, "v1", version=1)
    images.pull(RegistryService(name="odd", host=odd_registry.host), repo, "v1")
    strange = containers.run(f"{odd_registry.host}/{repo}:v1")
    fine, _, _ = _pushed_and_running(images, containers, registries.anonymous, "fine")
    odd_registry.challenges = ["Negotiate"]

    results = _by_name(await _checker(engine, registry).check([strange.name, fine.name]))

    error = results[strange.name].error
    assert results[strange.name].status is CheckStatus.ERROR
    assert error is not None
    assert error.kind == "unsupported_challenge"
    assert error.scheme is not None and "negotiate" in error.scheme.lower()
    assert error.registry == odd_registry.host
    assert results[fine.name].status is CheckStatus.UP_TO_DATE


@contextmanager
def _forwarder(listen_host: str, upstream: str) -> Iterator[None]:
    """A plain TCP forwarder on `listen_host` to `upstream`, for as long as the block runs."""
    host, port = listen_host.rsplit(":", 1)
    up_host, up_port = upstream.rsplit(":", 1)
    server = socket.create_server((host, int(port)))
    server.settimeout(0.2)
    stop = threading.Event()
    opened: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            remote = socket.create_connection((up_host, int(up_port)))
            opened.extend([client, remote])
            for a, b in ((client, remote), (remote, client)):
                t = threading.Thread(target=pipe, args=(a, b), daemon=True)
                threads.append(t)
                t.start()

    acceptor = threading.Thread(target=serve, daemon=True)
    acceptor.start()
    try:
        yield
    finally:
        stop.set()
        acceptor.join()
        server.close()
        for s in opened:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join()
        for s in opened:
            s.close()


async def test_dead_registry_is_unreachable_for_its_container_only(
    engine: DockerEngine, registry: RegistryClient, registries: Any, images: Any,
    containers: Any, dead_registry: Any,
) -> None:
    # The image is pushed through a forwarder on the dead registry's address, which then goes.
    with _forwarder(dead_registry.host, registries.anonymous.host):
        gone, _, _ = _pushed_and_running(
            images, containers, RegistryService(name="dead", host=dead_registry.host), "gone"
        )
    fine, _, _ = _pushed_and_running(images, containers, registries.anonymous, "alive")

    results = _by_name(await _checker(engine, registry).check([gone.name, fine.name]))

    error = results[gone.name].error
    assert error is not None
    assert (error.kind, error.registry, error.scheme) == ("unreachable", dead_registry.host, None)
    assert results[fine.name].status is CheckStatus.UP_TO_DATE


async def test_same_reference_in_many_containers_is_looked_up_once(
    engine: DockerEngine, registry: RegistryClient, registries: Any, images: Any,
    containers: Any,
) -> None:
    first, ref, _ = _pushed_and_running(images, containers, registries.anonymous, "shared")
    others = [containers.run(ref) for _ in range(3)]
    names = [first.name, *(c.name for c in others)]
    report = await _checker(engine, registry).check(names)
    assert [r.status for r in report.results] == [CheckStatus.UP_TO_DATE] * 4
    assert registry.stats["head"] == 1
    assert registry.stats["get"] == 0


async def test_unknown_name_raises_container_not_found(
    engine: DockerEngine, registry: RegistryClient
) -> None:
    with pytest.raises(ContainerNotFound):
        await _checker(engine, registry).check([f"no-such-{uuid.uuid4().hex}"])

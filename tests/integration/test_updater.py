"""The updater on the real engine and registry: recreate, health gate, rollback, recovery."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import random
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import pytest

from bot.chat.messages import AlertKind, Sender
from bot.config.settings import Settings
from bot.domain.model import UpdateOutcome
from bot.engines.docker import DockerEngine
from bot.entrypoints.bootstrap import Core, build_checker, build_core
from bot.errors import UpdateInProgress
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from bot.store.db import Store
from bot.update.selfinfo import _start_time, process_identity
from bot.update.updater import Updater
from tests.services.containers import OwnNetwork
from tests.unit.fakes import FakeAdapter, cmd

# PID 1 ignores SIGTERM unless it traps it: this keeps `docker stop` quick.
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]
WEB = ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h / & wait"]
GRACE = 1.0
HEALTH_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[2]


def _repo(stem: str) -> str:
    return f"dwupdater/{stem}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Outdated:
    """A tag whose registry now holds v2 while the engine only has v1 (as after a release)."""

    def __init__(self, client: docker.DockerClient, images: Any, registry: Any, stem: str,
                 v1: dict[str, Any], v2: dict[str, Any]) -> None:
        self.repo = _repo(stem)
        self.name = f"{registry.host}/{self.repo}"
        self.ref = f"{self.name}:1"
        self.old_digest = images.push(registry, self.repo, "1", version=1, **v1)
        self.old_id = client.images.get(self.ref).id
        self.new_digest = images.push(registry, self.repo, "1", version=2, **v2)
        # Forget v2 locally so the updater has to pull it, and give v1 its tag back.
        client.images.remove(self.ref)
        client.api.tag(self.old_id, self.name, "1")


@pytest.fixture
def containers(containers: Any) -> OwnNetwork:
    """containers.run(...) on a user-defined network unless the test chooses one."""
    return OwnNetwork(containers)


@pytest.fixture
def docker_dir(docker_config: Any, registries: Any) -> str:
    basic = registries.basic
    path: str = docker_config({basic.host: {"username": basic.username,
                                            "password": basic.password}})
    return path


@pytest.fixture
async def updater(
    engine: DockerEngine, db: Store, docker_dir: str
) -> AsyncIterator[Updater]:
    credentials = DockerCredentials(docker_dir)
    async with RegistryClient(credentials=credentials) as registry:
        yield Updater(engine, registry, db, health_timeout=HEALTH_TIMEOUT, grace_period=GRACE,
                      credentials=credentials)


@pytest.fixture
def volumes_after(docker_client: docker.DockerClient, containers: Any) -> Iterator[list[str]]:
    """Names of containers whose volumes (anonymous ones included) go with them at teardown."""
    names: list[str] = []
    yield names
    doomed: set[str] = set()
    for name in names:
        for c in docker_client.containers.list(all=True, filters={"name": name}):
            doomed.update(m["Name"] for m in c.attrs.get("Mounts") or () if m.get("Name"))
            c.remove(force=True)
    for volume in doomed:
        try:
            docker_client.volumes.get(volume).remove(force=True)
        except docker.errors.APIError:
            pass


def _network(containers: Any) -> tuple[Any, str]:
    """A user-defined network on a random /24 and a static address in it."""
    for _ in range(10):
        third = random.randint(0, 255)
        ipam = docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=f"10.213.{third}.0/24")]
        )
        try:
            return containers.network(ipam=ipam), f"10.213.{third}.23"
        except docker.errors.APIError:
            continue  # the subnet is taken by someone else's network
    raise RuntimeError("no free subnet")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _inspect(client: docker.DockerClient, name: str) -> dict[str, Any]:
    return dict(client.api.inspect_container(name))


def _exec(client: docker.DockerClient, name: str, command: str) -> str:
    code, out = client.containers.get(name).exec_run(["sh", "-c", command])
    assert code == 0, out
    return str(out.decode().strip())


def _names_like(client: docker.DockerClient, name: str) -> set[str]:
    return {c.name for c in client.containers.list(all=True, filters={"name": name})}


# -- a successful update -----------------------------------------------------------------------


async def test_outdated_container_is_recreated_on_the_new_digest_keeping_config_and_data(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any, volumes_after: list[str], db: Store,
) -> None:
    env = {"APP_MODE": "v1", "KEEP": "image"}
    image = Outdated(docker_client, images, registries.basic, "full",
                     dict(cmd=SLEEPER, env=env, volumes=["/anon"], labels={"vendor": "v1"}),
                     dict(cmd=SLEEPER, env={**env, "APP_MODE": "v2"}, volumes=["/anon"],
                          labels={"vendor": "v2"}))
    net, ip = _network(containers)
    back, _ = _network(containers)
    named = containers.volume()
    port = _free_port()
    name = containers.unique_name("dwt-upd")
    volumes_after.append(name)
    endpoint = docker_client.api.create_endpoint_config(aliases=["web"], ipv4_address=ip)
    old = containers.run(
        image.ref, name=name, environment={"KEEP": "override", "TZ": "Europe/Paris"},
        labels={"com.docker.compose.project": "shop", "team": "a"},
        ports={"8080/tcp": ("127.0.0.1", port)}, network=net.name,
        networking_config={net.name: endpoint},
        volumes={named.name: {"bind": "/named", "mode": "rw"}},
        restart_policy={"Name": "unless-stopped"},
    )
    back.connect(old, aliases=["web-back"])
    _exec(docker_client, name, "echo anon-data > /anon/f && echo named-data > /named/f")

    result = await updater.update(name, actor="test")

    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert (result.old_digest, result.new_digest) == (image.old_digest, image.new_digest)
    new = _inspect(docker_client, name)
    assert new["Id"] != old.id and new["State"]["Running"]
    running_image = docker_client.api.inspect_image(new["Image"])
    assert f"{image.name}@{image.new_digest}" in running_image["RepoDigests"]
    assert new["Config"]["Image"] == image.ref
    env_now = set(new["Config"]["Env"])
    assert {"KEEP=override", "TZ=Europe/Paris", "APP_MODE=v2"} <= env_now
    assert "APP_MODE=v1" not in env_now
    labels = new["Config"]["Labels"]
    assert labels["com.docker.compose.project"] == "shop" and labels["team"] == "a"
    assert labels["vendor"] == "v2"
    assert new["HostConfig"]["PortBindings"] == {
        "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
    }
    assert new["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    networks = new["NetworkSettings"]["Networks"]
    assert "web" in networks[net.name]["Aliases"]
    assert networks[net.name]["IPAddress"] == ip
    assert "web-back" in networks[back.name]["Aliases"]
    assert new["Config"]["Hostname"] == new["Id"][:12]
    assert _exec(docker_client, name, "cat /anon/f /named/f") == "anon-data\nnamed-data"
    assert _names_like(docker_client, name) == {name}  # the old one is gone
    assert db.journal_open() == []
    assert db.history(name)[0].outcome == "updated"


async def test_old_image_is_removed_when_asked_once_no_container_uses_it(
    engine: DockerEngine, db: Store, docker_dir: str, docker_client: docker.DockerClient,
    images: Any, registries: Any, containers: Any,
) -> None:
    image = Outdated(docker_client, images, registries.anonymous, "cleanup",
                     dict(cmd=SLEEPER), dict(cmd=SLEEPER))
    first = containers.run(image.ref)
    second = containers.run(image.ref)
    credentials = DockerCredentials(docker_dir)
    async with RegistryClient(credentials=credentials) as registry:
        updater = Updater(engine, registry, db, health_timeout=HEALTH_TIMEOUT, grace_period=GRACE,
                          credentials=credentials, remove_old_images=True)

        kept = await updater.update(first.name)
        assert kept.outcome is UpdateOutcome.UPDATED, kept.message
        assert "the old image is kept" in kept.message  # the second container still runs it
        assert docker_client.images.get(image.old_id).id == image.old_id

        removed = await updater.update(second.name)
        assert removed.outcome is UpdateOutcome.UPDATED, removed.message
        assert "the old image was removed" in removed.message
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(image.old_id)


async def test_old_container_is_stopped_with_its_own_stop_signal(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any, volumes_after: list[str],
) -> None:
    on_usr1 = ["sh", "-c", "trap 'echo usr1 > /anon/stopped; exit 0' USR1; sleep 86400 & wait"]
    image = Outdated(docker_client, images, registries.anonymous, "signal",
                     dict(cmd=on_usr1, volumes=["/anon"]), dict(cmd=SLEEPER, volumes=["/anon"]))
    old = containers.run(image.ref, stop_signal="SIGUSR1")
    volumes_after.append(old.name)

    result = await updater.update(old.name)

    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert _exec(docker_client, old.name, "cat /anon/stopped") == "usr1"
    assert _inspect(docker_client, old.name)["Config"]["StopSignal"] == "SIGUSR1"


async def test_container_already_on_the_remote_digest_is_left_alone(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any,
) -> None:
    repo = _repo("same")
    digest = images.push(registries.anonymous, repo, "1", version=1, cmd=SLEEPER)
    old = containers.run(f"{registries.anonymous.host}/{repo}:1")

    result = await updater.update(old.name)

    assert result.outcome is UpdateOutcome.UP_TO_DATE
    assert result.new_digest == digest
    assert _inspect(docker_client, old.name)["Id"] == old.id


async def test_pull_from_a_token_registry_uses_the_identity_token_from_docker_config(
    engine: DockerEngine, db: Store, docker_config: Any, docker_client: docker.DockerClient,
    images: Any, registries: Any, containers: Any,
) -> None:
    token = registries.token
    image = Outdated(docker_client, images, token, "token", dict(cmd=SLEEPER), dict(cmd=SLEEPER))
    old = containers.run(image.ref)
    credentials = DockerCredentials(docker_config({token.host: {
        "identitytoken": token.identity_token}}))
    async with RegistryClient(credentials=credentials) as registry:
        updater = Updater(engine, registry, db, health_timeout=HEALTH_TIMEOUT,
                          grace_period=GRACE, credentials=credentials)
        result = await updater.update(old.name)

    assert result.outcome is UpdateOutcome.UPDATED, result.message
    running = docker_client.api.inspect_image(_inspect(docker_client, old.name)["Image"])
    assert f"{image.name}@{image.new_digest}" in running["RepoDigests"]


# -- rollback ----------------------------------------------------------------------------------


async def _assert_rolled_back(
    updater: Updater, docker_client: docker.DockerClient, image: Outdated, old: Any
) -> str:
    started = _inspect(docker_client, old.name)["State"]["StartedAt"]
    result = await updater.update(old.name)
    assert result.outcome is UpdateOutcome.ROLLED_BACK, result.message
    back = _inspect(docker_client, old.name)
    assert back["Id"] == old.id and back["State"]["Running"]
    assert back["State"]["StartedAt"] != started
    assert _exec(docker_client, old.name, "cat /anon/f") == "anon-data"
    assert _names_like(docker_client, old.name) == {old.name}  # no new, no aside
    assert docker_client.images.get(image.ref).id == image.old_id  # the tag is given back
    assert updater.store.journal_open() == []
    return result.message


async def test_new_image_whose_command_exits_at_once_is_rolled_back(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any, volumes_after: list[str],
) -> None:
    image = Outdated(docker_client, images, registries.anonymous, "exits",
                     dict(cmd=SLEEPER, volumes=["/anon"]),
                     dict(cmd=["sh", "-c", "exit 3"], volumes=["/anon"]))
    old = containers.run(image.ref)
    volumes_after.append(old.name)
    _exec(docker_client, old.name, "echo anon-data > /anon/f")

    message = await _assert_rolled_back(updater, docker_client, image, old)

    assert "exited with code 3" in message and "renamed" in message


async def test_new_image_whose_healthcheck_fails_is_rolled_back(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any, volumes_after: list[str],
) -> None:
    image = Outdated(docker_client, images, registries.anonymous, "unhealthy",
                     dict(cmd=SLEEPER, volumes=["/anon"], healthcheck=["true"]),
                     dict(cmd=SLEEPER, volumes=["/anon"], healthcheck=["false"]))
    old = containers.run(image.ref)
    volumes_after.append(old.name)
    _exec(docker_client, old.name, "echo anon-data > /anon/f")

    message = await _assert_rolled_back(updater, docker_client, image, old)

    assert "unhealthy" in message


async def test_new_image_with_a_passing_healthcheck_waits_for_healthy(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any,
) -> None:
    image = Outdated(docker_client, images, registries.anonymous, "healthy",
                     dict(cmd=SLEEPER), dict(cmd=SLEEPER, healthcheck=["true"]))
    old = containers.run(image.ref)

    result = await updater.update(old.name)

    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert "healthy" in result.message
    assert _inspect(docker_client, old.name)["State"]["Health"]["Status"] == "healthy"


# -- failures that touch nothing ---------------------------------------------------------------


async def test_registry_down_fails_and_touches_nothing(
    updater: Updater, docker_client: docker.DockerClient, images: Any, containers: Any,
    dead_registry: Any, db: Store,
) -> None:
    reference = f"{dead_registry.host}/{_repo('dead')}:1"
    images.build_local(reference, version=1, cmd=SLEEPER)
    old = containers.run(reference)
    before = _inspect(docker_client, old.name)
    wanted = "sha256:" + "4" * 64

    asked = await updater.update(old.name)
    pulled = await updater.update(old.name, expected_digest=wanted)

    for result in (asked, pulled):
        assert result.outcome is UpdateOutcome.FAILED
        assert "nothing was changed" in result.message
    assert "could not pull" in pulled.message
    after = _inspect(docker_client, old.name)
    assert after["Id"] == before["Id"] and after["State"] == before["State"]
    assert _names_like(docker_client, old.name) == {old.name}
    assert [h.outcome for h in db.history(old.name)] == ["failed", "failed"]
    assert db.journal_open() == []


@pytest.mark.parametrize("kind", ["auto_remove", "image_id", "pinned"])
async def test_containers_that_cannot_be_rolled_back_or_have_no_tag_are_refused_untouched(
    kind: str, updater: Updater, docker_client: docker.DockerClient, images: Any,
    registries: Any, containers: Any,
) -> None:
    repo = _repo(kind.replace("_", "-"))
    digest = images.push(registries.anonymous, repo, "1", version=1, cmd=SLEEPER)
    reference = f"{registries.anonymous.host}/{repo}:1"
    if kind == "auto_remove":
        old = containers.run(reference, auto_remove=True)
    elif kind == "image_id":
        old = containers.run(docker_client.images.get(reference).id)
    else:
        old = containers.run(f"{registries.anonymous.host}/{repo}@{digest}")
    before = _inspect(docker_client, old.name)

    result = await updater.update(old.name)

    assert result.outcome is UpdateOutcome.FAILED and "nothing was changed" in result.message
    after = _inspect(docker_client, old.name)
    assert after["Id"] == before["Id"] and after["State"] == before["State"]


async def test_approved_digest_is_pulled_even_when_the_tag_moved_on(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any,
) -> None:
    image = Outdated(docker_client, images, registries.anonymous, "approved",
                     dict(cmd=SLEEPER), dict(cmd=SLEEPER))
    old = containers.run(image.ref)
    approved = image.new_digest
    newest = images.push(registries.anonymous, image.repo, "1", version=3, cmd=SLEEPER)
    docker_client.images.remove(image.ref)
    docker_client.api.tag(image.old_id, image.name, "1")

    result = await updater.update(old.name, expected_digest=approved)

    assert result.outcome is UpdateOutcome.UPDATED, result.message
    running = docker_client.api.inspect_image(_inspect(docker_client, old.name)["Image"])
    assert f"{image.name}@{approved}" in running["RepoDigests"]
    assert f"{image.name}@{newest}" not in running["RepoDigests"]


# -- network namespace sharers -----------------------------------------------------------------


async def test_container_sharing_the_network_namespace_keeps_working_after_the_update(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any,
) -> None:
    image = Outdated(docker_client, images, registries.anonymous, "netns",
                     dict(cmd=WEB), dict(cmd=WEB))
    target = containers.run(image.ref)
    sidecar = containers.run(image.ref, command=SLEEPER, network_mode=f"container:{target.name}")
    fetch = "wget -q -O - http://127.0.0.1:8080/version"
    assert "version 1" in _exec(docker_client, sidecar.name, fetch)

    result = await updater.update(target.name)

    assert result.outcome is UpdateOutcome.UPDATED, result.message
    new_target = _inspect(docker_client, target.name)
    new_sidecar = _inspect(docker_client, sidecar.name)
    assert new_sidecar["State"]["Running"]
    assert new_sidecar["HostConfig"]["NetworkMode"] == f"container:{new_target['Id']}"
    assert "version 2" in _exec(docker_client, sidecar.name, fetch)
    assert new_sidecar["Image"] == sidecar.image.id  # recreated, not updated
    assert _names_like(docker_client, sidecar.name) == {sidecar.name}


async def test_namespace_sharer_rejoins_the_old_container_after_a_rollback(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any,
) -> None:
    image = Outdated(docker_client, images, registries.anonymous, "netns-back",
                     dict(cmd=WEB), dict(cmd=["sh", "-c", "exit 1"]))
    target = containers.run(image.ref)
    sidecar = containers.run(image.ref, command=SLEEPER, network_mode=f"container:{target.name}")

    result = await updater.update(target.name)

    assert result.outcome is UpdateOutcome.ROLLED_BACK, result.message
    assert f"restarted {sidecar.name}" in result.message
    assert _inspect(docker_client, target.name)["Id"] == target.id
    fetch = "wget -q -O - http://127.0.0.1:8080/version"
    assert "version 1" in _exec(docker_client, sidecar.name, fetch)


# -- concurrency -------------------------------------------------------------------------------


async def test_second_update_of_the_same_container_while_one_runs_is_refused(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any,
) -> None:
    image = Outdated(docker_client, images, registries.anonymous, "twice",
                     dict(cmd=SLEEPER), dict(cmd=SLEEPER))
    old = containers.run(image.ref)

    results = await asyncio.gather(
        updater.update(old.name), updater.update(old.name), return_exceptions=True
    )

    refused = [r for r in results if isinstance(r, UpdateInProgress)]
    done = [r for r in results if not isinstance(r, BaseException)]
    assert len(refused) == 1 and len(done) == 1
    assert done[0].outcome is UpdateOutcome.UPDATED


async def test_update_while_a_live_process_journals_one_of_the_same_container_is_refused(
    updater: Updater, docker_client: docker.DockerClient, images: Any, containers: Any,
    db: Store,
) -> None:
    reference = f"127.0.0.1:1/{_repo('busy')}:1"
    images.build_local(reference, version=1, cmd=SLEEPER)
    old = containers.run(reference)
    other = subprocess.Popen(["sleep", "60"])  # another live process on this host
    try:
        owner = {**process_identity(), "pid": other.pid, "pid_start": _start_time(other.pid)}
        db.journal_begin(old.name, "health", {"owner": owner, "old_id": old.id})

        with pytest.raises(UpdateInProgress):
            await updater.update(old.name)

        assert await updater.reconcile() == []  # a live owner's journal is not settled
        assert _inspect(docker_client, old.name)["State"]["Running"]
    finally:
        other.kill()
        other.wait()


async def test_a_journal_this_process_left_open_is_settled_not_taken_for_a_live_update(
    updater: Updater, docker_client: docker.DockerClient, images: Any, containers: Any,
    db: Store,
) -> None:
    reference = f"127.0.0.1:1/{_repo('mine')}:1"
    images.build_local(reference, version=1, cmd=SLEEPER)
    old = containers.run(reference)
    # As a journal write that failed, or a cancelled update, leaves it: owned by this very
    # process, which no longer carries it out. It must not block the container for good.
    db.journal_begin(old.name, "rename", {"owner": process_identity(), "old_id": old.id,
                                          "name": old.name, "aside": old.name + "-aside"})

    assert await updater.reconcile() == [old.name]

    assert db.journal_open() == []
    assert _inspect(docker_client, old.name)["State"]["Running"]


# -- interrupted updates -----------------------------------------------------------------------

CRASHING_UPDATE = textwrap.dedent("""
    import asyncio, os, sys
    from bot.engines.docker import DockerEngine
    from bot.registry.client import RegistryClient
    from bot.registry.credentials import DockerCredentials
    from bot.store.db import Store
    from bot.update.updater import Updater

    docker_host, db, name, crash_after = sys.argv[1:5]

    def crash(step):
        if step == crash_after:
            os._exit(137)  # as if killed: no cleanup, no journal finish

    async def main():
        credentials = DockerCredentials(None)
        async with RegistryClient(credentials=credentials) as registry:
            updater = Updater(DockerEngine(docker_host), registry, Store(db),
                              health_timeout=30, grace_period=1, after_step=crash)
            await updater.update(name)

    asyncio.run(main())
    sys.exit(3)  # the crash point was never reached
""")


@pytest.mark.parametrize("crash_after", ["rename", "create", "start"])
async def test_update_killed_mid_way_is_reconciled_to_the_old_container(
    crash_after: str, updater: Updater, docker_client: docker.DockerClient, images: Any,
    registries: Any, containers: Any, docker_host: str, db: Store, volumes_after: list[str],
) -> None:
    image = Outdated(docker_client, images, registries.anonymous, f"crash-{crash_after}",
                     dict(cmd=SLEEPER, volumes=["/anon"]), dict(cmd=SLEEPER, volumes=["/anon"]))
    old = containers.run(image.ref)
    volumes_after.append(old.name)
    _exec(docker_client, old.name, "echo anon-data > /anon/f")

    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_UPDATE, docker_host, db.path, old.name, crash_after],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert crashed.returncode == 137, crashed.stderr
    assert len(db.journal_open()) == 1

    assert await updater.reconcile() == [old.name]

    assert db.history(old.name)[0].outcome == "rolled_back"
    back = _inspect(docker_client, old.name)
    assert back["Id"] == old.id and back["State"]["Running"]
    assert _exec(docker_client, old.name, "cat /anon/f") == "anon-data"
    assert _names_like(docker_client, old.name) == {old.name}
    assert db.journal_open() == []
    assert await updater.reconcile() == []  # settled once, nothing left


async def test_update_killed_after_the_health_gate_is_reconciled_to_the_new_container(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any, docker_host: str, db: Store,
) -> None:
    image = Outdated(docker_client, images, registries.anonymous, "crash-health",
                     dict(cmd=SLEEPER), dict(cmd=SLEEPER))
    old = containers.run(image.ref)

    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_UPDATE, docker_host, db.path, old.name, "health"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert crashed.returncode == 137, crashed.stderr

    assert await updater.reconcile() == [old.name]

    assert db.history(old.name)[0].outcome == "updated"
    new = _inspect(docker_client, old.name)
    assert new["Id"] != old.id and new["State"]["Running"]
    assert _names_like(docker_client, old.name) == {old.name}
    assert db.journal_open() == []


async def test_update_killed_before_its_namespace_sharers_were_recreated_rejoins_them(
    updater: Updater, docker_client: docker.DockerClient, images: Any, registries: Any,
    containers: Any, docker_host: str, db: Store,
) -> None:
    image = Outdated(docker_client, images, registries.anonymous, "crash-netns",
                     dict(cmd=WEB), dict(cmd=WEB))
    target = containers.run(image.ref)
    sidecar = containers.run(image.ref, command=SLEEPER, network_mode=f"container:{target.name}")

    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_UPDATE, docker_host, db.path, target.name, "remove_old"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert crashed.returncode == 137, crashed.stderr

    assert await updater.reconcile() == [target.name]

    new_target = _inspect(docker_client, target.name)
    assert new_target["Id"] != target.id
    new_sidecar = _inspect(docker_client, sidecar.name)
    assert new_sidecar["HostConfig"]["NetworkMode"] == f"container:{new_target['Id']}"
    fetch = "wget -q -O - http://127.0.0.1:8080/version"
    assert "version 2" in _exec(docker_client, sidecar.name, fetch)
    assert db.journal_open() == []


# -- the command line --------------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, input=stdin,
        capture_output=True, text=True, timeout=120,
    )


def test_dockwarden_update_yes_json_follows_the_contract(
    docker_client: docker.DockerClient, images: Any, registries: Any, containers: Any,
    docker_host: str, docker_dir: str, tmp_path: Path,
) -> None:
    image = Outdated(docker_client, images, registries.basic, "cli",
                     dict(cmd=SLEEPER), dict(cmd=SLEEPER))
    old = containers.run(image.ref)
    env = {**os.environ, "DOCKER_HOST": docker_host, "DOCKER_CONFIG": docker_dir,
           "DOCKWARDEN_DB": str(tmp_path / "cli.db"), "DOCKWARDEN_GRACE_PERIOD": "1"}

    refused = _cli(["update", old.name], env)  # no terminal to ask on: nothing happens
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert _inspect(docker_client, old.name)["Id"] == old.id

    done = _cli(["update", old.name, "--yes", "--json"], env)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document == {
        "container": old.name, "host": "local", "outcome": "updated",
        "old_digest": image.old_digest,
        "new_digest": image.new_digest, "message": document["message"],
    }
    assert _inspect(docker_client, old.name)["Id"] != old.id

    again = _cli(["update", old.name, "--yes", "--json"], env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["outcome"] == "up_to_date"

    missing = _cli(["update", old.name + "-nope", "--yes", "--json"], env)
    assert missing.returncode != 0


def test_dockwarden_update_asks_on_a_terminal_and_a_no_changes_nothing(
    docker_client: docker.DockerClient, images: Any, registries: Any, containers: Any,
    docker_host: str, tmp_path: Path,
) -> None:
    image = Outdated(docker_client, images, registries.anonymous, "ask",
                     dict(cmd=SLEEPER), dict(cmd=SLEEPER))
    old = containers.run(image.ref)
    env = {**os.environ, "DOCKER_HOST": docker_host, "DOCKWARDEN_DB": str(tmp_path / "a.db")}
    controller, terminal = pty.openpty()
    try:
        os.write(controller, b"n\n")
        answered = subprocess.run(
            [sys.executable, "-m", "bot", "update", old.name], cwd=ROOT, env=env,
            stdin=terminal, capture_output=True, text=True, timeout=120,
        )
    finally:
        os.close(controller)
        os.close(terminal)

    assert answered.returncode == 1
    assert f"Update {old.name} ({image.ref}) from {image.old_digest} to {image.new_digest}? [y/N]" \
        in answered.stderr
    assert "aborted" in answered.stderr
    assert _inspect(docker_client, old.name)["Id"] == old.id


# -- stale approvals ---------------------------------------------------------------------------


@pytest.fixture
async def core(
    engine: DockerEngine, db: Store, docker_dir: str, docker_host: str
) -> AsyncIterator[tuple[Core, FakeAdapter]]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        docker_host=docker_host, docker_config=docker_dir, db=db.path,
        health_timeout=HEALTH_TIMEOUT, grace_period=GRACE,
    )
    adapter = FakeAdapter()
    credentials = DockerCredentials(docker_dir)
    async with RegistryClient(credentials=credentials) as registry:
        updater = Updater(engine, registry, db, health_timeout=HEALTH_TIMEOUT,
                          grace_period=GRACE, credentials=credentials)
        checker = build_checker(settings, engine, registry)
        yield build_core(settings, db, checker, updater, [adapter], retry_delay=0), adapter


OPERATOR = Sender("console", 0, "operator", in_alert_place=True)


@pytest.mark.parametrize("by_hand", ["another_tag", "a_newer_digest"])
async def test_an_approval_made_stale_by_hand_changes_nothing_and_is_superseded(
    by_hand: str, core: tuple[Core, FakeAdapter], docker_client: docker.DockerClient,
    images: Any, registries: Any, containers: Any, db: Store,
) -> None:
    bot, adapter = core
    image = Outdated(docker_client, images, registries.anonymous, f"stale-{by_hand[:7]}",
                     dict(cmd=SLEEPER), dict(cmd=SLEEPER))
    old = containers.run(image.ref)
    found = await bot.runner.run([old.name])
    [alert] = [a for a in found.alerts if a.container == old.name]
    assert alert.extra["digest"] == image.new_digest
    # Meanwhile the operator moves the container on by hand: onto another tag, or onto a
    # digest newer than the one alerted (pulled and recreated under the same name).
    if by_hand == "another_tag":
        now_runs = images.push(registries.anonymous, image.repo, "2", version=5, cmd=SLEEPER)
        reference = f"{image.name}:2"
    else:
        now_runs = images.push(registries.anonymous, image.repo, "1", version=3, cmd=SLEEPER)
        reference = image.ref
        docker_client.images.pull(image.name, tag="1")
    moved_image = docker_client.images.get(reference).id
    old.remove(force=True)
    moved = containers.run(reference, name=old.name)

    reply = await bot.router.dispatch(cmd("approve", alert.update_id or "", sender=OPERATOR))

    now = _inspect(docker_client, old.name)
    assert now["Id"] == moved.id and now["State"]["Running"]  # not recreated
    assert docker_client.images.get(reference).id == moved_image  # the tag was not moved
    assert f"now runs {reference} at {now_runs[:19]}" in reply.text, reply.text
    assert "nothing was changed" in reply.text
    update = db.get_update(alert.update_id or "")
    assert update is not None and update.state == "superseded"
    for _ in range(200):  # the fresh check of that container follows
        if bot.runner.passes == 2 and not bot.runner.running:
            break
        await asyncio.sleep(0.05)
    assert bot.runner.passes == 2
    assert not [a for a in adapter.alerts if a.kind is AlertKind.UPDATE_FAILED]

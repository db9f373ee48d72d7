"""Several Docker hosts watched by one DockWarden: two real engines, one registry.

Host `a` is the session's engine, host `b` a second dockerd of its own (own socket, data root
and bridge). The same image runs on both under the same container name.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.chat.messages import Command, Sender
from bot.check.checker import Checker
from bot.config.settings import load_settings
from bot.domain.model import CheckStatus, Policy, UpdateOutcome, UpdateState
from bot.domain.targets import HostScope
from bot.engines.docker import DockerEngine
from bot.entrypoints.bootstrap import Core, build_core
from bot.entrypoints.daemon import Daemon
from bot.entrypoints.doctor_cli import doctor
from bot.errors import AmbiguousTarget, ContainerNotFound, UnknownHost
from bot.registry.client import RegistryClient
from bot.store.db import Store
from bot.update.hosts import HostUpdaters
from bot.update.updater import Updater
from bot.usecases.alerting import Alerter
from tests.integration.engines import EngineUnderTest
from tests.services.images import ImageFactory
from tests.services.registry import Registries, RegistryService

REPO_ROOT = Path(__file__).resolve().parents[2]
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]


@dataclass
class TwoHosts:
    """The same image running as `name` on host a and on host b."""

    name: str
    repository: str
    v1: str
    registry: RegistryService
    images: ImageFactory
    a: EngineUnderTest
    b: EngineUnderTest
    on_a: object
    on_b: object
    opened: list[DockerEngine]

    def open(self, url: str, **options: object) -> DockerEngine:
        """DockWarden's engine client on `url`, closed at the end of the test."""
        engine = DockerEngine(url, **options)  # type: ignore[arg-type]
        self.opened.append(engine)
        return engine

    def engines(self) -> dict[str, DockerEngine]:
        return {"a": self.open(self.a.url), "b": self.open(self.b.url)}


@pytest.fixture
def two_hosts(
    classic_engine: EngineUnderTest, second_engine: EngineUnderTest, registries: Registries
) -> Iterator[TwoHosts]:
    registry = registries.anonymous
    name = f"dwmulti-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    repository = f"multi/{name}"
    images = classic_engine.images
    v1 = images.push(registry, repository, "v1", version=1, cmd=SLEEPER)
    second_engine.images.pull(registry, repository, "v1")
    reference = f"{registry.host}/{repository}:v1"
    factories = [classic_engine.containers(), second_engine.containers()]
    opened: list[DockerEngine] = []
    try:
        on_a = factories[0].run(reference, name=name)
        on_b = factories[1].run(reference, name=name)
        yield TwoHosts(name, repository, v1, registry, images, classic_engine, second_engine,
                       on_a, on_b, opened)
    finally:
        for engine in opened:
            engine.close()
        for factory in factories:
            factory.cleanup()


def _refused_url() -> str:
    """An engine URL on a port nothing listens on: connections to it are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def _checker(engines: dict[str, DockerEngine], registry: RegistryClient) -> Checker:
    return Checker(engines, registry, label_enable=False, default_policy=Policy.APPROVE)


def _updaters(engines: dict[str, DockerEngine], registry: RegistryClient,
              store: Store) -> HostUpdaters:
    return HostUpdaters({
        host: Updater(engine, registry, store, health_timeout=20, grace_period=0,
                      scope=HostScope(host, several=True))
        for host, engine in engines.items()
    })


async def test_the_same_image_on_two_hosts_is_asked_for_once_and_each_result_names_its_host(
    two_hosts: TwoHosts, registry: RegistryClient
) -> None:
    checker = _checker(two_hosts.engines(), registry)
    keys = [f"a/{two_hosts.name}", f"b/{two_hosts.name}"]

    report = await checker.check(keys)

    mine = {r.container: r for r in report.results}
    assert set(mine) == set(keys)
    assert {r.host for r in mine.values()} == {"a", "b"}
    assert all(r.status is CheckStatus.UP_TO_DATE and r.remote_digest == two_hosts.v1
               for r in mine.values())
    assert registry.stats["head"] == 1  # one lookup of the image for both hosts
    documents = [r.as_json() for r in mine.values()]
    assert sorted((d["host"], d["container"]) for d in documents) == [
        ("a", two_hosts.name), ("b", two_hosts.name)]
    assert report.hosts == ("a", "b") and not report.unreachable


async def test_a_dead_second_host_is_alerted_once_and_the_first_is_still_checked(
    two_hosts: TwoHosts, registry: RegistryClient, db: Store
) -> None:
    dead_url = _refused_url()
    dead = two_hosts.open(dead_url, lazy=True, advice="start Docker there")
    engines = {"a": two_hosts.open(two_hosts.a.url), "b": dead}
    alerter = Alerter(db)

    first = await _checker(engines, registry).check()
    second = await _checker(engines, registry).check()
    said_first, said_second = alerter.observe(first).alerts, alerter.observe(second).alerts

    assert f"a/{two_hosts.name}" in {r.container for r in first.results}
    assert all(r.host == "a" for r in first.results)
    assert set(first.unreachable) == {"b"}
    assert dead_url.removeprefix("tcp://") in first.unreachable["b"]
    down = [a for a in said_first if a.extra.get("problem") == "engine_unreachable"]
    assert [a.extra.get("host") for a in down] == ["b"]
    assert "b" in down[0].title and "start Docker there" in down[0].text
    assert not [a for a in said_second if a.extra.get("problem") == "engine_unreachable"]
    assert first.as_json()["unreachable_hosts"][0]["host"] == "b"

    engines["b"] = two_hosts.open(two_hosts.b.url)  # host b answers again
    back = alerter.observe(await _checker(engines, registry).check()).alerts
    recovered = [a for a in back if a.extra.get("problem") == "engine_unreachable"]
    assert [(a.kind.value, a.extra.get("host")) for a in recovered] == [("recovered", "b")]


async def test_an_update_on_host_b_leaves_host_a_container_of_the_same_name_alone(
    two_hosts: TwoHosts, registry: RegistryClient, db: Store
) -> None:
    v2 = two_hosts.images.push(two_hosts.registry, two_hosts.repository, "v1", version=2)
    engines = two_hosts.engines()
    updaters = _updaters(engines, registry, db)
    key = f"b/{two_hosts.name}"
    a_before = two_hosts.a.client.api.inspect_container(two_hosts.name)

    result = await updaters.update(key, expected_digest=v2)

    assert (result.outcome, result.container, result.host) == (UpdateOutcome.UPDATED, key, "b")
    assert result.as_json()["container"] == two_hosts.name and result.as_json()["host"] == "b"
    b_after = two_hosts.b.client.api.inspect_container(two_hosts.name)
    assert b_after["Id"] != two_hosts.on_b.id and b_after["State"]["Running"]  # type: ignore[attr-defined]
    b_image = two_hosts.b.client.images.get(b_after["Image"])
    assert any(d.endswith(v2) for d in b_image.attrs["RepoDigests"])
    a_after = two_hosts.a.client.api.inspect_container(two_hosts.name)
    assert (a_after["Id"], a_after["Image"]) == (a_before["Id"], a_before["Image"])
    assert [e.container for e in db.history(key)] == [key]
    assert db.history(f"a/{two_hosts.name}") == []
    assert not db.journal_open()
    report = await _checker(engines, registry).check([f"a/{two_hosts.name}", key])
    assert {(r.container, r.status) for r in report.results} == {
        (f"a/{two_hosts.name}", CheckStatus.UPDATE_AVAILABLE), (key, CheckStatus.UP_TO_DATE)}


async def test_an_ambiguous_bare_name_is_refused_naming_both_candidates(
    two_hosts: TwoHosts, registry: RegistryClient, db: Store
) -> None:
    engines = two_hosts.engines()
    updaters = _updaters(engines, registry, db)
    checker = _checker(engines, registry)
    name = two_hosts.name

    with pytest.raises(AmbiguousTarget) as refused:
        await updaters.resolve(name)
    assert refused.value.candidates == (f"a/{name}", f"b/{name}")
    assert f"a/{name}, b/{name}" in str(refused.value)
    with pytest.raises(AmbiguousTarget):
        await checker.check([name])
    with pytest.raises(UnknownHost, match="the hosts are a, b"):
        await updaters.resolve(f"c/{name}")
    with pytest.raises(ContainerNotFound):
        await updaters.resolve("no-such-container-anywhere")
    assert await updaters.resolve(f"b/{name}") == f"b/{name}"
    (only,) = (await checker.check([f"b/{name}"])).results
    assert (only.container, only.host) == (f"b/{name}", "b")
    # Gone from host a, the bare name means host b's.
    two_hosts.a.client.api.remove_container(two_hosts.name, force=True)
    assert await updaters.resolve(name) == f"b/{name}"


def test_check_json_names_each_host_and_the_host_that_did_not_answer(
    two_hosts: TwoHosts, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DOCKWARDEN_HOSTS": (f"a={two_hosts.a.url},b={two_hosts.b.url},"
                             f"c=unix://{tmp_path / 'gone.sock'}"),
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        "DOCKWARDEN_DB": str(tmp_path / "dw.db"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--json", f"b/{two_hosts.name}"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [(r["host"], r["container"], r["status"]) for r in document["results"]] == [
        ("b", two_hosts.name, "up_to_date")]
    everything = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--json"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert everything.returncode == 0, everything.stderr
    whole = json.loads(everything.stdout)
    assert {(r["host"], r["container"]) for r in whole["results"]} >= {
        ("a", two_hosts.name), ("b", two_hosts.name)}
    assert [u["host"] for u in whole["unreachable_hosts"]] == ["c"]
    assert "DOCKWARDEN_HOSTS entry 'c'" in whole["unreachable_hosts"][0]["message"]


class Clock:
    """The time the canary gate and the pass runner judge by; moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _canary_core(two_hosts: TwoHosts, registry: RegistryClient, store: Store
                 ) -> tuple[Core, Clock, FakeAdapterLike]:
    """The core over hosts a and b with `a` the canary (soak 1h), on a clock the test moves."""
    engines = two_hosts.engines()
    updaters = _updaters(engines, registry, store)
    settings = load_settings(
        _env_file=None, DOCKWARDEN_HOSTS=f"a={two_hosts.a.url},b={two_hosts.b.url}",
        DOCKWARDEN_CANARY_HOSTS="a", DOCKWARDEN_CANARY_SOAK="1h", TELEGRAM_ADMIN_IDS="1",
    )
    said = FakeAdapterLike()
    core = build_core(settings, store, _checker(engines, registry), updaters, [said],
                      resolve=updaters.resolve, canary_health=updaters)
    clock = Clock()
    assert core.updates.canary is not None
    core.updates.canary.clock = core.runner.clock = clock
    core.updates.wake_at = None
    return core, clock, said


class FakeAdapterLike:
    """A chat adapter that keeps what it is told."""

    name = "kept"

    def __init__(self) -> None:
        self.alerts: list[Any] = []

    async def start(self, dispatch: Any) -> None: ...

    async def stop(self) -> None: ...

    async def notify(self, alert: Any) -> None:
        self.alerts.append(alert)


ADMIN = Sender("telegram", 1, "alice", in_alert_place=True)


def _digest_of(engine: EngineUnderTest, name: str) -> list[str]:
    image = engine.client.api.inspect_container(name)["Image"]
    return [d.split("@")[1] for d in engine.client.images.get(image).attrs["RepoDigests"]]


async def test_a_canary_rollout_over_two_engines_updates_the_canary_first_then_the_others(
    two_hosts: TwoHosts, registry: RegistryClient, db: Store
) -> None:
    v2 = two_hosts.images.push(two_hosts.registry, two_hosts.repository, "v1", version=2,
                               cmd=SLEEPER)
    core, clock, _ = _canary_core(two_hosts, registry, db)
    await core.runner.run([f"a/{two_hosts.name}", f"b/{two_hosts.name}"])

    reply = await core.router.dispatch(Command("approve", (f"b/{two_hosts.name}",), ADMIN))

    assert f"waits for canary a/{two_hosts.name}" in reply.text
    assert v2 in _digest_of(two_hosts.a, two_hosts.name)
    assert _digest_of(two_hosts.b, two_hosts.name) == [two_hosts.v1]
    clock.now += timedelta(hours=2)
    assert await core.runner.run_window() == 1
    assert v2 in _digest_of(two_hosts.b, two_hosts.name)
    assert two_hosts.b.client.api.inspect_container(two_hosts.name)["State"]["Running"]


async def test_a_failing_canary_stops_the_rollout_over_two_engines(
    two_hosts: TwoHosts, registry: RegistryClient, db: Store
) -> None:
    # The new digest's containers exit at once: the canary's health gate rolls it back.
    two_hosts.images.push(two_hosts.registry, two_hosts.repository, "v1", version=2,
                          cmd=["sh", "-c", "exit 3"])
    core, _, said = _canary_core(two_hosts, registry, db)
    await core.runner.run([f"a/{two_hosts.name}", f"b/{two_hosts.name}"])
    b_before = two_hosts.b.client.api.inspect_container(two_hosts.name)["Id"]

    reply = await core.router.dispatch(Command("approve", (f"b/{two_hosts.name}",), ADMIN))

    assert f"the rollout to b/{two_hosts.name} stopped" in reply.text
    assert f"canary a/{two_hosts.name}" in reply.text
    assert _digest_of(two_hosts.a, two_hosts.name) == [two_hosts.v1]  # rolled back
    assert two_hosts.a.client.api.inspect_container(two_hosts.name)["State"]["Running"]
    assert two_hosts.b.client.api.inspect_container(two_hosts.name)["Id"] == b_before
    stopped = db.latest_update(f"b/{two_hosts.name}")
    assert stopped is not None and stopped.state is UpdateState.FAILED
    assert any("rollout to" in a.text for a in said.alerts if a.kind.value == "update_failed")


def test_doctor_reports_each_host_and_checks_the_registries_of_those_that_answer(
    two_hosts: TwoHosts, tmp_path: Path
) -> None:
    settings = load_settings(
        _env_file=None, DOCKER_CONFIG=str(tmp_path), DOCKWARDEN_DB=str(tmp_path / "db"),
        DOCKWARDEN_HOSTS=f"a={two_hosts.a.url},b={two_hosts.b.url},c={_refused_url()}",
    )

    findings, answered = doctor(settings)

    engines = {f.subject.split(" ")[0]: f for f in findings if f.area == "docker"}
    assert answered and set(engines) == {"a", "b", "c"}
    assert engines["a"].ok and engines["b"].ok and not engines["c"].ok
    assert "DOCKWARDEN_HOSTS entry 'c'" in engines["c"].text
    registry = [f for f in findings
                if f.area == "registry" and two_hosts.registry.host in f.subject]
    assert registry and all(f.ok for f in registry)


async def test_the_daemon_starts_with_a_host_away_and_its_first_pass_names_every_host(
    two_hosts: TwoHosts, tmp_path: Path
) -> None:
    new = two_hosts.images.push(two_hosts.registry, two_hosts.repository, "v1", version=2)
    settings = load_settings(
        _env_file=None, DOCKER_CONFIG=str(tmp_path), DOCKWARDEN_DB=str(tmp_path / "db"),
        DOCKWARDEN_HOSTS=f"a={two_hosts.a.url},b={two_hosts.b.url},c={_refused_url()}",
        TELEGRAM_ADMIN_IDS="1",
    )
    said = FakeAdapterLike()
    daemon = Daemon(settings, first_pass_delay=0, jitter=0, adapters=[said])
    core = await daemon.start()
    try:
        for _ in range(600):
            if core.runner.passes and not core.runner.running:
                break
            await asyncio.sleep(0.05)
        status = await core.router.dispatch(Command("status", (), ADMIN))
    finally:
        await daemon.stop()

    mine = sorted(a.container for a in said.alerts
                  if a.kind.value == "update_available" and a.extra.get("digest") == new)
    assert mine == [f"a/{two_hosts.name}", f"b/{two_hosts.name}"]
    down = [a for a in said.alerts if a.kind.value == "engine_unreachable"]
    assert [a.extra.get("host") for a in down] == ["c"]
    assert "3 hosts" in status.text and "  c: not checked" in status.text
    assert "  a: Docker" in status.text and "  b: Docker" in status.text

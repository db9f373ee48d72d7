"""The daemon's core over the real engine and registry: pass, console alerts, approval, SIGTERM."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.console import ConsoleAdapter
from bot.chat.messages import AlertKind, Sender
from bot.config.settings import Settings
from bot.engines.docker import DockerEngine
from bot.entrypoints.bootstrap import Core, build_checker, build_core, build_updater
from bot.entrypoints.daemon import Daemon
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from bot.store.db import Store
from tests.unit.fakes import FakeAdapter, cmd

ROOT = Path(__file__).resolve().parents[2]
TELEGRAM_ADMIN = Sender("telegram", 4242, "admin", in_alert_place=True)


@dataclass
class Wired:
    core: Core
    console: ConsoleAdapter
    out: io.StringIO


@pytest.fixture
async def daemon(
    tmp_path: Path, engine: DockerEngine, docker_host: str
) -> AsyncIterator[Wired]:
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        docker_host=docker_host,
        docker_config=str(config_dir),
        db=str(tmp_path / "state.db"),
        telegram_admin_ids=(TELEGRAM_ADMIN.user_id,),
        health_timeout=20.0,
        grace_period=1.0,
    )
    store = Store(settings.db)
    out = io.StringIO()
    console = ConsoleAdapter(out=out, interactive=False)
    async with RegistryClient(credentials=DockerCredentials(str(config_dir))) as registry:
        updater = build_updater(settings, engine, registry, store)
        checker = build_checker(settings, engine, registry)
        core = build_core(settings, store, checker, updater, [console], retry_delay=0)
        await console.start(core.router.dispatch)
        yield Wired(core, console, out)
        await console.stop()
    store.close()


def _outdated_container(images: Any, containers: Any, registries: Any) -> tuple[Any, str, str]:
    """A running container whose tag now points at a newer digest; (container, old, new)."""
    anon = registries.anonymous
    repo = f"dwdaemon/app-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    old = images.push(anon, repo, "v1", version=1)
    container = containers.run(f"{anon.host}/{repo}:v1")
    new = images.push(anon, repo, "v1", version=2)
    return container, old, new


async def test_pass_alerts_once_and_admin_approval_updates_the_container(
    daemon: Wired, images: Any, containers: Any, registries: Any, docker_client: Any
) -> None:
    container, old, new = _outdated_container(images, containers, registries)
    name = container.name

    first = await daemon.core.runner.run([name])
    [alert] = first.alerts
    assert alert.kind is AlertKind.UPDATE_AVAILABLE and alert.container == name
    assert alert.extra["digest"] == new
    assert f"Update available: {name}" in daemon.out.getvalue()

    second = await daemon.core.runner.run([name])
    assert second.alerts == ()
    assert daemon.out.getvalue().count("--- update_available ---") == 1

    refused = await daemon.core.router.dispatch(
        cmd("approve", alert.update_id or "", sender=Sender("telegram", 1, "someone", (), True))
    )
    assert refused.refused

    reply = await daemon.core.router.dispatch(
        cmd("approve", alert.update_id or "", sender=TELEGRAM_ADMIN)
    )
    assert "updated" in reply.text, reply.text
    digests = [d.split("@", 1)[1] for d in docker_client.containers.get(name).image.attrs[
        "RepoDigests"]]
    assert new in digests and old not in digests
    assert "--- update_succeeded ---" in daemon.out.getvalue()
    update = daemon.core.store.get_update(alert.update_id or "")
    assert update is not None and update.state == "applied"

    third = await daemon.core.runner.run([name])
    assert third.alerts == ()


def _run_env(tmp_path: Path, docker_host: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "DISCORD_", "DOCKWARDEN_", "DOCKER_"))
    }
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir(exist_ok=True)
    env.update(
        DOCKER_HOST=docker_host,
        DOCKER_CONFIG=str(config_dir),
        DOCKWARDEN_DB=str(tmp_path / "run.db"),
        DOCKWARDEN_LABEL_ENABLE="true",
        PYTHONUNBUFFERED="1",
    )
    return env


def test_dockwarden_run_stops_cleanly_on_sigterm(tmp_path: Path, docker_host: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=_run_env(tmp_path, docker_host),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "DockWarden running" in line:
                break
        assert any("DockWarden running with console" in line for line in seen), "".join(seen)
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(seen) + rest
    assert "stopped" in rest


def test_dockwarden_run_says_when_no_engine_answers(tmp_path: Path) -> None:
    env = _run_env(tmp_path, f"unix://{tmp_path}/no-such.sock")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 3
    assert "no Docker engine answers" in done.stderr and "DOCKER_HOST" in done.stderr


async def test_daemon_first_pass_reaches_every_adapter_and_stop_stops_them(
    tmp_path: Path, docker_host: str, images: Any, containers: Any, registries: Any
) -> None:
    anon = registries.anonymous
    repo = f"dwdaemon/first-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    images.push(anon, repo, "v1", version=1)
    container = containers.run(f"{anon.host}/{repo}:v1", labels={"dockwarden.enable": "true"})
    new = images.push(anon, repo, "v1", version=2)
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        docker_host=docker_host,
        docker_config=str(config_dir),
        db=str(tmp_path / "state.db"),
        label_enable=True,
    )
    one, two = FakeAdapter("one"), FakeAdapter("two")
    daemon = Daemon(settings, first_pass_delay=0, jitter=0, adapters=[one, two])
    core = await daemon.start()
    try:
        for _ in range(600):
            if core.runner.passes and not core.runner.running:
                break
            await asyncio.sleep(0.05)
    finally:
        await daemon.stop()
    for adapter in (one, two):
        mine = [a for a in adapter.alerts if a.container == container.name]
        assert [(a.kind, a.extra["digest"]) for a in mine] == [(AlertKind.UPDATE_AVAILABLE, new)]
        assert adapter.stopped and adapter.dispatch is not None


async def test_cancelled_start_stops_the_adapters_that_did_start(
    tmp_path: Path, docker_host: str
) -> None:
    class Hanging(FakeAdapter):
        async def start(self, dispatch: Any) -> None:
            await asyncio.Event().wait()  # a chat platform that never answers

    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        docker_host=docker_host,
        docker_config=str(config_dir),
        db=str(tmp_path / "state.db"),
        label_enable=True,
    )
    first, hanging = FakeAdapter("first"), Hanging("hanging")
    daemon = Daemon(settings, first_pass_delay=-1, adapters=[first, hanging])
    starting = asyncio.create_task(daemon.start())
    for _ in range(600):
        if first.dispatch is not None:
            break
        await asyncio.sleep(0.05)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert first.stopped and not hanging.stopped

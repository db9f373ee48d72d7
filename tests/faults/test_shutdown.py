"""Shutdown during an update: the store stays open until the update has finished or is safely
journalled, and the next start leaves the container running with its data and configuration."""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import pytest

import bot.entrypoints.daemon
from bot.chat.messages import Sender
from bot.config.settings import Settings
from bot.entrypoints.daemon import Daemon
from tests.faults.kit import (
    AppImage,
    assert_left_running_intact,
    daemon_env,
    journal_step,
    next_start,
    start_app,
    wait_for_line,
)
from tests.unit.fakes import FakeAdapter, cmd

OPERATOR = Sender("console", 0, "operator", in_alert_place=True)


def _settings(tmp_path: Path, docker_host: str, grace_period: float) -> Settings:
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir(exist_ok=True)
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        docker_host=docker_host, docker_config=str(config_dir),
        db=str(tmp_path / "state.db"), label_enable=True,
        health_timeout=10.0, grace_period=grace_period,
    )


async def test_stopping_the_daemon_mid_update_stops_the_update_before_the_store_closes(
    app_image: AppImage, docker_client: docker.DockerClient, containers: Any,
    docker_host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bot.entrypoints.daemon, "SHUTDOWN_UPDATE_WAIT", 0.5)
    app = start_app(docker_client, containers, app_image)
    # A grace period far longer than the shutdown waits: the update is in its health gate.
    daemon = Daemon(_settings(tmp_path, docker_host, 60.0), first_pass_delay=-1,
                    adapters=[FakeAdapter()])
    core = await daemon.start()
    pull = asyncio.create_task(core.router.dispatch(cmd("pull", app.name, sender=OPERATOR)))
    try:
        for _ in range(600):
            if [e.step for e in core.store.journal_open()] == ["health"]:
                break
            await asyncio.sleep(0.05)
        assert [e.step for e in core.store.journal_open()] == ["health"]

        await daemon.stop()

        assert pull.done()  # nothing of the update runs on against the closed store
    finally:
        pull.cancel()
        await asyncio.gather(pull, return_exceptions=True)
    assert pull.cancelled()
    assert core.store.closed

    after = Daemon(_settings(tmp_path, docker_host, 1.0), first_pass_delay=-1,
                   adapters=[FakeAdapter()])
    await after.start()  # settles the journalled update first
    await after.stop()
    assert assert_left_running_intact(docker_client, app, app_image) == "new"


def test_sigterm_of_dockwarden_run_mid_update_exits_cleanly_and_the_next_start_settles_it(
    app_image: AppImage, docker_client: docker.DockerClient, containers: Any,
    docker_host: str, tmp_path: Path,
) -> None:
    app = start_app(docker_client, containers, app_image)
    env = daemon_env(tmp_path, docker_host, DOCKWARDEN_GRACE_PERIOD="60")
    controller, terminal = pty.openpty()  # the console adapter reads commands from a terminal
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, stdin=terminal,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        seen = wait_for_line(proc.stderr, "DockWarden running", proc)
        os.write(controller, f"/pull {app.name}\n".encode())
        for _ in range(600):
            if journal_step(env["DOCKWARDEN_DB"]) == "health":
                break
            time.sleep(0.05)
        assert journal_step(env["DOCKWARDEN_DB"]) == "health", "".join(seen)
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
        os.close(terminal)
    said = "".join(seen) + rest
    assert proc.returncode == 0, said
    assert "closed database" not in said and "Traceback" not in said, said

    next_start(daemon_env(tmp_path, docker_host), tmp_path)

    assert assert_left_running_intact(docker_client, app, app_image) == "new"

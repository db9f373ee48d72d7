"""An interrupted update whose journal names another host (DockWarden's container recreated
under a new hostname) looks alive until it expires; the running daemon settles it then."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import docker

from bot.chat.messages import Sender
from bot.config.settings import Settings
from bot.entrypoints.daemon import Daemon
from bot.store.db import Store
from bot.update.replace import aside_name
from tests.faults.kit import AppImage, assert_left_running_intact, start_app
from tests.unit.fakes import FakeAdapter, cmd


async def test_a_journal_that_expires_while_the_daemon_runs_is_settled_without_a_restart(
    app_image: AppImage, docker_client: docker.DockerClient, containers: Any,
    docker_host: str, tmp_path: Path,
) -> None:
    app = start_app(docker_client, containers, app_image)
    aside = aside_name(app.name, app.id)
    # Interrupted after the rename by a process on a host that no longer exists.
    docker_client.api.stop(app.id, timeout=1)
    docker_client.api.rename(app.id, aside)
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        docker_host=docker_host, docker_config=str(config_dir),
        db=str(tmp_path / "state.db"), label_enable=True, grace_period=1.0,
    )
    store = Store(settings.db)
    store.journal_begin(app.name, "create", {
        "kind": "update", "name": app.name, "old_id": app.id, "aside": aside,
        "owner": {"host": "dockwarden-before-recreate", "pid": 1, "pid_start": "1"},
        "expires": time.time() + 1.5,
    })
    store.close()
    daemon = Daemon(settings, first_pass_delay=-1, adapters=[FakeAdapter()],
                    reconcile_interval=0.2)
    core = await daemon.start()
    try:
        assert len(core.store.journal_open()) == 1  # not expired at start: left alone
        for _ in range(300):
            if not core.store.journal_open():
                break
            await asyncio.sleep(0.05)
        assert core.store.journal_open() == []
    finally:
        await daemon.stop()
    assert assert_left_running_intact(docker_client, app, app_image) == "old"


async def test_the_periodic_look_leaves_an_update_this_daemon_is_carrying_out_alone(
    app_image: AppImage, docker_client: docker.DockerClient, containers: Any,
    docker_host: str, tmp_path: Path,
) -> None:
    app = start_app(docker_client, containers, app_image)
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        docker_host=docker_host, docker_config=str(config_dir),
        db=str(tmp_path / "state.db"), label_enable=True, grace_period=1.0,
    )
    daemon = Daemon(settings, first_pass_delay=-1, adapters=[FakeAdapter()],
                    reconcile_interval=0.05)
    core = await daemon.start()
    try:
        reply = await core.router.dispatch(
            cmd("pull", app.name, sender=Sender("console", 0, "operator", in_alert_place=True))
        )
        history = core.store.history(app.name)
    finally:
        await daemon.stop()
    assert f"{app.name}: updated" in reply.text, reply.text
    assert not [h for h in history if h.action == "reconcile"]
    assert assert_left_running_intact(docker_client, app, app_image) == "new"

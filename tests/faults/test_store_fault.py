"""A store write failing mid-update (the database locked by another connection right after the
old container was stopped): the old container comes back running with its data, the update is
settled as failed with an alert, and the next /pull is not refused as "in progress"."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest

from bot.chat.messages import AlertKind, Sender
from bot.config.settings import Settings
from bot.domain.model import UpdateOutcome
from bot.engines.docker import DockerEngine
from bot.entrypoints.bootstrap import Core, build_checker, build_core
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from bot.store.db import Store
from bot.update.updater import Updater
from tests.faults.kit import App, AppImage, assert_left_running_intact, start_app
from tests.unit.fakes import FakeAdapter, cmd

OPERATOR = Sender("console", 0, "operator", in_alert_place=True)


class Locker:
    """Another connection that takes the write lock once the update has stopped the old
    container, and lets go once that container runs again (or after a while, regardless)."""

    def __init__(self, path: str, client: docker.DockerClient, app: App) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.client, self.app = client, app
        self.thread: threading.Thread | None = None

    def after_step(self, step: str) -> None:
        if step == "stop" and self.thread is None:
            self.db.execute("BEGIN IMMEDIATE")
            self.thread = threading.Thread(target=self._release, daemon=True)
            self.thread.start()

    def _release(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            state = self.client.api.inspect_container(self.app.id)["State"]
            if state["Running"]:
                break
            time.sleep(0.05)
        self.db.execute("ROLLBACK")

    def close(self) -> None:
        if self.thread is not None:
            self.thread.join()
        self.db.close()


@pytest.fixture
async def wired(
    tmp_path: Path, docker_host: str
) -> AsyncIterator[tuple[Core, Updater, FakeAdapter]]:
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        docker_host=docker_host, docker_config=str(config_dir),
        db=str(tmp_path / "state.db"), health_timeout=10.0, grace_period=1.0,
    )
    store = Store(settings.db, busy_timeout=0.2)
    engine = DockerEngine(docker_host)
    adapter = FakeAdapter()
    async with RegistryClient(credentials=DockerCredentials(str(config_dir))) as registry:
        updater = Updater(engine, registry, store, health_timeout=10.0, grace_period=1.0)
        checker = build_checker(settings, engine, registry)
        yield build_core(settings, store, checker, updater, [adapter], retry_delay=0), \
            updater, adapter
    store.close()
    engine.close()


async def test_a_journal_write_failing_after_the_stop_restores_the_container_and_fails_the_update(
    wired: tuple[Core, Updater, FakeAdapter], app_image: AppImage,
    docker_client: docker.DockerClient, containers: Any,
) -> None:
    core, updater, adapter = wired
    app = start_app(docker_client, containers, app_image)
    update, _ = core.store.add_update(app.name, app_image.ref, app_image.old_digest,
                                      app_image.new_digest, "approve")
    locker = Locker(core.store.path, docker_client, app)
    updater.replacer.after_step = locker.after_step
    try:
        reply = await core.router.dispatch(cmd("approve", update.id, sender=OPERATOR))
    finally:
        locker.close()
        updater.replacer.after_step = None

    assert "locked" in reply.text, reply.text
    assert docker_client.api.inspect_container(app.name)["Id"] == app.id
    assert assert_left_running_intact(docker_client, app, app_image) == "old"
    settled = core.store.get_update(update.id)
    assert settled is not None and settled.state == "failed"
    assert [a.kind for a in adapter.alerts] == [AlertKind.UPDATE_FAILED]

    again = await core.router.dispatch(cmd("pull", app.name, sender=OPERATOR))

    assert "in progress" not in again.text and "updated" in again.text, again.text
    assert assert_left_running_intact(docker_client, app, app_image) == "new"
    assert core.store.journal_open() == []


async def test_a_journal_that_cannot_be_opened_fails_the_update_and_gives_the_tag_back(
    wired: tuple[Core, Updater, FakeAdapter], app_image: AppImage,
    docker_client: docker.DockerClient, containers: Any,
) -> None:
    _, updater, _ = wired
    app = start_app(docker_client, containers, app_image)
    locker = sqlite3.connect(updater.store.path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # locked before the update journals anything
    try:
        result = await updater.update(app.name)
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    assert result.outcome is UpdateOutcome.FAILED, result.message
    assert "locked" in result.message and "nothing was changed" in result.message
    assert docker_client.api.inspect_container(app.name)["Id"] == app.id
    assert docker_client.images.get(app_image.ref).id == app_image.old_id  # tag given back
    assert assert_left_running_intact(docker_client, app, app_image) == "old"

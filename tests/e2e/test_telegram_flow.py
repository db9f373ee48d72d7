"""The whole bot in Telegram: real engine, real registries, real PTB against the Bot API stand-in.

The daemon is wired here the way `bot.entrypoints.bootstrap` wires `dockwarden run` (build_*
builders, build_core, the adapter started with the router's dispatch, PassScheduler with a first
pass at once), so a test can stop and start it again on the same database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.telegram.adapter import TelegramAdapter
from bot.config.settings import Settings
from bot.domain.model import CheckReport
from bot.engines.docker import DockerEngine
from bot.entrypoints.bootstrap import (
    Core,
    build_checker,
    build_core,
    build_engine,
    build_registry,
    build_store,
    build_updater,
)
from bot.entrypoints.scheduling import PassScheduler
from bot.registry.client import RegistryClient
from bot.store.db import Store
from bot.usecases.ports import CheckerPort
from tests.e2e.conftest import TELEGRAM_ADMIN, TELEGRAM_ALERT_CHATS, TELEGRAM_OTHER
from tests.standins.telegram import TelegramStandin, wait_for

pytestmark = pytest.mark.e2e

CHAT = TELEGRAM_ALERT_CHATS[0]
WATCH = {"dockwarden.enable": "true"}
# no network: the containers only sleep, and the shared engine's bridge is not needed
RUN: dict[str, Any] = {"labels": WATCH, "network_mode": "none"}


class OnlyThese:
    """The real checker, held to this test's containers (the shared engine runs others')."""

    def __init__(self, checker: CheckerPort, names: Sequence[str]) -> None:
        self.checker = checker
        self.names = list(names)

    async def check(self, names: Sequence[str] | None = None) -> CheckReport:
        """One real check pass over the named containers (only ours)."""
        return await self.checker.check([n for n in names if n in self.names] if names
                                        else self.names)


class Daemon:
    """`dockwarden run` in this test's loop, startable and stoppable."""

    def __init__(self, settings: Settings, names: Sequence[str], **adapter_options: Any) -> None:
        self.settings = settings
        self.names = names
        self.adapter_options = {"poll_timeout": 2, **adapter_options}
        self.engine: DockerEngine | None = None
        self.store: Store | None = None
        self.registry: RegistryClient | None = None
        self.core: Core | None = None
        self.adapter: TelegramAdapter | None = None
        self.scheduler: PassScheduler | None = None

    async def start(self) -> Daemon:
        """Same order as bootstrap: engine, store, registry, reconcile, core, adapter, scheduler."""
        settings = self.settings
        self.engine = await asyncio.to_thread(build_engine, settings)
        self.store = build_store(settings)
        self.registry = await build_registry(settings).__aenter__()
        updater = build_updater(settings, self.engine, self.registry, self.store)
        await updater.reconcile()
        checker = OnlyThese(build_checker(settings, self.engine, self.registry), self.names)
        self.core = build_core(settings, self.store, checker, updater, retry_delay=0.1)
        self.adapter = TelegramAdapter(settings, **self.adapter_options)
        await self.adapter.start(self.core.router.dispatch)
        self.core.notifier.adapters = [self.adapter]
        self.scheduler = PassScheduler(
            self.core.runner, settings.schedule, first_pass_delay=0, jitter=0
        )
        self.scheduler.start()
        return self

    @property
    def passes(self) -> int:
        """Check passes finished (none is under way)."""
        assert self.core is not None
        return 0 if self.core.runner.running else self.core.runner.passes

    async def stop(self) -> None:
        """Reverse order, as bot.entrypoints.bootstrap's shutdown."""
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.core is not None:
            await self.core.updates.drain(30)
            await self.core.runner.idle(30)
        if self.adapter is not None:
            await self.adapter.stop()
        if self.registry is not None:
            await self.registry.__aexit__(None, None, None)
        if self.store is not None:
            self.store.close()
        if self.engine is not None:
            self.engine.close()
        self.scheduler = self.core = self.adapter = None
        self.registry = self.store = self.engine = None


def _repo(stem: str) -> str:
    return f"dwtg/{stem}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def flow_settings(
    telegram_settings: Settings, docker_host: str, tmp_path: Path
) -> Settings:
    """The Telegram settings plus the engine, an empty Docker config and only labelled
    containers watched."""
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text("{}")
    return telegram_settings.model_copy(update={
        "docker_host": docker_host,
        "docker_config": str(config),
        "db": str(tmp_path / "dockwarden.db"),
        "label_enable": True,
        "grace_period": 1.0,
        "health_timeout": 20.0,
    })


@pytest.fixture
async def daemons() -> Any:
    """Start daemons with `await daemons(settings, *containers)`; all stopped at the end."""
    started: list[Daemon] = []

    async def start(settings: Settings, *watched: Any, **adapter_options: Any) -> Daemon:
        daemon = Daemon(settings, [c.name for c in watched], **adapter_options)
        started.append(daemon)
        return await daemon.start()

    yield start
    for daemon in reversed(started):
        await daemon.stop()


def outdated_container(images: Any, containers: Any, registry: Any, stem: str
                       ) -> tuple[Any, str, str]:
    """A running container whose tag has moved on: (container, old digest, new digest)."""
    repo = _repo(stem)
    old = images.push(registry, repo, "v1", version=1)
    container = containers.run(f"{registry.host}/{repo}:v1", **RUN)
    new = images.push(registry, repo, "v1", version=2)
    return container, old, new


def alerts_titled(standin: TelegramStandin, chat: int, prefix: str) -> list[dict[str, Any]]:
    """The bot's messages in a chat whose first line starts with `prefix`."""
    return [m for m in standin.sent_messages(chat) if str(m["text"]).startswith(prefix)]


def running_digest(docker_client: Any, name: str) -> str:
    """The repo digest of the image a container runs now."""
    container = docker_client.containers.get(name)
    image = docker_client.images.get(container.attrs["Image"])
    return str(image.attrs["RepoDigests"][0].split("@", 1)[1])


async def command(standin: TelegramStandin, user: int, text: str, chat: int = CHAT) -> str:
    """Send a command and return the text of the bot's next message in that chat."""
    before = len(standin.sent_messages(chat))
    standin.push_message(chat, user, text, username=f"user_{user}")
    sent = await wait_for(
        lambda: standin.sent_messages(chat)[before:], f"the answer to {text}", timeout=60
    )
    return str(sent[0]["text"])


async def test_update_found_alerted_once_refused_to_others_and_applied_on_admin_approval(
    flow_settings: Settings, telegram_standin: TelegramStandin, daemons: Any,
    images: Any, containers: Any, registries: Any, docker_client: Any,
) -> None:
    app, old, new = outdated_container(images, containers, registries.anonymous, "app")

    daemon = await daemons(flow_settings, app)
    await wait_for(lambda: daemon.passes >= 1, "the scheduled first pass", timeout=60)

    title = f"Update available: {app.name}"
    for chat in TELEGRAM_ALERT_CHATS:
        [alert] = alerts_titled(telegram_standin, chat, title)
        buttons = [b["text"] for b in alert["reply_markup"]["inline_keyboard"][0]]
        assert buttons == ["Approve", "Ignore", "Snooze 1d"]
    [alert] = alerts_titled(telegram_standin, CHAT, title)
    approve = alert["reply_markup"]["inline_keyboard"][0][0]["callback_data"]

    answer = await command(telegram_standin, TELEGRAM_ADMIN, "/check")
    assert "0 new alerts" in answer
    for chat in TELEGRAM_ALERT_CHATS:
        assert len(alerts_titled(telegram_standin, chat, title)) == 1, "said once, not per pass"

    telegram_standin.press_button(CHAT, TELEGRAM_OTHER, alert["message_id"], approve)
    [refusal] = await wait_for(lambda: telegram_standin.callback_answers, "the refusal")
    assert refusal["show_alert"] is True and "not allowed" in refusal["text"]
    answer = await command(telegram_standin, TELEGRAM_OTHER, f"/pull {app.name}")
    assert "not allowed" in answer
    assert running_digest(docker_client, app.name) == old
    assert telegram_standin.edits == []

    updates = await command(telegram_standin, TELEGRAM_OTHER, "/updates")
    assert app.name in updates
    outside = await command(telegram_standin, TELEGRAM_OTHER, "/updates", chat=TELEGRAM_OTHER)
    assert "not allowed" in outside, "read-only commands are for the alert chats"
    status = await command(telegram_standin, TELEGRAM_OTHER, "/status")
    assert "Pending updates: 1" in status

    telegram_standin.press_button(
        CHAT, TELEGRAM_ADMIN, alert["message_id"], approve, username="ops_anna"
    )
    [edit] = await wait_for(lambda: telegram_standin.edits, "the alert edited", timeout=120)
    assert "@ops_anna pressed Approve:" in edit["plain_text"]
    assert "updated" in edit["plain_text"].rsplit("pressed Approve:", 1)[1]
    edited = telegram_standin.messages[(CHAT, alert["message_id"])]
    assert "reply_markup" not in edited
    assert running_digest(docker_client, app.name) == new

    history = await command(telegram_standin, TELEGRAM_OTHER, f"/history {app.name}")
    assert "refused" in history and "updated" in history
    assert "No pending updates." == await command(telegram_standin, TELEGRAM_ADMIN, "/updates")


async def test_unsupported_challenge_is_one_alert_naming_the_scheme_beside_update_alerts(
    flow_settings: Settings, telegram_standin: TelegramStandin, daemons: Any,
    images: Any, containers: Any, registries: Any, odd_registry: Any, docker_client: Any,
) -> None:
    app, _, _ = outdated_container(images, containers, registries.anonymous, "app")
    repo = _repo("odd")
    images.push(registries.anonymous, repo, "v1", version=1)
    docker_client.images.pull(f"{odd_registry.host}/{repo}", tag="v1")
    odd = containers.run(f"{odd_registry.host}/{repo}:v1", **RUN)
    odd_registry.challenges = ['Negotiate realm="corp"']

    daemon = await daemons(flow_settings, app, odd)
    await wait_for(lambda: daemon.passes >= 1, "the scheduled first pass", timeout=60)
    await command(telegram_standin, TELEGRAM_ADMIN, "/check")

    for chat in TELEGRAM_ALERT_CHATS:
        assert len(alerts_titled(telegram_standin, chat, f"Update available: {app.name}")) == 1
        [problem] = alerts_titled(telegram_standin, chat, "Unsupported auth challenge")
        assert "negotiate" in str(problem["text"]).lower()
        assert odd_registry.host in str(problem["text"]) and odd.name in str(problem["text"])


async def test_alert_telegram_would_not_take_arrives_with_the_next_pass_once_per_chat(
    flow_settings: Settings, telegram_standin: TelegramStandin, daemons: Any,
    images: Any, containers: Any, registries: Any,
) -> None:
    app, _, _ = outdated_container(images, containers, registries.anonymous, "late")
    late_chat = TELEGRAM_ALERT_CHATS[1]
    telegram_standin.fail_next("sendMessage", 10_000, status=502, chat_id=late_chat)
    title = f"Update available: {app.name}"

    daemon = await daemons(flow_settings, app, attempts=2, backoff=0.01)
    await wait_for(lambda: daemon.passes >= 1, "the scheduled first pass", timeout=60)
    assert len(alerts_titled(telegram_standin, CHAT, title)) == 1
    assert alerts_titled(telegram_standin, late_chat, title) == []
    assert "Undelivered alerts waiting for retry: 1" in await command(
        telegram_standin, TELEGRAM_ADMIN, "/status"
    )

    telegram_standin.clear_failures()
    await command(telegram_standin, TELEGRAM_ADMIN, "/check")

    assert len(alerts_titled(telegram_standin, late_chat, title)) == 1
    assert len(alerts_titled(telegram_standin, CHAT, title)) == 1, "not repeated where it was"


async def test_ignore_and_snooze_from_the_chat(
    flow_settings: Settings, telegram_standin: TelegramStandin, daemons: Any,
    images: Any, containers: Any, registries: Any,
) -> None:
    first, _, _ = outdated_container(images, containers, registries.anonymous, "ign")
    second, _, _ = outdated_container(images, containers, registries.anonymous, "snz")
    daemon = await daemons(flow_settings, first, second)
    await wait_for(lambda: daemon.passes >= 1, "the scheduled first pass", timeout=60)

    refused = await command(telegram_standin, TELEGRAM_OTHER, f"/ignore {first.name}")
    assert "not allowed" in refused
    ignored = await command(telegram_standin, TELEGRAM_ADMIN, f"/ignore {first.name}")
    assert ignored.startswith("Ignored update")
    snoozed = await command(telegram_standin, TELEGRAM_ADMIN, f"/snooze {second.name} 2h")
    assert snoozed.startswith(f"Snoozed {second.name} until")

    updates = await command(telegram_standin, TELEGRAM_ADMIN, "/updates")
    assert first.name not in updates
    history = await command(telegram_standin, TELEGRAM_ADMIN, "/history")
    assert f"ignore {first.name}: ignored" in history
    assert f"snooze {second.name}: snoozed" in history


async def test_restart_keeps_pending_updates_approvals_and_what_was_said(
    flow_settings: Settings, telegram_standin: TelegramStandin, daemons: Any,
    images: Any, containers: Any, registries: Any, docker_client: Any,
) -> None:
    approved, _, approved_new = outdated_container(images, containers, registries.anonymous, "a")
    waiting, waiting_old, waiting_new = outdated_container(
        images, containers, registries.anonymous, "w"
    )
    first = await daemons(flow_settings, approved, waiting)
    await wait_for(lambda: first.passes >= 1, "the first daemon's pass", timeout=60)
    answer = await command(telegram_standin, TELEGRAM_ADMIN, f"/approve {approved.name}")
    assert "updated" in answer
    [alert] = alerts_titled(telegram_standin, CHAT, f"Update available: {waiting.name}")
    await first.stop()

    second = await daemons(flow_settings, approved, waiting)
    await wait_for(lambda: second.passes >= 1, "the second daemon's pass", timeout=60)

    assert len(alerts_titled(telegram_standin, CHAT, f"Update available: {waiting.name}")) == 1
    assert running_digest(docker_client, waiting.name) == waiting_old
    assert waiting.name in await command(telegram_standin, TELEGRAM_ADMIN, "/updates")
    history = await command(telegram_standin, TELEGRAM_ADMIN, f"/history {approved.name}")
    assert "approve" in history and f"telegram:{TELEGRAM_ADMIN}" in history

    approve = alert["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    telegram_standin.press_button(CHAT, TELEGRAM_ADMIN, alert["message_id"], approve)
    await wait_for(lambda: telegram_standin.edits, "the pre-restart alert edited", timeout=120)
    assert running_digest(docker_client, waiting.name) == waiting_new
    assert running_digest(docker_client, approved.name) == approved_new


@asynccontextmanager
async def dockwarden_run(
    standin: TelegramStandin, settings: Settings, tmp_path: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`dockwarden run` as a process talking to the stand-in; its log goes to daemon.log."""
    env = dict(os.environ)
    env.update({
        "TELEGRAM_BOT_TOKEN": standin.token,
        "TELEGRAM_CHAT_IDS": ",".join(str(c) for c in TELEGRAM_ALERT_CHATS),
        "TELEGRAM_ADMIN_IDS": str(TELEGRAM_ADMIN),
        "TELEGRAM_API_BASE_URL": standin.url,
        "DOCKER_HOST": str(settings.docker_host),
        "DOCKER_CONFIG": str(settings.docker_config),
        "DOCKWARDEN_DB": str(tmp_path / "daemon.db"),
        "DOCKWARDEN_LABEL_ENABLE": "true",
    })
    with (tmp_path / "daemon.log").open("wb") as log_file:
        daemon = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            cwd=tmp_path, env=env, stdout=log_file, stderr=asyncio.subprocess.STDOUT,
        )
        try:
            yield daemon
        finally:
            if daemon.returncode is None:
                daemon.kill()
                await daemon.wait()


async def test_dockwarden_run_serves_telegram_and_stops_on_sigterm(
    flow_settings: Settings, telegram_standin: TelegramStandin, tmp_path: Path,
) -> None:
    async with dockwarden_run(telegram_standin, flow_settings, tmp_path) as daemon:
        await wait_for(lambda: telegram_standin.commands, "setMyCommands", timeout=60)
        help_text = await command(telegram_standin, TELEGRAM_ADMIN, "/help")
        daemon.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(daemon.wait(), 60)

    output = (tmp_path / "daemon.log").read_text()
    assert status == 0, output
    assert "/status" in help_text and "/approve" in help_text
    assert telegram_standin.token not in output
    assert telegram_standin.calls_of("getUpdates")[-1].params.get("timeout") == 0, (
        "the updater acknowledged what it read before stopping"
    )


async def test_stopping_the_daemon_mid_poll_is_quiet_and_exits_zero(
    flow_settings: Settings, tmp_path: Path,
) -> None:
    # A server still holding the poll the daemon gives up on: the daemon's last, acknowledging
    # getUpdates waits behind it, as it does when Telegram is slow to notice the hang-up.
    standin = TelegramStandin(hold_polls=True)
    await standin.start()
    try:
        async with dockwarden_run(standin, flow_settings, tmp_path) as daemon:
            await wait_for(lambda: standin.polling, "a long poll in flight", timeout=60)
            daemon.send_signal(signal.SIGTERM)
            status = await asyncio.wait_for(daemon.wait(), 60)
    finally:
        await standin.close()

    output = (tmp_path / "daemon.log").read_text()
    assert status == 0, output
    assert "stopped" in output, output
    assert [line for line in output.splitlines() if " ERROR " in line] == [], output
    assert "Traceback" not in output, output

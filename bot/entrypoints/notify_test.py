"""`dockwarden notify --test`: one test alert through every configured channel, and which failed.

Each channel is opened only as far as sending needs (Telegram: getMe, no polling; Discord: a REST
login, no gateway), so the test can run beside a daemon using the same tokens. The console is
the channel when no other is configured, as in `dockwarden run`.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.chat.alert_texts import sample_alert
from bot.chat.messages import Alert, ChatAdapter, Command, Reply
from bot.config.settings import Settings
from bot.errors import DockWardenError

CHANNEL_TIMEOUT = 60.0  # seconds one channel may take to open, send and close


@dataclass(frozen=True)
class ChannelResult:
    """How the test alert fared in one channel."""

    channel: str
    error: str | None  # None: sent

    def render(self) -> str:
        """`ok    telegram: test alert sent`."""
        if self.error is None:
            return f"{'ok':<5} {self.channel}: test alert sent"
        return f"{'FAIL':<5} {self.channel}: {self.error}"


async def _no_commands(command: Command) -> Reply:
    return Reply("This is a test connection; commands are not served.", refused=True)


async def _send_one(adapter: ChatAdapter, alert: Alert) -> None:
    opener = getattr(adapter, "open_for_alerts", None)
    try:
        if opener is not None:
            await opener()
        else:
            await adapter.start(_no_commands)
        await adapter.notify(alert)
    finally:
        await adapter.stop()


async def send_test_alert(settings: Settings, *, console: Any = None) -> list[ChannelResult]:
    """Build every configured channel and send the test alert through each, all at once."""
    from bot.entrypoints.bootstrap import ADAPTERS

    alert = sample_alert(socket.gethostname(), datetime.now(UTC))
    results: list[ChannelResult] = []
    ready: list[ChatAdapter] = []
    for setting, module_name, class_name, _ in ADAPTERS:
        if getattr(settings, setting) is None:
            continue
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            results.append(ChannelResult(setting.upper(), f"adapter unavailable: {exc}"))
            continue
        try:
            adapter: ChatAdapter = cls(settings)
        except DockWardenError as exc:
            results.append(ChannelResult(str(getattr(cls, "name", setting)), str(exc)))
            continue
        ready.append(adapter)
    if not ready and not results:
        from adapters.console import ConsoleAdapter

        ready.append(console if console is not None else ConsoleAdapter(interactive=False))

    async def one(adapter: ChatAdapter) -> ChannelResult:
        try:
            await asyncio.wait_for(_send_one(adapter, alert), CHANNEL_TIMEOUT)
        except DockWardenError as exc:
            return ChannelResult(adapter.name, str(exc))
        except TimeoutError:
            return ChannelResult(adapter.name, f"no answer within {CHANNEL_TIMEOUT:.0f}s")
        except Exception as exc:  # a library's own failure: the type says enough, no secrets
            return ChannelResult(adapter.name, f"{type(exc).__name__}")
        return ChannelResult(adapter.name, None)

    results.extend(await asyncio.gather(*(one(a) for a in ready)))
    return results

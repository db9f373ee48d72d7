"""Alerts raised by a one-shot command (`dockwarden update`): kept for the daemon, or printed.

The command does not connect to any chat platform (nor import its library). When chat is
configured, each alert goes into the SQLite outbox under the name of every configured chat
adapter, and the running daemon delivers it with its next pass, as it does with any alert a
platform did not take at once. With no chat configured, the alert is printed on the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from bot.chat.alert_texts import render_text
from bot.chat.messages import Alert
from bot.config.settings import Settings
from bot.entrypoints.bootstrap import ADAPTERS
from bot.store.db import Store
from bot.usecases.delivery import alert_to_json


def chat_adapters(settings: Settings) -> list[str]:
    """The names of the chat adapters the settings enable."""
    return [spec.name for spec in ADAPTERS if getattr(settings, spec.setting)]


class CommandAlerts:
    """The alert sink of a one-shot command: the outbox for configured chats, else `stream`."""

    def __init__(self, settings: Settings, store: Store, stream: TextIO) -> None:
        self.store = store
        self.stream = stream
        self.adapters = chat_adapters(settings)

    async def send(self, alerts: Iterable[Alert]) -> None:
        """Queue each alert for every configured chat adapter, or print it."""
        for alert in alerts:
            if not self.adapters:
                print(f"--- {alert.kind.value} ---\n{render_text(alert)}", file=self.stream)
                continue
            payload = alert_to_json(alert)
            with self.store.transaction():
                for adapter in self.adapters:
                    self.store.outbox_add(adapter, payload, attempts=0)
            print(f"dockwarden: {alert.kind.value} alert queued for "
                  f"{', '.join(self.adapters)}; the daemon sends it with its next pass",
                  file=self.stream)

"""Alert delivery: every alert to every adapter, retried, and kept in the outbox until it is.

The `Notifier` writes each alert to the store's outbox (as `alert_to_json`) before it sends it
and removes it once an adapter took it, so an alert that a stop, a crash or a platform that is
away interrupts is sent again at the next pass (`flush`), in order, rather than lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.chat.messages import Action, Alert, AlertKind, ChatAdapter, Field
from bot.chat.text_safety import redact
from bot.store.db import Store

log = logging.getLogger(__name__)


def alert_to_json(alert: Alert) -> str:
    """Serialise an alert for the outbox."""
    data: dict[str, Any] = {
        "kind": alert.kind.value,
        "title": alert.title,
        "text": alert.text,
        "fields": [[f.name, f.value] for f in alert.fields],
        "actions": [[a.verb, a.target, a.label] for a in alert.actions],
        "update_id": alert.update_id,
        "container": alert.container,
        "extra": alert.extra,
    }
    return json.dumps(data)


def alert_from_json(payload: str) -> Alert:
    """The alert an outbox row holds."""
    data = json.loads(payload)
    return Alert(
        kind=AlertKind(data["kind"]),
        title=data["title"],
        text=data["text"],
        fields=tuple(Field(name, value) for name, value in data["fields"]),
        actions=tuple(Action(verb, target, label) for verb, target, label in data["actions"]),
        update_id=data["update_id"],
        container=data["container"],
        extra=dict(data["extra"]),
    )


class AlertSink(Protocol):
    """Where the core sends alerts (the Notifier in the daemon)."""

    async def send(self, alerts: Iterable[Alert]) -> None:
        """Deliver alerts to every alert place."""


@dataclass
class Notifier:
    """Fans each alert out to every adapter; retries; keeps what failed in the store's outbox."""

    adapters: Sequence[ChatAdapter]
    store: Store
    attempts: int = 3
    retry_delay: float = 1.0
    secrets: Sequence[str] = ()  # cut out of error text before it is logged or stored
    delivered: int = field(default=0, init=False)
    _sending: set[int] = field(default_factory=set, init=False, repr=False)

    async def send(self, alerts: Iterable[Alert]) -> None:
        """Deliver the alerts in order to every adapter at once; failures wait in the outbox.

        Each alert is written to the outbox before it is sent and removed once delivered, so
        one that a stop or a crash interrupts is sent at the next pass rather than lost.
        """
        batch = list(alerts)
        if not batch or not self.adapters:
            return
        rows: dict[str, list[int]] = {}
        with self.store.transaction():
            for adapter in self.adapters:
                rows[adapter.name] = [
                    self.store.outbox_add(adapter.name, alert_to_json(a), attempts=0)
                    for a in batch
                ]
        self._sending.update(i for ids in rows.values() for i in ids)
        try:
            await asyncio.gather(
                *(self._send_to(a, batch, rows[a.name]) for a in self.adapters)
            )
        finally:
            self._sending.difference_update(i for ids in rows.values() for i in ids)

    async def _send_to(self, adapter: ChatAdapter, alerts: list[Alert], ids: list[int]) -> None:
        delivered: list[int] = []
        error: str | None = None
        try:
            for alert, row in zip(alerts, ids, strict=True):
                if error is None:
                    error = await self._deliver(adapter, alert)
                    if error is None:
                        delivered.append(row)
                        continue
                # Once an adapter is down, the rest of the batch waits in the outbox (in
                # order) instead of each alert waiting out its own retries.
                self.store.outbox_failed(row, error)
                log.error(
                    "alert %r not delivered to %s (%s); kept to retry at the next pass",
                    alert.title, adapter.name, error,
                )
        finally:
            self.store.outbox_done(*delivered)

    async def flush(self) -> int:
        """Retry the outbox; returns how many alerts are still undelivered."""
        by_name = {adapter.name: adapter for adapter in self.adapters}
        down: set[str] = set()
        left = 0
        for item in self.store.outbox():
            if item.id in self._sending:
                continue  # a send() under way owns it
            adapter = by_name.get(item.adapter)
            if adapter is None or item.adapter in down:
                left += 1  # not configured now, or still down: kept, in order, for later
                continue
            error = await self._deliver(adapter, alert_from_json(item.payload))
            if error is None:
                self.store.outbox_done(item.id)
            else:
                self.store.outbox_failed(item.id, error)
                down.add(item.adapter)
                left += 1
        return left

    async def _deliver(self, adapter: ChatAdapter, alert: Alert) -> str | None:
        error = "not attempted"
        for attempt in range(1, self.attempts + 1):
            try:
                await adapter.notify(alert)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any adapter failure: retried, then kept
                error = redact(f"{type(exc).__name__}: {exc}", self.secrets)
                log.warning(
                    "alert delivery to %s failed (attempt %d/%d): %s",
                    adapter.name, attempt, self.attempts, error,
                )
                if attempt < self.attempts:
                    await asyncio.sleep(self.retry_delay * attempt)
                continue
            self.delivered += 1
            return None
        return error

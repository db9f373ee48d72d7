"""Alert delivery: the outbox format, retries per adapter, what waits for the next flush."""

from __future__ import annotations

import asyncio

import pytest

from bot.chat.alert_texts import update_alert
from bot.store.db import Store
from bot.usecases.alerting import Alerter
from bot.usecases.delivery import Notifier, alert_from_json, alert_to_json
from tests.unit.fakes import NEW, OLD, FakeAdapter, outdated, report


def test_alert_round_trips_through_json(store: Store) -> None:
    update, _ = store.add_update("web", "r/web:latest", OLD, NEW, "approve")
    alert = update_alert(update, with_actions=True)
    assert alert_from_json(alert_to_json(alert)) == alert


async def test_notifier_retries_then_delivers_to_every_adapter(store: Store) -> None:
    flaky, steady = FakeAdapter("flaky", failures=2), FakeAdapter("steady")
    notifier = Notifier([flaky, steady], store, attempts=3, retry_delay=0)
    [alert] = Alerter(store).observe(report(outdated("web"))).alerts
    await notifier.send([alert])
    assert flaky.alerts == [alert] and steady.alerts == [alert]
    assert store.outbox() == []


async def test_undelivered_alert_is_kept_and_sent_at_the_next_flush(store: Store) -> None:
    down = FakeAdapter("down", failures=5)
    notifier = Notifier([down], store, attempts=2, retry_delay=0)
    [alert] = Alerter(store).observe(report(outdated("web"))).alerts
    await notifier.send([alert])
    assert down.alerts == [] and len(store.outbox("down")) == 1
    assert await notifier.flush() == 1  # still down
    assert await notifier.flush() == 0
    assert down.alerts == [alert] and store.outbox() == []


async def test_adapter_down_costs_one_round_of_retries_per_batch(store: Store) -> None:
    down, up = FakeAdapter("down", failures=100), FakeAdapter("up")
    notifier = Notifier([down, up], store, attempts=2, retry_delay=0)
    alerts = Alerter(store).observe(report(outdated("a"), outdated("b"), outdated("c"))).alerts
    await notifier.send(alerts)
    assert down.attempts == 2
    assert len(up.alerts) == 3
    assert [alert_from_json(i.payload).container for i in store.outbox("down")] == ["a", "b", "c"]
    assert await notifier.flush() == 3 and down.attempts == 4


async def test_secrets_never_reach_the_outbox(store: Store) -> None:
    token = "123456:SECRET-token"
    down = FakeAdapter("down", failures=10, error=f"POST https://api/bot{token}/sendMessage")
    notifier = Notifier([down], store, attempts=1, retry_delay=0, secrets=[token])
    await notifier.send(Alerter(store).observe(report(outdated("a"))).alerts)
    [row] = store._db.execute("SELECT last_error FROM outbox").fetchall()
    assert token not in row[0] and "***" in row[0]


async def test_alert_interrupted_mid_send_is_sent_at_the_next_flush(store: Store) -> None:
    class Hanging(FakeAdapter):
        async def notify(self, alert: object) -> None:  # type: ignore[override]
            await asyncio.Event().wait()

    hanging = Hanging("chat")
    notifier = Notifier([hanging], store, attempts=1, retry_delay=0)
    [alert] = Alerter(store).observe(report(outdated("web"))).alerts
    sending = asyncio.create_task(notifier.send([alert]))
    await asyncio.sleep(0.01)
    assert await notifier.flush() == 0  # the row belongs to the send under way
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    # after a restart the same adapter name is back, working
    working = FakeAdapter("chat")
    assert await Notifier([working], store, retry_delay=0).flush() == 0
    assert working.alerts == [alert] and store.outbox() == []

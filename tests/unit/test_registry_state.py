"""Shared registry tasks: pings and token fetches that several images await at once."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from bot.errors import RegistryUnreachable
from bot.registry.state import SharedTasks


async def _fail_when(go: asyncio.Event) -> None:
    await go.wait()
    raise RegistryUnreachable("registry.example did not answer", registry="registry.example")


async def test_a_shared_failure_left_without_waiters_is_not_reported_unretrieved() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        go = asyncio.Event()
        task = SharedTasks().start(_fail_when(go))
        go.set()  # every image that wanted it went away (a pass cancelled) before it failed
        for _ in range(3):
            await asyncio.sleep(0)
        assert task.done()
        del task
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert reported == []


async def test_cancel_stops_every_task_still_running_and_waits_for_them() -> None:
    tasks = SharedTasks()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    running = [tasks.start(forever()), tasks.start(forever())]
    await started.wait()
    await tasks.cancel()
    assert all(task.cancelled() for task in running)

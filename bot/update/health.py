"""The health gate: does a freshly started container stay up (and healthy, when it can say)?

A container whose image or configuration has a HEALTHCHECK must report `healthy` before the
timeout; one without must keep running, without a restart, for the whole grace period.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.engines.inspect import ContainerInspect, ContainerState

# The container's inspect view now; None once it is gone.
Inspect = Callable[[], Awaitable[ContainerInspect | None]]

POLL_INTERVAL = 0.2


@dataclass(frozen=True)
class Verdict:
    """Whether the container passed the gate, and a sentence saying why."""

    healthy: bool
    detail: str


def _stopped(state: ContainerState) -> str | None:
    if state.running and not state.restarting:
        return None
    if state.restarting:
        return f"it is restarting (exit code {state.exit_code})"
    return f"it exited with code {state.exit_code}"


async def wait_healthy(
    inspect: Inspect,
    *,
    timeout: float,
    grace_period: float,
    poll_interval: float = POLL_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
) -> Verdict:
    """Watch a started container until it proves healthy or fails; never raises on a verdict."""
    first = await inspect()
    if first is None:
        return _gone()
    restarts = first.restart_count
    started_at = first.state.started_at
    checked = first.has_healthcheck
    deadline = clock() + (timeout if checked else grace_period)
    current = first
    while True:
        state = current.state
        stopped = _stopped(state)
        if stopped:
            return Verdict(False, f"the new container did not stay up: {stopped}")
        if current.restart_count > restarts or state.started_at != started_at:
            return Verdict(False, "the new container restarted during the grace period")
        if checked:
            if state.health == "healthy":
                return Verdict(True, "the new container reports healthy")
            if state.health == "unhealthy":
                return Verdict(False, f"the new container reports unhealthy{_last_log(state)}")
        if clock() >= deadline:
            if checked:
                return Verdict(
                    False, f"the new container was not healthy within {timeout:g} s"
                )
            return Verdict(True, f"the new container kept running for {grace_period:g} s")
        await asyncio.sleep(min(poll_interval, max(0.0, deadline - clock())))
        found = await inspect()
        if found is None:
            return _gone()
        current = found


def _gone() -> Verdict:
    return Verdict(False, "the new container did not stay up: it exited with code gone (removed)")


def _last_log(state: ContainerState) -> str:
    if not state.health_log:
        return ""
    last = state.health_log[-1]
    output = last.output.strip().splitlines()
    tail = output[-1][:200] if output else ""
    return f" (last check exit code {last.exit_code}{': ' + tail if tail else ''})"

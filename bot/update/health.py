"""The health gate: does a freshly started container stay up (and healthy, when it can say)?

A container whose image or configuration has a HEALTHCHECK must report `healthy` before the
timeout; one without must keep running, without a restart, for the whole grace period.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

Inspect = Callable[[], Awaitable[Mapping[str, Any]]]

POLL_INTERVAL = 0.2


@dataclass(frozen=True)
class Verdict:
    """Whether the container passed the gate, and a sentence saying why."""

    healthy: bool
    detail: str


def has_healthcheck(container: Mapping[str, Any]) -> bool:
    """Whether the container runs a HEALTHCHECK (its own or its image's, not disabled)."""
    check = (container.get("Config") or {}).get("Healthcheck") or {}
    test = check.get("Test") or []
    return bool(test) and test[0] != "NONE"


def _stopped(state: Mapping[str, Any]) -> str | None:
    if state.get("Running") and not state.get("Restarting"):
        return None
    if state.get("Restarting"):
        return f"it is restarting (exit code {state.get('ExitCode')})"
    return f"it exited with code {state.get('ExitCode')}"


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
    restarts = int(first.get("RestartCount") or 0)
    started_at = (first.get("State") or {}).get("StartedAt")
    checked = has_healthcheck(first)
    deadline = clock() + (timeout if checked else grace_period)
    current: Mapping[str, Any] = first
    while True:
        state = current.get("State") or {}
        stopped = _stopped(state)
        if stopped:
            return Verdict(False, f"the new container did not stay up: {stopped}")
        if int(current.get("RestartCount") or 0) > restarts or state.get("StartedAt") != started_at:
            return Verdict(False, "the new container restarted during the grace period")
        if checked:
            status = (state.get("Health") or {}).get("Status")
            if status == "healthy":
                return Verdict(True, "the new container reports healthy")
            if status == "unhealthy":
                return Verdict(False, f"the new container reports unhealthy{_last_log(state)}")
        if clock() >= deadline:
            if checked:
                return Verdict(
                    False, f"the new container was not healthy within {timeout:g} s"
                )
            return Verdict(True, f"the new container kept running for {grace_period:g} s")
        await asyncio.sleep(min(poll_interval, max(0.0, deadline - clock())))
        current = await inspect()


def _last_log(state: Mapping[str, Any]) -> str:
    logs = (state.get("Health") or {}).get("Log") or []
    if not logs:
        return ""
    last = logs[-1]
    output = str(last.get("Output") or "").strip().splitlines()
    tail = output[-1][:200] if output else ""
    return f" (last check exit code {last.get('ExitCode')}{': ' + tail if tail else ''})"

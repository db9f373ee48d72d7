"""The health gate, driven by scripted inspect answers and a fake clock."""

from __future__ import annotations

from typing import Any

from bot.engines.inspect import ContainerInspect, parse_container
from bot.update.health import wait_healthy

CHECK = {"Test": ["CMD-SHELL", "true"]}


def running(health: str | None = None, restarts: int = 0, started: str = "t0") -> ContainerInspect:
    state: dict[str, Any] = {"Running": True, "Restarting": False, "StartedAt": started}
    config: dict[str, Any] = {}
    if health is not None:
        state["Health"] = {"Status": health, "Log": [{"ExitCode": 1, "Output": "boom\n"}]}
        config["Healthcheck"] = CHECK
    return parse_container({"Id": "c" * 64, "State": state, "RestartCount": restarts,
                            "Config": config})


def exited(code: int) -> ContainerInspect:
    return parse_container({"Id": "c" * 64, "State": {"Running": False, "ExitCode": code,
                                                      "StartedAt": "t0"}, "Config": {}})


class Script:
    """Answers inspect with the given documents, then repeats the last; time moves per call."""

    def __init__(self, *answers: ContainerInspect | None) -> None:
        self.answers = list(answers)
        self.now = 0.0
        self.calls = 0

    async def inspect(self) -> ContainerInspect | None:
        self.calls += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def clock(self) -> float:
        self.now += 1.0
        return self.now


async def gate(script: Script, timeout: float = 30, grace: float = 5) -> tuple[bool, str]:
    verdict = await wait_healthy(
        script.inspect, timeout=timeout, grace_period=grace, poll_interval=0, clock=script.clock
    )
    return verdict.healthy, verdict.detail


async def test_no_healthcheck_passes_after_running_through_the_grace_period() -> None:
    script = Script(running())
    healthy, detail = await gate(script)
    assert healthy and "kept running" in detail
    assert script.calls >= 2


async def test_no_healthcheck_fails_when_the_container_exits() -> None:
    healthy, detail = await gate(Script(running(), exited(3)))
    assert not healthy and "exited with code 3" in detail


async def test_a_restart_during_the_grace_period_fails() -> None:
    healthy, detail = await gate(Script(running(), running(restarts=1, started="t1")))
    assert not healthy and "restarted" in detail


async def test_healthcheck_waits_through_starting_until_healthy() -> None:
    script = Script(running("starting"), running("starting"), running("healthy"))
    healthy, detail = await gate(script)
    assert healthy and "healthy" in detail
    assert script.calls == 3


async def test_unhealthy_fails_with_the_last_check_output() -> None:
    healthy, detail = await gate(Script(running("starting"), running("unhealthy")))
    assert not healthy and "unhealthy" in detail and "boom" in detail


async def test_healthcheck_that_never_settles_fails_at_the_timeout() -> None:
    healthy, detail = await gate(Script(running("starting")), timeout=4)
    assert not healthy and "within 4 s" in detail


def test_disabled_healthcheck_counts_as_none() -> None:
    def has_healthcheck(config: dict[str, Any]) -> bool:
        return parse_container({"Id": "c" * 64, "Config": config}).has_healthcheck

    assert not has_healthcheck({"Healthcheck": {"Test": ["NONE"]}})
    assert has_healthcheck({"Healthcheck": CHECK})
    assert not has_healthcheck({})

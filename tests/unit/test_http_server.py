"""/healthz and /metrics over real HTTP, with a clock the test moves and fakes of the ports."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config.settings import Settings, split_listen
from bot.domain.model import UpdateOutcome
from bot.errors import ConfigError, SelfUpdateRefused
from bot.http.metrics import MeteredChecker, MeteredUpdater, Metrics, request_outcome
from bot.http.server import HttpServer, Liveness
from tests.unit.fakes import FakeChecker, FakeUpdater, current, failing, outdated, report

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


class Clock:
    """The time the daemon believes it is; tests move it."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Served:
    clock: Clock
    metrics: Metrics
    server: HttpServer
    http: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(f"http://127.0.0.1:{self.server.port}{path}") as response:
            return response.status, await response.text()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    clock = Clock()
    metrics = Metrics(clock=clock, process=False)
    server = HttpServer("127.0.0.1:0", metrics, Liveness(metrics, "*/5 * * * *"))
    await server.start()
    async with aiohttp.ClientSession() as http:
        yield Served(clock, metrics, server, http)
    await server.stop()


def _value(text: str, series: str) -> float:
    """The value of one exact series line (name and labels) in Prometheus text."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    raise AssertionError(f"{series} not in:\n{text}")


async def test_metrics_reflect_a_full_pass(served: Served) -> None:
    checker = MeteredChecker(
        FakeChecker(report(outdated("a"), outdated("b"), current("c"), failing("d"))),
        served.metrics,
    )
    await checker.check()
    status, text = await served.get("/metrics")
    assert status == 200
    assert _value(text, 'dockwarden_containers{host="local",status="update_available"}') == 2
    assert _value(text, 'dockwarden_containers{host="local",status="up_to_date"}') == 1
    assert _value(text, 'dockwarden_containers{host="local",status="error"}') == 1
    assert _value(text, 'dockwarden_containers{host="local",status="skipped"}') == 0
    assert _value(text, 'dockwarden_updates_available{host="local"}') == 2
    assert _value(text, "dockwarden_check_pass_duration_seconds_count") == 1
    assert _value(text, 'dockwarden_check_passes_total{outcome="ok"}') == 1
    assert _value(text, "dockwarden_last_pass_timestamp_seconds") == START.timestamp()


async def test_metrics_count_each_hosts_containers_and_a_host_away_as_none(
    served: Served
) -> None:
    on = [dataclasses.replace(outdated(f"{host}/web"), host=host) for host in ("a", "b")]
    whole = dataclasses.replace(report(*on, dataclasses.replace(current("b/db"), host="b")),
                                hosts=("a", "b"), unreachable={"c": "away"})
    await MeteredChecker(FakeChecker(whole), served.metrics).check()
    _, text = await served.get("/metrics")
    assert _value(text, 'dockwarden_containers{host="a",status="update_available"}') == 1
    assert _value(text, 'dockwarden_containers{host="b",status="up_to_date"}') == 1
    assert _value(text, 'dockwarden_updates_available{host="b"}') == 1
    assert _value(text, 'dockwarden_containers{host="c",status="up_to_date"}') == 0
    assert 'host="local"' not in text


async def test_a_check_of_named_containers_leaves_the_gauges_alone(served: Served) -> None:
    checker = MeteredChecker(FakeChecker(report(outdated("a"))), served.metrics)
    await checker.check(["a"])
    _, text = await served.get("/metrics")
    assert "dockwarden_containers{" not in text
    assert served.metrics.last_pass_at is None


async def test_a_failed_pass_is_counted_and_keeps_the_last_gauges(served: Served) -> None:
    class Broken:
        async def check(self, names: object = None) -> object:
            raise ConfigError("engine gone")

    await MeteredChecker(FakeChecker(report(outdated("a"))), served.metrics).check()
    with pytest.raises(ConfigError):
        await MeteredChecker(Broken(), served.metrics).check()  # type: ignore[arg-type]
    _, text = await served.get("/metrics")
    assert _value(text, 'dockwarden_check_passes_total{outcome="failed"}') == 1
    assert _value(text, 'dockwarden_updates_available{host="local"}') == 1
    assert served.metrics.last_pass_ok is False


async def test_updates_are_counted_by_outcome_and_a_refusal_as_refused(served: Served) -> None:
    await MeteredUpdater(FakeUpdater(), served.metrics).update("a")
    await MeteredUpdater(FakeUpdater(outcome=UpdateOutcome.ROLLED_BACK), served.metrics).update("b")
    refusing = MeteredUpdater(FakeUpdater(raises=SelfUpdateRefused("own container")),
                              served.metrics)
    with pytest.raises(SelfUpdateRefused):
        await refusing.update("dockwarden")
    _, text = await served.get("/metrics")
    assert _value(text, 'dockwarden_updates_total{outcome="updated"}') == 1
    assert _value(text, 'dockwarden_updates_total{outcome="rolled_back"}') == 1
    assert _value(text, 'dockwarden_updates_total{outcome="refused"}') == 1


async def test_healthz_turns_503_when_passes_stop_and_200_when_one_runs(served: Served) -> None:
    checker = MeteredChecker(FakeChecker(report(current("a"))), served.metrics)
    await checker.check()  # at 12:00; the next is due at 12:05, healthy until 12:15
    served.clock.advance(minutes=14)
    status, body = await served.get("/healthz")
    assert status == 200
    assert '"status": "ok"' in body
    served.clock.advance(minutes=2)
    status, body = await served.get("/healthz")
    assert status == 503
    assert '"status": "overdue"' in body
    await checker.check()
    status, _ = await served.get("/healthz")
    assert status == 200


async def test_healthz_before_any_pass_counts_from_the_start(served: Served) -> None:
    assert (await served.get("/healthz"))[0] == 200
    served.clock.advance(minutes=16)
    assert (await served.get("/healthz"))[0] == 503


def test_registry_answers_map_to_few_outcomes() -> None:
    assert [request_outcome(s) for s in (200, 307, 401, 403, 404, 429, 400, 503)] == [
        "ok", "ok", "unauthorized", "denied", "not_found", "rate_limited", "client_error",
        "server_error",
    ]


@given(st.sampled_from(["127.0.0.1", "0.0.0.0", "[::1]", "", "dockwarden"]),
       st.integers(0, 65535))
def test_listen_address_round_trips(host: str, port: int) -> None:
    assert split_listen(f"{host}:{port}") == (host.strip("[]") or "0.0.0.0", port)


@pytest.mark.parametrize("bad", ["8080", "localhost:http", "127.0.0.1:70000", "host:"])
def test_a_bad_listen_address_is_a_config_error(bad: str) -> None:
    from bot.config.settings import load_settings

    with pytest.raises(ConfigError, match="DOCKWARDEN_HTTP_LISTEN|http_listen"):
        load_settings(_env_file=None, DOCKWARDEN_HTTP_LISTEN=bad)


def test_http_is_off_unless_listen_is_set() -> None:
    assert Settings(_env_file=None).http_listen is None  # type: ignore[call-arg]

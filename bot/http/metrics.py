"""What the daemon counts for /metrics (Prometheus text) and /healthz, and where it counts it.

The counting happens in thin wrappers around the core's ports (the checker, the updater) and
the registry client's HTTP transport, so that the checker, updater and registry code stay
unaware of metrics. Every series lives in a registry of its own (never prometheus_client's
process-wide default), so two daemons in one process (the tests) do not mix their numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.process_collector import ProcessCollector

from bot.domain.model import Basis, CheckReport, CheckStatus, UpdateResult
from bot.domain.targets import LOCAL_HOST
from bot.errors import DockWardenError, SelfUpdateHandedOver, SelfUpdateRefused

if TYPE_CHECKING:
    from bot.usecases.ports import CheckerPort, UpdaterPort

Clock = Callable[[], datetime]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PASS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def request_outcome(status: int) -> str:
    """A registry answer's outcome label: few values, so the series stay few."""
    if status < 400:
        return "ok"
    return {401: "unauthorized", 403: "denied", 404: "not_found", 429: "rate_limited"}.get(
        status, "server_error" if status >= 500 else "client_error"
    )


class Metrics:
    """Every series DockWarden exports, and the pass times /healthz judges by."""

    def __init__(self, *, clock: Clock = _utcnow, process: bool = True) -> None:
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        if process:
            ProcessCollector(registry=self.registry)  # RSS, CPU, open fds of the daemon
        r = self.registry
        self.containers = Gauge(
            "dockwarden_containers", "Watched workloads by host and check status at the last pass",
            ["host", "status"], registry=r,
        )
        self.updates_available = Gauge(
            "dockwarden_updates_available", "Workloads with a newer image at the last pass",
            ["host"], registry=r,
        )
        self.pass_duration = Histogram(
            "dockwarden_check_pass_duration_seconds", "Time a full check pass took",
            buckets=_PASS_BUCKETS, registry=r,
        )
        self.passes = Counter(
            "dockwarden_check_passes", "Full check passes by outcome (ok, failed)",
            ["outcome"], registry=r,
        )
        self.last_pass = Gauge(
            "dockwarden_last_pass_timestamp_seconds",
            "When the last full check pass finished (Unix time)", registry=r,
        )
        self.registry_requests = Counter(
            "dockwarden_registry_requests", "Registry HTTP requests by host and outcome",
            ["registry", "outcome"], registry=r,
        )
        self.updates = Counter(
            "dockwarden_updates", "Updates by outcome (updated, up_to_date, rolled_back, "
            "failed, refused)", ["outcome"], registry=r,
        )
        self.last_pass_at: datetime | None = None  # when the last full pass finished
        self.last_pass_ok: bool | None = None
        self.pass_started_at: datetime | None = None  # set while a full pass runs

    def render(self) -> bytes:
        """The Prometheus text exposition of every series."""
        return generate_latest(self.registry)

    def pass_started(self) -> float:
        """Note that a full pass began; returns a monotonic start for pass_finished."""
        self.pass_started_at = self.clock()
        return time.monotonic()

    def pass_finished(self, started: float, report: CheckReport | None) -> None:
        """Record a full pass that ended: with its report, or None when it failed."""
        self.pass_duration.observe(time.monotonic() - started)
        self.pass_started_at = None
        self.last_pass_at = self.clock()
        self.last_pass.set(self.last_pass_at.timestamp())
        self.last_pass_ok = report is not None
        self.passes.labels("ok" if report is not None else "failed").inc()
        if report is not None:
            self.observe_report(report)

    def observe_report(self, report: CheckReport) -> None:
        """Set the per-host gauges from a full pass's results (earlier hosts' series reset)."""
        counts: dict[tuple[str, str], int] = {}
        hosts: set[str] = set(report.hosts) | set(report.unreachable)
        for result in report.results:
            host = result.host
            hosts.add(host)
            key = (host, result.status.value)
            counts[key] = counts.get(key, 0) + 1
        self.containers.clear()
        self.updates_available.clear()
        for host in sorted(hosts or {LOCAL_HOST}):
            for status in CheckStatus:
                self.containers.labels(host, status.value).set(counts.get((host, status.value), 0))
            self.updates_available.labels(host).set(
                counts.get((host, CheckStatus.UPDATE_AVAILABLE.value), 0)
            )

    def registry_request(self, registry: str, outcome: str) -> None:
        """Count one registry request."""
        self.registry_requests.labels(registry, outcome).inc()

    def update_finished(self, outcome: str) -> None:
        """Count one update by its outcome."""
        self.updates.labels(outcome).inc()


class MeteredChecker:
    """The checker port, timing full passes and counting what they found."""

    def __init__(self, checker: CheckerPort, metrics: Metrics) -> None:
        self.checker = checker
        self.metrics = metrics

    async def check(self, names: Sequence[str] | None = None) -> CheckReport:
        """One pass; only a pass over every workload moves the gauges and the pass clock."""
        if names:
            return await self.checker.check(names)
        started = self.metrics.pass_started()
        report: CheckReport | None = None
        try:
            report = await self.checker.check(names)
            return report
        finally:
            self.metrics.pass_finished(started, report)


class MeteredUpdater:
    """The updater port, counting updates by outcome; everything else goes to the updater."""

    def __init__(self, updater: UpdaterPort, metrics: Metrics) -> None:
        self.updater = updater
        self.metrics = metrics

    async def update(
        self,
        name: str,
        *,
        expected_digest: str | None = None,
        actor: str | None = None,
        made_for: Basis | None = None,
    ) -> UpdateResult:
        """Update `name`; the outcome is counted, a refusal or error as `refused`/`failed`."""
        try:
            result = await self.updater.update(
                name, expected_digest=expected_digest, actor=actor, made_for=made_for
            )
        except SelfUpdateHandedOver:
            self.metrics.update_finished("handed_over")  # the bot that comes up reports it
            raise
        except SelfUpdateRefused:
            self.metrics.update_finished("refused")
            raise
        except DockWardenError:
            self.metrics.update_finished("failed")
            raise
        self.metrics.update_finished(result.outcome.value)
        return result

    def __getattr__(self, name: str) -> Any:
        # reconcile, preview and whatever else the core may come to use of the real updater.
        return getattr(self.updater, name)


class CountingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that counts each registry request by host:port and outcome."""

    def __init__(self, inner: httpx.AsyncBaseTransport, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the inner transport; a request that gets no answer is `unreachable`."""
        url = request.url
        where = f"{url.host}:{url.port}" if url.port else url.host
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError:
            self.metrics.registry_request(where, "unreachable")
            raise
        self.metrics.registry_request(where, request_outcome(response.status_code))
        return response

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self.inner.aclose()


def metered(
    checker: CheckerPort, updater: UpdaterPort, metrics: Metrics | None
) -> tuple[CheckerPort, UpdaterPort]:
    """The ports as given when nothing is measured, wrapped in their counters otherwise."""
    if metrics is None:
        return checker, updater
    return MeteredChecker(checker, metrics), MeteredUpdater(updater, metrics)

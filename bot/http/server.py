"""DOCKWARDEN_HTTP_LISTEN: `GET /healthz` (is the daemon alive and passing on time?) and
`GET /metrics` (Prometheus text), served by aiohttp on the daemon's own loop.

Being on the daemon's loop is the point of /healthz: a blocked or dead loop answers nothing, and
a loop that runs but whose passes stopped (a hung pass, a dead scheduler) answers 503.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bot.config.cron import parse_schedule
from bot.config.settings import split_listen
from bot.errors import ConfigError
from bot.http.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

# Slack after a scheduled pass was due: the schedule's jitter (a minute), APScheduler's misfire
# grace (five) and a slow pass fit in it; a pass missed by more means passes stopped.
HEALTH_MARGIN = timedelta(minutes=10)


class Liveness:
    """Judges /healthz: healthy while the next pass after the last one is not overdue."""

    def __init__(
        self,
        metrics: Metrics,
        schedule: str,
        *,
        started_at: datetime | None = None,
        margin: timedelta = HEALTH_MARGIN,
        tz: str = "UTC",
    ) -> None:
        self.metrics = metrics
        self.trigger = parse_schedule(schedule, tz)
        self.started_at = started_at or metrics.clock()
        self.margin = margin

    def due_by(self) -> datetime:
        """When the daemon stops being healthy unless another full pass finishes."""
        since = self.metrics.last_pass_at or self.started_at
        # Strictly after: the pass that just finished was the one due at `since` itself.
        after = since + timedelta(seconds=1)
        scheduled: datetime | None = self.trigger.get_next_fire_time(None, after)
        return (scheduled or since) + self.margin

    def status(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, the small JSON document /healthz answers with)."""
        metrics = self.metrics
        now = metrics.clock()
        due = self.due_by()
        healthy = now <= due
        last = metrics.last_pass_at
        return healthy, {
            "status": "ok" if healthy else "overdue",
            "last_pass": last.isoformat(timespec="seconds") if last else None,
            "last_pass_ok": metrics.last_pass_ok,
            "pass_running": metrics.pass_started_at is not None,
            "due_by": due.isoformat(timespec="seconds"),
        }


class HttpServer:
    """The aiohttp site serving /healthz and /metrics; start() and stop() on the daemon's loop."""

    def __init__(self, listen: str, metrics: Metrics, liveness: Liveness) -> None:
        self.host, self.port = split_listen(listen)
        self.metrics = metrics
        self.liveness = liveness
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen; with port 0 the port the system chose is in `self.port` afterwards."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                f"DOCKWARDEN_HTTP_LISTEN: cannot listen on {self.host}:{self.port}: "
                f"{exc.strerror or exc}"
            ) from None
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break
        log.info("HTTP: /healthz and /metrics on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        healthy, body = self.liveness.status()
        return web.json_response(body, status=200 if healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def start_http(
    listen: str, schedule: str, metrics: Metrics, *, tz: str = "UTC"
) -> HttpServer:
    """The HTTP server for the daemon, listening (raises ConfigError when it cannot)."""
    server = HttpServer(listen, metrics, Liveness(metrics, schedule, tz=tz))
    await server.start()
    return server

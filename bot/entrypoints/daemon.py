"""`dockwarden run`: the daemon's life — start order, signals, and shutdown in reverse order.

Start: engine, store, registry, the look for interrupted updates, the core (bot/entrypoints/
bootstrap.py builds each part), the chat adapters, the scheduler, the HTTP endpoint. A SIGTERM or
SIGINT, even during a slow start, stops it: every step is bounded, so stopping takes seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from bot.chat.messages import ChatAdapter
from bot.config.settings import Settings
from bot.entrypoints.bootstrap import (
    Core,
    build_adapters,
    build_checker,
    build_core,
    build_engines,
    build_metrics,
    build_registry,
    build_scheduler,
    build_self_update_report,
    build_store,
    build_updaters,
    engine_labels,
    hosts_insecure_registries,
)
from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.entrypoints.scheduling import PassScheduler
    from bot.http.metrics import Metrics
    from bot.http.server import HttpServer
    from bot.update.hosts import HostRollbacks, HostUpdaters
    from bot.usecases.update_service import UpdateService

log = logging.getLogger(__name__)

SHUTDOWN_UPDATE_WAIT = 5.0  # seconds an update in flight may take to finish at shutdown
SHUTDOWN_STEP_WAIT = 3.0  # seconds each adapter (and a pass under way) gets to stop
# Seconds between looks for interrupted updates nobody carries out any more (e.g. a journal of
# this same daemon under its previous hostname, which looks alive until it expires).
RECONCILE_INTERVAL = 60.0



def run_daemon(
    settings: Settings, *, first_pass_delay: float = 10.0, jitter: int = 60
) -> int:
    """`dockwarden run`: one asyncio loop until SIGTERM/SIGINT; returns the exit status."""
    from bot.config.cron import parse_schedule
    from bot.errors import EngineUnavailable

    # A bad schedule is a ConfigError before anything starts.
    parse_schedule(settings.schedule, settings.tz)
    try:
        return asyncio.run(_daemon(settings, first_pass_delay=first_pass_delay, jitter=jitter))
    except EngineUnavailable as exc:
        print(f"dockwarden: {exc}", file=sys.stderr, flush=True)
        return 3


async def _daemon(settings: Settings, *, first_pass_delay: float, jitter: int) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(settings, first_pass_delay=first_pass_delay, jitter=jitter)
    starting = asyncio.create_task(daemon.start())
    stopping = asyncio.create_task(stop.wait())
    # A signal during a slow start (a chat platform that does not answer) stops it too.
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    try:
        if starting.done():
            starting.result()  # raises what made the start fail (EngineUnavailable, ...)
            await stopping
        else:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        log.info("stopping")
    finally:
        stopping.cancel()
        await daemon.stop()
    log.info("stopped")
    return 0


class Daemon:
    """`dockwarden run` as an object: start() builds and starts everything, stop() undoes it.

    `adapters`, when given, replaces the adapters the settings would build (tests pass their
    own); otherwise every adapter whose token is set, or the console.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        first_pass_delay: float = 10.0,
        jitter: int = 60,
        adapters: Sequence[ChatAdapter] | None = None,
        reconcile_interval: float = RECONCILE_INTERVAL,
    ) -> None:
        self.settings = settings
        self.first_pass_delay = first_pass_delay
        self.jitter = jitter
        self.reconcile_interval = reconcile_interval
        self._reconciling: asyncio.Task[None] | None = None
        self._given = adapters
        self.core: Core | None = None
        self.adapters: list[ChatAdapter] = []
        self.scheduler: PassScheduler | None = None
        self.metrics: Metrics | None = None  # with DOCKWARDEN_HTTP_LISTEN only
        self.http: HttpServer | None = None
        self._stack = AsyncExitStack()

    async def start(self) -> Core:
        """Engine, store, registry, reconcile, core, adapters, scheduler — in that order."""
        try:
            return await self._start()
        except BaseException:
            await self.stop()  # undo what did start, in reverse
            raise

    async def _start(self) -> Core:
        settings, stack = self.settings, self._stack
        engines = await asyncio.to_thread(build_engines, settings)
        # Closed in reverse: registry, then store, then engines.
        for each in engines.values():
            stack.callback(each.close)
        store = build_store(settings)
        stack.callback(store.close)
        self.metrics = build_metrics(settings)
        insecure = await hosts_insecure_registries(engines)
        registry = await stack.enter_async_context(
            build_registry(settings, self.metrics, engine_insecure=insecure)
        )
        updater = build_updaters(settings, engines, registry, store)
        reconciled = await updater.reconcile()
        if reconciled:
            log.warning("finished or undid interrupted updates of: %s", ", ".join(reconciled))
        for update in store.reopen_interrupted():
            log.warning("update %s of %s was interrupted; it is pending again",
                        update.id, update.container)
        checker = build_checker(settings, engines, registry, store)
        label = await asyncio.to_thread(engine_labels, engines, settings)
        from bot.http.metrics import metered
        from bot.update.hosts import HostRollbacks

        rollbacks = HostRollbacks(updater)
        core = self.core = build_core(
            settings, store, *metered(checker, updater, self.metrics), engine_label=label,
            rollbacks=rollbacks, resolve=updater.resolve, canary_health=updater,
        )
        wanted = list(self._given) if self._given is not None else build_adapters(settings, core)
        await _start_adapters(wanted, core, self.adapters)
        core.notifier.adapters = self.adapters
        # After a self-update (bot/update/self_update.py): the helper's outcome, said in chat.
        report = build_self_update_report(settings, store, core.notifier)
        report.start()
        stack.push_async_callback(report.stop)
        self.scheduler = build_scheduler(
            settings, core.runner, first_pass_delay=self.first_pass_delay, jitter=self.jitter
        )
        self.scheduler.start()
        self._reconciling = asyncio.create_task(
            _keep_reconciling(updater, core.updates, self.reconcile_interval, rollbacks)
        )
        if settings.http_listen and self.metrics is not None:
            from bot.http.server import start_http

            self.http = await start_http(
                settings.http_listen, settings.schedule, self.metrics, tz=settings.tz
            )
            stack.push_async_callback(self.http.stop)
        log.info("DockWarden running with %s", ", ".join(a.name for a in self.adapters))
        return core

    async def stop(self) -> None:
        """Stop in reverse order of start; each step bounded, so it takes seconds at most."""
        try:
            if self._reconciling is not None:
                self._reconciling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reconciling
                self._reconciling = None
            await _shutdown(self.scheduler, self.core, self.adapters)
        finally:
            self.scheduler = None
            self.adapters = []
            await self._stack.aclose()


async def _start_adapters(
    adapters: list[ChatAdapter], core: Core, started: list[ChatAdapter]
) -> None:
    """Start each adapter, appending to `started` as they come up (so a cancelled start can
    still stop the ones that did). A ConfigError (a refused token) stops the start; a platform
    that cannot be reached is retried in the background (bot.chat.reconnect) while alerts for it
    wait in the outbox, and the console stands in until one connects."""
    from bot.chat.reconnect import Reconnecting, reason

    connected = 0
    for adapter in adapters:
        try:
            await adapter.start(core.router.dispatch)
        except ConfigError:
            raise
        except Exception as exc:
            log.warning("the %s adapter cannot connect (%s); retrying in the background",
                        adapter.name, reason(exc))
            retrying = Reconnecting(adapter, on_connect=core.notifier.flush)
            await retrying.start(core.router.dispatch)
            started.append(retrying)
            continue
        started.append(adapter)
        connected += 1
    if not connected:
        from adapters.console import ConsoleAdapter

        console = ConsoleAdapter()
        await console.start(core.router.dispatch)
        log.warning("no chat adapter connected; alerts go to the console%s",
                    " too, until one does" if started else "")
        started.append(console)


async def _shutdown(
    scheduler: PassScheduler | None, core: Core | None, adapters: list[ChatAdapter]
) -> None:
    """Stop in reverse order of start, each step bounded so the whole stays within seconds."""
    if scheduler is not None:
        scheduler.stop()
    if core is not None:
        # The store closes after this: an update still running is stopped at a journalled
        # step (each is recorded before it is taken) rather than left writing to a closed file.
        if not await core.updates.stop(SHUTDOWN_UPDATE_WAIT):
            log.warning("an update was still running; it was stopped where its journal lets "
                        "the next start finish or undo it")
        if not await core.runner.idle(SHUTDOWN_STEP_WAIT):
            core.runner.cancel()
            log.warning("a check pass was under way; it was cancelled")
    for adapter in reversed(adapters):
        try:
            await asyncio.wait_for(adapter.stop(), SHUTDOWN_STEP_WAIT)
        except Exception:
            log.exception("the %s adapter did not stop cleanly", adapter.name)
    if core is not None:
        await core.updates.stop(0)  # one a command started meanwhile, before the store closes


async def _keep_reconciling(
    updater: HostUpdaters,
    updates: UpdateService,
    interval: float,
    rollbacks: HostRollbacks | None = None,
) -> None:
    """Settle interrupted updates while the daemon runs, not only at its start; let previous
    images go once DOCKWARDEN_ROLLBACK_KEEP has passed."""
    while True:
        await asyncio.sleep(interval)
        try:
            settled = await updater.reconcile()
            updates.settle_leftovers()
            if rollbacks is not None:
                await rollbacks.expire()
        except Exception:  # an engine or a store that is away now: the loop must go on
            log.exception("could not look for interrupted updates; trying again later")
            continue
        if settled:
            log.warning("finished or undid interrupted updates of: %s", ", ".join(settled))

"""The one place that builds and wires DockWarden's parts.

Nothing connects, reads the environment or starts a task at import time: the CLI and the daemon
(bot/entrypoints/daemon.py, which starts and stops what is built here) call these builders with
validated Settings; `build_core` is the one wiring of the core the daemon and the tests share.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from bot.config.settings import Settings
from bot.errors import DockWardenError

if TYPE_CHECKING:
    from bot.chat.messages import ChatAdapter
    from bot.chat.router import CommandRouter
    from bot.check.checker import Checker
    from bot.domain.policy import AutoWindow
    from bot.domain.targets import HostScope
    from bot.engines.docker import DockerEngine
    from bot.entrypoints.scheduling import PassScheduler
    from bot.http.metrics import Metrics
    from bot.registry.client import RegistryClient
    from bot.registry.credentials import DockerCredentials
    from bot.registry.mirrors import MirroredDigests
    from bot.store.db import Store
    from bot.update.hosts import HostRollbacks, HostUpdaters
    from bot.update.self_update import SelfUpdateReport
    from bot.update.updater import Updater
    from bot.usecases.canary import CanaryHealth
    from bot.usecases.delivery import Notifier
    from bot.usecases.passes import PassRunner
    from bot.usecases.ports import CheckerPort, Resolve, UpdaterPort
    from bot.usecases.update_service import UpdateService

log = logging.getLogger(__name__)


def build_engine(settings: Settings) -> DockerEngine:
    """Connect to the Docker engine on DOCKER_HOST (raises EngineUnavailable)."""
    from bot.engines.docker import DockerEngine

    return DockerEngine(settings.docker_host)


def build_engines(settings: Settings) -> dict[str, DockerEngine]:
    """Every watched host's engine by name (DOCKWARDEN_HOSTS; unset: `local` on DOCKER_HOST).

    One host must answer now (EngineUnavailable otherwise, as ever); of several, a host that
    does not answer yet is connected at a later use and alerted about by the passes meanwhile.
    """
    from bot.engines.hosts import connect

    hosts = settings.hosts
    if len(hosts) == 1:
        return {hosts[0].name: connect(hosts[0])}
    return {host.name: connect(host, lazy=True) for host in hosts}


def first_engine(engines: DockerEngine | Mapping[str, DockerEngine]) -> DockerEngine:
    """The engine whose settings (registry mirrors, platform) stand for all hosts'."""
    return next(iter(engines.values())) if isinstance(engines, Mapping) else engines


def build_credentials(settings: Settings) -> DockerCredentials:
    """Registry credentials where Docker keeps them."""
    from bot.registry.credentials import DockerCredentials

    return DockerCredentials(settings.docker_config)


def engine_insecure_registries(engine: DockerEngine) -> tuple[str, ...]:
    """The registries and CIDRs the engine treats as insecure (`docker info`), and its http://
    registry mirrors; none when the engine will not say (one blocking request: async callers
    use a thread)."""
    from bot.registry.mirrors import engine_mirrors, plain_http_hosts
    from bot.registry.tls import engine_insecure_registries as from_info

    try:
        info = engine.info()
        return (*from_info(info), *plain_http_hosts(engine_mirrors(info)))
    except DockWardenError as exc:
        log.warning("cannot read the engine's insecure registries: %s", exc)
        return ()


async def hosts_insecure_registries(engines: Mapping[str, DockerEngine]) -> tuple[str, ...]:
    """Every host's insecure registries and plain-HTTP mirrors (hosts that answer now), each
    host asked in a thread of its own."""
    import asyncio

    found = await asyncio.gather(*(
        asyncio.to_thread(engine_insecure_registries, engine) for engine in engines.values()
    ))
    return tuple(dict.fromkeys(registry for each in found for registry in each))


def build_registry(
    settings: Settings, metrics: Metrics | None = None, *, engine_insecure: Sequence[str] = ()
) -> RegistryClient:
    """The registry client (an async context manager); its requests counted into `metrics`.

    Insecure registries are the engine's (`engine_insecure_registries`) and the setting's;
    a registry's own CA and client certificate come from DOCKWARDEN_CERTS_DIR, as for Docker.
    """
    from bot.registry.client import RegistryClient
    from bot.registry.mirrors import parse_mirror, plain_http_hosts
    from bot.registry.tls import RegistryTls

    # DOCKWARDEN_REGISTRY_MIRRORS given as http:// are spoken to over plain HTTP, as Docker does.
    http_mirrors = plain_http_hosts(parse_mirror(url) for url in settings.registry_mirrors or ())
    transport = None
    if metrics is not None:
        from bot.http.metrics import CountingTransport
        from bot.registry.transport import AiohttpTransport

        transport = CountingTransport(AiohttpTransport(), metrics)
    return RegistryClient(
        credentials=build_credentials(settings),
        timeout=settings.registry_timeout,
        pass_timeout=settings.registry_pass_timeout,
        max_per_registry=settings.registry_concurrency,
        transport=transport,
        tls=RegistryTls(
            settings.certs_dir,
            insecure=(*settings.insecure_registries, *http_mirrors),
            engine_insecure=engine_insecure,
        ),
    )


def through_mirrors(
    settings: Settings, engine: DockerEngine, registry: RegistryClient
) -> MirroredDigests:
    """Docker Hub images' digests, tags and configs asked of the registry mirrors first, as the
    engine pulls (DOCKWARDEN_REGISTRY_MIRRORS, else the engine's, read on first use)."""
    from bot.registry.mirrors import MirroredDigests, chosen_mirrors

    return MirroredDigests(
        registry, lambda: chosen_mirrors(settings.registry_mirrors, engine.info)
    )


def build_checker(
    settings: Settings,
    engines: DockerEngine | Mapping[str, DockerEngine],
    registry: RegistryClient,
    store: Store | None = None,
) -> Checker:
    """The check pass over every host's workloads (what updates bring kept in `store`).

    Registry mirrors and the platform are the first host's: each image is asked for once per
    pass, whichever hosts run it.
    """
    from bot.check.checker import Checker
    from bot.check.image_info import (
        Describer,
        MemoryCache,
        StoreCache,
        engine_platform,
        local_inspect,
    )
    from bot.domain.versions import LEVELS

    engine = first_engine(engines)
    by_host = dict(engines) if isinstance(engines, Mapping) else {settings.hosts[0].name: engine}
    # Digests, tag listings and image configs alike go through the registry mirrors.
    mirrored = through_mirrors(settings, engine, registry)

    def local(reference: str) -> Mapping[str, Any] | None:
        """The image as the first host that has it (and answers) describes it."""
        for host_engine in by_host.values():
            try:
                found = local_inspect(host_engine, reference)
            except DockWardenError:
                continue
            if found is not None:
                return found
        return None

    describer = Describer(
        mirrored,
        StoreCache(store) if store is not None else MemoryCache(),
        platform=lambda: engine_platform(engine),
        local=local,
    )

    return Checker(
        by_host,
        mirrored,
        label_enable=settings.label_enable,
        default_policy=settings.default_policy,
        semver=LEVELS[settings.semver] if settings.semver else None,
        min_age=settings.min_age,
        describer=describer,
        include_stopped=settings.include_stopped,
    )


def build_store(settings: Settings) -> Store:
    """The SQLite store at DOCKWARDEN_DB."""
    from bot.store.db import Store

    return Store(settings.db)


def build_updater(
    settings: Settings,
    engine: DockerEngine,
    registry: RegistryClient,
    store: Store,
    *,
    after_step: Callable[[str], None] | None = None,
    scope: HostScope | None = None,
) -> Updater:
    """The updater: pull, recreate, health-gate, roll back (`after_step` hears each step)."""
    from bot.domain.targets import HostScope
    from bot.update.updater import Updater

    return Updater(
        engine,
        through_mirrors(settings, engine, registry),
        store,
        health_timeout=settings.health_timeout,
        grace_period=settings.grace_period,
        credentials=build_credentials(settings),
        remove_old_images=settings.remove_old_images,
        include_stopped=settings.include_stopped,
        after_step=after_step,
        rollback_keep=settings.rollback_keep,
        scope=scope or HostScope(settings.hosts[0].name),
    )


def build_updaters(
    settings: Settings,
    engines: Mapping[str, DockerEngine],
    registry: RegistryClient,
    store: Store,
    *,
    after_step: Callable[[str], None] | None = None,
) -> HostUpdaters:
    """One updater per host, each on its own engine and keys, as one (bot/update/hosts.py)."""
    from bot.domain.targets import HostScope
    from bot.update.hosts import HostUpdaters

    several = len(engines) > 1
    return HostUpdaters({
        host: build_updater(settings, engine, registry, store, after_step=after_step,
                            scope=HostScope(host, several))
        for host, engine in engines.items()
    })


class AdapterSpec(NamedTuple):
    """A chat adapter: the setting that enables it, where its class is, and its name."""

    setting: str
    module: str
    cls: str
    name: str  # the adapter's own `name`, which its outbox rows carry


ADAPTERS: tuple[AdapterSpec, ...] = (
    AdapterSpec("telegram_bot_token", "adapters.telegram.adapter", "TelegramAdapter", "telegram"),
    AdapterSpec("discord_bot_token", "adapters.discord.adapter", "DiscordAdapter", "discord"),
    AdapterSpec("discord_webhook_url", "adapters.discord.webhook", "DiscordWebhookAdapter",
                "discord-webhook"),
    AdapterSpec("notify_urls", "adapters.apprise_channel", "AppriseAdapter", "apprise"),
)


@dataclass
class Core:
    """The platform-neutral bot: store, alert fan-out, update path, passes and commands."""

    store: Store
    notifier: Notifier
    updates: UpdateService
    runner: PassRunner
    router: CommandRouter


def auto_window(settings: Settings) -> AutoWindow | None:
    """DOCKWARDEN_AUTO_WINDOW in DOCKWARDEN_TZ, when set."""
    if settings.auto_window is None:
        return None
    from bot.config.cron import zone
    from bot.domain.policy import AutoWindow

    return AutoWindow(settings.auto_window, zone(settings.tz))


def build_core(
    settings: Settings,
    store: Store,
    checker: CheckerPort,
    updater: UpdaterPort,
    adapters: Sequence[ChatAdapter] = (),
    *,
    engine_label: str = "Docker engine",
    retry_delay: float = 1.0,
    rollbacks: HostRollbacks | None = None,
    resolve: Resolve | None = None,
    canary_health: CanaryHealth | None = None,
) -> Core:
    """Wire the core around its ports (the daemon and the tests use this same wiring)."""
    from bot.chat.access import Authorizer
    from bot.chat.router import CommandRouter
    from bot.usecases.delivery import Notifier
    from bot.usecases.passes import PassRunner
    from bot.usecases.update_service import UpdateService

    secrets = [
        secret.get_secret_value()
        for secret in (
            settings.telegram_bot_token, settings.discord_bot_token, settings.discord_webhook_url,
            settings.notify_urls,
        )
        if secret is not None
    ]
    notifier = Notifier(list(adapters), store, retry_delay=retry_delay, secrets=secrets)
    canary = None
    if settings.canary_hosts and canary_health is not None:
        from bot.usecases.canary import CanaryGate

        canary = CanaryGate(store, settings.canary_hosts, settings.canary_soak, canary_health)
    updates = UpdateService(store, updater, notifier, canary=canary)
    runner = PassRunner(
        checker, store, notifier, updates, history_retention=settings.history_retention,
        auto_window=auto_window(settings),
    )
    updates.recheck = runner.run  # a stale approval is followed by a fresh check
    router = CommandRouter(
        store,
        Authorizer.from_settings(settings),
        runner.join_or_run,  # /check joins a pass under way instead of queueing another
        updates,
        engine_label=engine_label,
        schedule=settings.schedule,
        pass_running=lambda: runner.running,
        rollbacks=rollbacks,
        resolve=resolve,
    )
    return Core(store=store, notifier=notifier, updates=updates, runner=runner, router=router)


def engine_label(engine: DockerEngine, settings: Settings) -> str:
    """`Docker 28.2.2 (API 1.50) at unix:///var/run/docker.sock` for /status."""
    from bot.engines.hosts import DEFAULT_SOCKET

    where = engine.where
    if where == DEFAULT_SOCKET and settings.docker_host is None:
        where = "the local Docker socket"
    try:
        version = engine.version().get("Version", "?")
    except DockWardenError:
        return f"Docker at {where}"
    return f"Docker {version} (API {engine.api_version}) at {where}"


def engine_labels(engines: Mapping[str, DockerEngine], settings: Settings) -> str:
    """/status's engine line: one engine's label, or each host's on a line of its own."""
    if len(engines) == 1:
        return engine_label(next(iter(engines.values())), settings)
    lines = [f"{len(engines)} hosts"]
    for host, engine in engines.items():
        lines.append(f"  {host}: {engine_label(engine, settings)}")
    return "\n".join(lines)


def build_metrics(settings: Settings) -> Metrics | None:
    """What /metrics counts, with DOCKWARDEN_HTTP_LISTEN only."""
    if not settings.http_listen:
        return None
    from bot.http.metrics import Metrics

    return Metrics()


def build_scheduler(
    settings: Settings, runner: PassRunner, *, first_pass_delay: float, jitter: int
) -> PassScheduler:
    """The pass runner on DOCKWARDEN_SCHEDULE in DOCKWARDEN_TZ (started by the daemon)."""
    from bot.entrypoints.scheduling import PassScheduler

    return PassScheduler(
        runner, settings.schedule, first_pass_delay=first_pass_delay, jitter=jitter,
        tz=settings.tz,
    )


def build_self_update_report(
    settings: Settings, store: Store, notifier: Notifier
) -> SelfUpdateReport:
    """What says in chat how a self-update handed to a helper container ended."""
    from bot.update.self_update import SelfUpdateReport

    # The helper's whole update (pull, health gate, grace period) and a margin to start it.
    return SelfUpdateReport(
        store, notifier, wait=settings.health_timeout + settings.grace_period + 120
    )


def build_adapters(settings: Settings, core: Core) -> list[ChatAdapter]:
    """Every chat adapter whose setting is present (imported only then); console otherwise."""
    adapters: list[ChatAdapter] = []
    wanted = [spec for spec in ADAPTERS if getattr(settings, spec.setting) is not None]
    for setting, module_name, class_name, _ in wanted:
        try:
            module = importlib.import_module(module_name)
            cls = getattr(module, class_name)
        except (ImportError, AttributeError) as exc:
            log.error("%s is set but the %s adapter is unavailable: %s",
                      setting.upper(), class_name, exc)
            continue
        options: dict[str, Any] = {}
        if class_name == "DiscordAdapter":
            options["completions"] = core.router.completions
        # A ConfigError (a malformed webhook URL, ...) stops `run`: no silent console fallback.
        adapters.append(cls(settings, **options))
    if not adapters:
        from adapters.console import ConsoleAdapter

        if wanted:
            log.warning("no chat adapter could be built; alerts go to the console")
        adapters.append(ConsoleAdapter())
    return adapters

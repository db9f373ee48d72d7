"""The one place that builds and wires DockWarden's parts.

Nothing connects, reads the environment or starts a task at import time: the CLI calls these
builders with validated Settings, and `run_daemon` owns the single asyncio loop of `dockwarden run`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.config import Settings

if TYPE_CHECKING:
    from bot.checker import Checker
    from bot.engines.docker import DockerEngine
    from bot.registry.client import RegistryClient
    from bot.registry.credentials import DockerCredentials
    from bot.store import Store
    from bot.updater import Updater


def build_engine(settings: Settings) -> DockerEngine:
    """Connect to the Docker engine on DOCKER_HOST (raises EngineUnavailable)."""
    from bot.engines.docker import DockerEngine

    return DockerEngine(settings.docker_host)


def build_credentials(settings: Settings) -> DockerCredentials:
    """Registry credentials where Docker keeps them."""
    from bot.registry.credentials import DockerCredentials

    return DockerCredentials(settings.docker_config)


def build_registry(settings: Settings) -> RegistryClient:
    """The registry client (an async context manager)."""
    from bot.registry.client import RegistryClient

    return RegistryClient(
        credentials=build_credentials(settings),
        insecure_registries=settings.insecure_registries,
        timeout=settings.registry_timeout,
    )


def build_checker(settings: Settings, engine: DockerEngine, registry: RegistryClient) -> Checker:
    """The check pass over the engine's workloads."""
    from bot.checker import Checker

    return Checker(
        engine,
        registry,
        label_enable=settings.label_enable,
        default_policy=settings.default_policy,
    )


def build_store(settings: Settings) -> Store:
    """The SQLite store at DOCKWARDEN_DB."""
    from bot.store import Store

    return Store(settings.db)


def build_updater(
    settings: Settings, engine: DockerEngine, registry: RegistryClient, store: Store
) -> Updater:
    """The updater: pull, recreate, health-gate, roll back."""
    from bot.updater import Updater

    return Updater(
        engine,
        registry,
        store,
        health_timeout=settings.health_timeout,
        grace_period=settings.grace_period,
    )

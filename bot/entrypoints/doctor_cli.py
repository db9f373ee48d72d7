"""`dockwarden doctor`: what the checks of bot/doctor find, gathered for the command line.

Docker access first; when the engine answers, each watched image's registry with the credentials
found; then the database and the configured chats. The command prints each finding; its exit
status is the CLI's (bot/entrypoints/cli.py).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bot.config.settings import Settings
from bot.doctor.chat import platform_findings
from bot.doctor.checks import (
    Finding,
    chat_findings,
    database_finding,
    engine_finding,
    mirrors_finding,
    registry_findings,
    watched_refs,
)
from bot.entrypoints.bootstrap import (
    build_checker,
    build_credentials,
    build_engines,
    build_registry,
    first_engine,
    hosts_insecure_registries,
    through_mirrors,
)
from bot.errors import DockWardenError, EngineUnavailable

if TYPE_CHECKING:
    from bot.engines.docker import DockerEngine


def doctor(settings: Settings) -> tuple[list[Finding], bool]:
    """Every finding, in order, and whether a Docker engine answered at all."""
    findings: list[Finding] = []
    engines: dict[str, DockerEngine] = {}
    try:
        engines = build_engines(settings)
    except EngineUnavailable as exc:
        findings.append(Finding("docker", settings.docker_host or "default", False, str(exc)))

    async def registries() -> list[Finding]:
        insecure = await hosts_insecure_registries(engines)
        async with build_registry(settings, engine_insecure=insecure) as registry:
            checker = build_checker(settings, engines, registry)
            engine = first_engine(engines)
            mirrors = [mirrors_finding(await through_mirrors(settings, engine, registry).mirrors())]
            refs = await watched_refs(checker)
            if not refs:
                return [*mirrors, Finding("registry", "-", True, "no watched image to look up")]
            return [*mirrors, *await registry_findings(
                settings, registry, build_credentials(settings), refs)]

    answered = False
    if engines:
        several = len(engines) > 1
        try:
            for host, engine in engines.items():
                found = engine_finding(engine, host if several else None)
                answered = answered or found.ok
                findings.append(found)
            if answered:
                findings.extend(asyncio.run(registries()))
        except DockWardenError as exc:
            findings.append(Finding("registry", "-", False, str(exc)))
        finally:
            for engine in engines.values():
                engine.close()
    findings.append(database_finding(settings.db))
    findings.extend(chat_findings(settings))
    findings.extend(asyncio.run(platform_findings(settings)))
    findings.extend(apprise_findings(settings))
    return findings, answered


def apprise_findings(settings: Settings) -> list[Finding]:
    """Whether every DOCKWARDEN_NOTIFY_URLS URL is one Apprise can use (nothing is sent)."""
    if settings.notify_urls is None:
        return []
    # The Apprise adapter's own reading of the URLs; imported only when some are set.
    from adapters.apprise_channel import parse_targets

    try:
        labels = [label for label, _ in parse_targets(settings.notify_urls.get_secret_value())]
    except DockWardenError as exc:
        return [Finding("chat", "apprise", False, str(exc))]
    return [Finding("chat", "apprise", True,
                    f"{len(labels)} URL(s): {', '.join(labels)} (`dockwarden notify --test` "
                    "sends a test alert)")]

"""`dockwarden doctor`: can DockWarden reach Docker, each watched image's registry, and chat?

Each check gives a Finding; nothing here prints a secret (tokens are reported as set or not set).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.check.checker import Checker, plan_workload
from bot.config.settings import Settings
from bot.domain.reference import ImageRef
from bot.errors import DockWardenError, EngineError, RegistryError, UnsupportedChallenge
from bot.registry.tls import RegistryTls, verified_by

if TYPE_CHECKING:
    from bot.engines.docker import DockerEngine
    from bot.registry.client import RegistryClient
    from bot.registry.credentials import DockerCredentials
    from bot.registry.mirrors import Mirror

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    """One line of the doctor's report."""

    area: str  # docker | registry | chat
    subject: str
    ok: bool
    text: str
    warn: bool = False  # works, but likely not as meant (WARN; the exit status stays 0)

    def render(self) -> str:
        """`ok    registry  ghcr.io: ...`."""
        mark = "FAIL" if not self.ok else "WARN" if self.warn else "ok"
        return f"{mark:<5} {self.area:<9} {self.subject}: {self.text}"


def engine_finding(engine: DockerEngine, host: str | None = None) -> Finding:
    """The engine's version and the negotiated API version (named by its host, of several)."""
    where = engine.where if host is None else f"{host} ({engine.where})"
    try:
        version = engine.version()
    except EngineError as exc:
        return Finding("docker", where, False, str(exc))
    return Finding(
        "docker",
        where,
        True,
        f"Docker Engine {version.get('Version', '?')}, API {engine.api_version} "
        f"(engine supports {version.get('MinAPIVersion', '?')}..{version.get('ApiVersion', '?')})",
    )


def database_finding(db: str) -> Finding:
    """Whether the SQLite file at DOCKWARDEN_DB can be written (and created, when missing)."""
    import tempfile
    from pathlib import Path

    path = Path(db).absolute()
    where = path.parent
    problem = None
    if path.is_dir():
        problem = "is a directory"
    elif not where.is_dir():
        problem = f"directory {where} does not exist"
    else:
        try:
            # SQLite writes journal files beside the database: the directory must take a file.
            with tempfile.NamedTemporaryFile(dir=where, prefix=".dockwarden-doctor-"):
                pass
            if path.exists():
                open(path, "r+b").close()  # opened for writing, nothing written
        except OSError as exc:
            problem = f"cannot write there: {exc.strerror or exc}"
    if problem is not None:
        return Finding("database", str(path), False, f"{problem} (DOCKWARDEN_DB)")
    return Finding("database", str(path), True,
                   "writable" + ("" if path.exists() else "; will be created"))


def chat_findings(settings: Settings) -> list[Finding]:
    """Which chat adapters are configured; a token without anywhere to send alerts is broken."""
    findings = []
    if settings.telegram_bot_token is None:
        findings.append(Finding("chat", "telegram", True, "TELEGRAM_BOT_TOKEN not set (off)"))
    elif not settings.telegram_chat_ids:
        findings.append(Finding(
            "chat", "telegram", False,
            "TELEGRAM_BOT_TOKEN is set but TELEGRAM_CHAT_IDS is empty: alerts have nowhere to go",
        ))
    else:
        findings.append(Finding(
            "chat", "telegram", True,
            f"TELEGRAM_BOT_TOKEN set; alerts to {len(settings.telegram_chat_ids)} chat(s); "
            f"{len(settings.telegram_admin_ids)} admin(s)",
        ))
    if settings.discord_bot_token is None:
        findings.append(Finding("chat", "discord", True, "DISCORD_BOT_TOKEN not set (off)"))
    elif settings.discord_channel_id is None:
        findings.append(Finding(
            "chat", "discord", False,
            "DISCORD_BOT_TOKEN is set but DISCORD_CHANNEL_ID is not: alerts have nowhere to go",
        ))
    else:
        admins = len(settings.discord_admin_ids) + len(settings.discord_admin_role_ids)
        findings.append(Finding(
            "chat", "discord", True,
            f"DISCORD_BOT_TOKEN set; alerts to channel {settings.discord_channel_id}; "
            f"{admins} admin user(s)/role(s)",
        ))
    if settings.telegram_bot_token is not None and not settings.telegram_admin_ids:
        findings.append(Finding(
            "chat", "telegram admins", True,
            "TELEGRAM_ADMIN_IDS is empty: nobody may approve, pull, ignore or snooze from Telegram",
            warn=True,
        ))
    if settings.discord_bot_token is not None and not (
        settings.discord_admin_ids or settings.discord_admin_role_ids
    ):
        findings.append(Finding(
            "chat", "discord admins", True,
            "DISCORD_ADMIN_IDS and DISCORD_ADMIN_ROLE_IDS are empty: nobody may approve, pull, "
            "ignore or snooze from Discord",
            warn=True,
        ))
    webhook = "set" if settings.discord_webhook_url is not None else "not set"
    findings.append(Finding("chat", "discord webhook", True, f"DISCORD_WEBHOOK_URL {webhook}"))
    if settings.telegram_bot_token is None and settings.discord_bot_token is None:
        findings.append(Finding("chat", "console", True, "no chat token: alerts go to stdout"))
    return findings


def mirrors_finding(mirrors: Sequence[Mirror]) -> Finding:
    """Which registry mirrors Docker Hub images are checked through, in order (or none)."""
    if not mirrors:
        return Finding("registry", "docker.io mirrors", True,
                       "none: Docker Hub images are checked on Docker Hub itself")
    return Finding("registry", "docker.io mirrors", True,
                   f"Docker Hub images are checked through {', '.join(m.url for m in mirrors)}, "
                   "then Docker Hub (DOCKWARDEN_REGISTRY_MIRRORS, else the engine's)")


async def registry_findings(
    settings: Settings,
    client: RegistryClient,
    credentials: DockerCredentials,
    refs: Sequence[ImageRef],
) -> list[Finding]:
    """Per registry: what auth it offers, whether we hold credentials, ping and one lookup."""
    by_registry: dict[str, list[ImageRef]] = {}
    for ref in refs:
        by_registry.setdefault(ref.registry, []).append(ref)

    async def one(registry: str, its_refs: list[ImageRef]) -> Finding:
        auth = await client.offered_auth(its_refs[0])
        try:
            # A helper program may take seconds: in a thread, so the registries run side by side.
            found = await asyncio.to_thread(credentials.lookup, registry)
        except DockWardenError as exc:
            return Finding("registry", registry, False, f"{auth}; {len(its_refs)} image(s); {exc}")
        creds = "credentials found" if found else "no credentials"
        tls = await tls_summary(client.tls, its_refs[0], timeout=settings.registry_timeout)
        head = f"{auth}; {creds}; {len(its_refs)} image(s); TLS: {tls}"
        try:
            await client.remote_digest(its_refs[0])
        except RegistryError as exc:
            return Finding("registry", registry, False, f"{head}; {_failure(exc)}")
        try:
            await client.check_login(registry)
        except UnsupportedChallenge:
            # The lookup worked anonymously: the unknown scheme is no obstacle for pulls.
            pass
        except RegistryError as exc:
            return Finding("registry", registry, False, f"{head}; {_failure(exc)}")
        return Finding("registry", registry, True, f"{head}; lookup of {its_refs[0]} ok")

    async def alone(registry: str, its_refs: list[ImageRef]) -> Finding:
        # One registry's failure is its own line; it never hides the others' findings.
        try:
            return await one(registry, its_refs)
        except DockWardenError as exc:
            return Finding("registry", registry, False, f"{len(its_refs)} image(s); {exc}")

    return list(await asyncio.gather(*(alone(r, rs) for r, rs in sorted(by_registry.items()))))


async def tls_summary(tls: RegistryTls, ref: ImageRef, *, timeout: float) -> str:
    """How the registry's certificate is checked: insecure, or which CA verified it."""
    reason = tls.insecure_reason(ref.registry)
    if reason is not None:
        return f"insecure ({reason}): plain HTTP or no certificate checks"
    try:
        setup = tls.setup(ref.registry)
    except RegistryError as exc:
        return str(exc)
    return await verified_by(setup, ref.api_host, timeout=timeout)


def _failure(exc: RegistryError) -> str:
    scheme = f" [scheme {exc.scheme}]" if exc.scheme else ""
    return f"{exc.kind}{scheme}: {exc}"


async def watched_refs(checker: Checker) -> list[ImageRef]:
    """The distinct references a check pass would look up."""
    refs: dict[ImageRef, None] = {}
    for workload in await checker.workloads():
        plan = plan_workload(
            workload, label_enable=checker.label_enable, default_policy=checker.default_policy
        )
        if plan.lookup is not None:
            refs[plan.lookup] = None
    return list(refs)

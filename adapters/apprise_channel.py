"""Alert-only channels through Apprise (DOCKWARDEN_NOTIFY_URLS): ntfy, Gotify, Slack, Matrix,
e-mail and the rest, like DISCORD_WEBHOOK_URL: no commands, no buttons.

Each URL is its own Apprise object, so that an alert that reached ntfy but not Gotify is sent
again to Gotify alone when the core retries it from the outbox. The text is the core's neutral
rendering, sent as plain text; buttons appear as the commands they stand for. URLs hold tokens
and passwords, so a URL is named only by its position and service (`#2 ntfy`), never shown.
"""

from __future__ import annotations

import asyncio
import logging

import apprise
from apprise.utils.parse import parse_urls

from adapters.common import PartialDeliveries
from bot.chat.alert_texts import render_text
from bot.chat.messages import Alert, AlertKind, Dispatch
from bot.config.settings import Settings
from bot.errors import ConfigError, DockWardenError

log = logging.getLogger(__name__)

_NOTIFY_TYPES: dict[AlertKind, apprise.NotifyType] = {
    AlertKind.UPDATE_AVAILABLE: apprise.NotifyType.INFO,
    AlertKind.UPDATE_SUCCEEDED: apprise.NotifyType.SUCCESS,
    AlertKind.RECOVERED: apprise.NotifyType.SUCCESS,
    AlertKind.UPDATE_FAILED: apprise.NotifyType.FAILURE,
    AlertKind.ENGINE_UNREACHABLE: apprise.NotifyType.FAILURE,
}


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "?"


def parse_targets(raw: str) -> list[tuple[str, apprise.Apprise]]:
    """One (label, Apprise) per URL of DOCKWARDEN_NOTIFY_URLS; ConfigError for an unusable one."""
    targets: list[tuple[str, apprise.Apprise]] = []
    urls: list[str] = parse_urls(raw)  # type: ignore[no-untyped-call]
    for index, url in enumerate(urls, 1):
        service = apprise.Apprise.instantiate(url)
        if service is None:
            raise ConfigError(
                f"DOCKWARDEN_NOTIFY_URLS: URL #{index} ({_scheme(url)}://...) is not one Apprise "
                "can use; check its scheme and fields"
            )
        one = apprise.Apprise()
        one.add(service)
        targets.append((f"#{index} {_scheme(url)}", one))
    if not targets:
        raise ConfigError("DOCKWARDEN_NOTIFY_URLS holds no URL")
    return targets


def plain_body(alert: Alert) -> str:
    """The alert's text below its title, plain."""
    return render_text(alert).removeprefix(alert.title).lstrip("\n") or alert.title


class AppriseAdapter:
    """Alerts to every DOCKWARDEN_NOTIFY_URLS URL; raises naming the URLs an alert missed."""

    name = "apprise"

    def __init__(self, settings: Settings) -> None:
        if settings.notify_urls is None:
            raise ConfigError("DOCKWARDEN_NOTIFY_URLS is not set")
        self._targets = parse_targets(settings.notify_urls.get_secret_value())
        self._partial: PartialDeliveries[str] = PartialDeliveries()
        # Apprise's DEBUG lines carry request URLs and headers (passwords, tokens): never those,
        # whatever the log level asked for; its INFO and WARNING lines name hosts only.
        library = logging.getLogger("apprise")
        library.setLevel(max(library.level, logging.INFO))

    @property
    def labels(self) -> list[str]:
        """`#1 ntfy`, `#2 json`...: how the URLs are named in logs and errors."""
        return [label for label, _ in self._targets]

    async def start(self, dispatch: Dispatch) -> None:
        """Nothing to connect or listen to (alert-only)."""
        log.info("alerts also go to %d Apprise URL(s): %s", len(self._targets),
                 ", ".join(self.labels))

    async def stop(self) -> None:
        """Nothing to close."""

    async def notify(self, alert: Alert) -> None:
        """Send to each URL that does not have this alert yet; raise naming those that failed."""
        done = self._partial.take(alert)
        todo = [(label, target) for label, target in self._targets if label not in done]
        body = plain_body(alert)
        kind = _NOTIFY_TYPES.get(alert.kind, apprise.NotifyType.WARNING)
        results = await asyncio.gather(*(
            target.async_notify(body=body, title=alert.title, notify_type=kind,
                                body_format=apprise.NotifyFormat.TEXT)
            for _, target in todo
        ), return_exceptions=True)
        failed = []
        for (label, _), result in zip(todo, results, strict=True):
            if isinstance(result, BaseException) or not result:
                failed.append(label)
            else:
                done.add(label)
        if failed:
            self._partial.remember(alert, done)
            raise DockWardenError(
                f"alert {alert.title!r} not delivered to Apprise URL(s) {', '.join(failed)}"
            )

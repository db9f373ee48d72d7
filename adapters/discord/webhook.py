"""Alert-only Discord through a webhook (DISCORD_WEBHOOK_URL): no bot, no gateway, no buttons.

The webhook URL gives the id and token; requests go to DISCORD_API_BASE_URL like the bot's.
"""

from __future__ import annotations

import logging
import re

import aiohttp
import discord

from adapters.common import SecretFilter, not_running
from adapters.discord.delivery import ApiRedirect, deliver
from adapters.discord.render import alert_embed
from bot.chat.messages import Alert, Dispatch
from bot.config.settings import Settings
from bot.errors import ConfigError

log = logging.getLogger(__name__)

_WEBHOOK_PATH = re.compile(r"/webhooks/(?P<id>\d+)/(?P<token>[^/?#]+)")
_LIBRARY_LOG = "discord.webhook.async_"  # logs webhook URLs, token included, at DEBUG


class DiscordWebhookAdapter:
    """Alert-only Discord: embeds posted through DISCORD_WEBHOOK_URL; no bot, no commands."""

    name = "discord-webhook"

    def __init__(
        self, settings: Settings, *, retry_attempts: int = 5, retry_base_delay: float = 0.5
    ) -> None:
        if settings.discord_webhook_url is None:
            raise ConfigError("DISCORD_WEBHOOK_URL is not set")
        match = _WEBHOOK_PATH.search(settings.discord_webhook_url.get_secret_value())
        if match is None:
            raise ConfigError(
                "DISCORD_WEBHOOK_URL is not a Discord webhook URL (…/api/webhooks/<id>/<token>)"
            )
        self._webhook_id = int(match["id"])
        self._token = match["token"]
        self._attempts = retry_attempts
        self._base_delay = retry_base_delay
        # Requests go to DISCORD_API_BASE_URL; the webhook URL gives only the id and token.
        self._redirect = ApiRedirect(settings.discord_api_base_url, None)
        self._session: aiohttp.ClientSession | None = None
        self._webhook: discord.Webhook | None = None
        self._filter = SecretFilter()
        self._filter.protect(self._token)

    async def start(self, dispatch: Dispatch) -> None:
        """Open the HTTP session; there is nothing to listen to (dispatch is not used)."""
        self._redirect.enter()
        self._filter.attach(_LIBRARY_LOG)
        self._session = aiohttp.ClientSession()
        self._webhook = discord.Webhook.partial(self._webhook_id, self._token,
                                                session=self._session)
        log.info("Discord alerts go through webhook %s (no commands in this mode)",
                 self._webhook_id)

    async def stop(self) -> None:
        """Close the session and put discord.py's URL back."""
        session, self._session, self._webhook = self._session, None, None
        try:
            if session is not None:
                await session.close()
        finally:
            self._filter.detach(_LIBRARY_LOG)
            self._redirect.exit()

    async def notify(self, alert: Alert) -> None:
        """Post the alert's embed (buttons need a bot, so none)."""
        webhook = self._webhook
        if webhook is None:
            raise not_running("The Discord webhook", alert)
        embed = alert_embed(alert)

        async def send() -> discord.WebhookMessage:
            # A webhook has no client whose default could say it: no pings, explicitly.
            return await webhook.send(embed=embed, wait=True,
                                      allowed_mentions=discord.AllowedMentions.none())

        await deliver(send, what=f"alert {alert.title!r}", attempts=self._attempts,
                      base_delay=self._base_delay, secrets=[self._token])

"""Discord: the bot's life (log in, command sync, gateway, stop) and its alerts.

`DiscordAdapter` runs a discord.py Client inside our loop (`client.start` as a task; `stop`
closes it and awaits the task). Its slash commands are built from the command catalogue
(`adapters.discord.slash`); commands, presses and autocomplete are answered by
`adapters.discord.interactions`; alerts become embeds in DISCORD_CHANNEL_ID.

`adapters.discord.webhook.DiscordWebhookAdapter` posts the same embeds through
DISCORD_WEBHOOK_URL, with no bot, no gateway and no buttons.

Both talk to DISCORD_API_BASE_URL (and the bot to DISCORD_GATEWAY_URL when set), see
`adapters.discord.delivery.ApiRedirect`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import aiohttp
import discord

from adapters.common import not_running
from adapters.discord.delivery import ApiRedirect, deliver
from adapters.discord.interactions import Completions, DiscordInteractions
from adapters.discord.render import AlertButton, actions_view, alert_embed
from adapters.discord.slash import CommandTree, add_commands
from bot.chat.messages import Alert, Dispatch
from bot.chat.text_safety import redact
from bot.config.settings import Settings
from bot.errors import ConfigError, DockWardenError

log = logging.getLogger(__name__)


def _refused() -> ConfigError:
    """A token Discord refuses is a configuration error: retrying cannot fix it."""
    return ConfigError(
        "Discord refused the bot token (DISCORD_BOT_TOKEN): 401 Unauthorized; copy the token "
        "again from the Developer Portal's Bot page"
    )


class _Client(discord.Client):
    """The discord.py client, with our command tree and press handling."""

    def __init__(self, adapter: DiscordAdapter, *, guild_ready_timeout: float) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # the guild's roles, to tell which roles a member holds
        super().__init__(
            intents=intents,
            guild_ready_timeout=guild_ready_timeout,
            max_ratelimit_timeout=30.0,
            # Nothing DockWarden posts may ping anyone: alerts and /history quote names that
            # registries, operators and strangers chose. Replies and follow-ups inherit this.
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.adapter = adapter
        self.tree = CommandTree(self)
        answers = adapter.interactions
        add_commands(self.tree, answers.command, answers.choices)

    async def setup_hook(self) -> None:
        await self.adapter._setup(self)

    async def on_ready(self) -> None:
        log.info("Discord gateway ready as %s", self.user)
        self.adapter._ready.set()

    async def handle_press(
        self, interaction: discord.Interaction[Any], verb: str, target: str, label: str
    ) -> None:
        """Hand a button press to the adapter's interactions."""
        await self.adapter.interactions.press(interaction, verb, target, label)


class DiscordAdapter:
    """The Discord bot: slash commands, buttons, and alerts to DISCORD_CHANNEL_ID."""

    name = "discord"

    def __init__(
        self,
        settings: Settings,
        *,
        completions: Completions | None = None,
        guild_ready_timeout: float = 2.0,
        ready_timeout: float = 60.0,
        retry_attempts: int = 5,
        retry_base_delay: float = 0.5,
    ) -> None:
        if settings.discord_bot_token is None:
            raise ConfigError("DISCORD_BOT_TOKEN is not set; the Discord adapter needs it")
        self._token = settings.discord_bot_token.get_secret_value()
        self._channel_id = settings.discord_channel_id
        self._guild_id = settings.discord_guild_id
        self._guild_ready_timeout = guild_ready_timeout
        self._ready_timeout = ready_timeout
        self._attempts = retry_attempts
        self._base_delay = retry_base_delay
        self._redirect = ApiRedirect(settings.discord_api_base_url, settings.discord_gateway_url)
        self._gateway_name = settings.discord_gateway_url or "Discord's own"
        self._api_base = settings.discord_api_base_url
        self.interactions = DiscordInteractions(
            token=self._token,
            guild_id=self._guild_id,
            admin_ids=frozenset(settings.discord_admin_ids),
            admin_role_ids=frozenset(settings.discord_admin_role_ids),
            completions=completions,
            attempts=retry_attempts,
            base_delay=retry_base_delay,
        )
        """Answers slash commands, presses and autocomplete."""
        self._client: _Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._rest: discord.Client | None = None  # logged in without a gateway (alerts only)
        self._ready = asyncio.Event()
        self._stopping = False
        self.failure: BaseException | None = None
        """Why the client task ended on its own, if it did (it should not)."""

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, dispatch: Dispatch) -> None:
        """Log in, sync the commands, connect the gateway; return once READY."""
        self.interactions.dispatch = dispatch
        self._ready = asyncio.Event()
        self._stopping = False
        self.failure = None
        self._redirect.enter()
        client = self._client = _Client(self, guild_ready_timeout=self._guild_ready_timeout)
        self._task = asyncio.create_task(self._run(client), name="discord-client")
        ready = asyncio.create_task(self._ready.wait())
        try:
            await asyncio.wait(
                {self._task, ready}, timeout=self._ready_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        except BaseException:  # cancelled while starting: leave no client behind
            await self.stop(drain_timeout=0)
            raise
        finally:
            ready.cancel()
        if self._ready.is_set():
            return
        failure = self.failure
        await self.stop()
        if failure is None:
            raise DockWardenError(
                f"the Discord gateway ({self._gateway_name}) did not become ready within "
                f"{self._ready_timeout:.0f}s"
            )
        if isinstance(failure, DockWardenError):
            raise failure
        if isinstance(failure, discord.LoginFailure):
            raise _refused() from None
        # discord.py fails an unanswered first gateway connection with an AttributeError of its
        # own, so say which gateway it was.
        raise DockWardenError(
            f"the Discord adapter could not start (gateway: {self._gateway_name}): "
            f"{type(failure).__name__}: {redact(str(failure), [self._token])}"
        ) from None

    async def open_for_alerts(self) -> None:
        """Log in over REST only (no gateway, no command sync): enough to post alerts, for
        `dockwarden notify --test` beside a running daemon."""
        self._redirect.enter()
        client = discord.Client(intents=discord.Intents.none())
        self._rest = client
        try:
            await client.login(self._token)
        except discord.LoginFailure:
            await self.stop()
            raise _refused() from None
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            await self.stop()
            raise DockWardenError(
                f"Discord cannot be reached ({self._api_base}): {type(exc).__name__}: "
                f"{redact(str(exc), [self._token])[:200]}"
            ) from None

    async def _run(self, client: _Client) -> None:
        """The client's life; a failure is kept in `failure` and logged, not lost."""
        try:
            await client.start(self._token, reconnect=True)
        except Exception as exc:
            self.failure = exc
            if self._ready.is_set() and not self._stopping:  # before READY, start() says it
                log.error("the Discord client stopped: %s: %s", type(exc).__name__,
                          redact(str(exc), [self._token]))

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Let answers under way finish (bounded), close the client, await it, restore URLs."""
        self._stopping = True
        client, task = self._client, self._task
        self._client = self._task = None
        rest, self._rest = self._rest, None
        if rest is not None:
            await rest.close()
        try:
            if self.interactions.handlers:
                under_way = set(self.interactions.handlers)
                _, late = await asyncio.wait(under_way, timeout=drain_timeout)
                if late:
                    log.warning("stopping Discord with %d answers still under way", len(late))
        finally:
            # Even when the caller's own deadline cancels the wait above, close the client.
            try:
                if client is not None:
                    await client.close()
                if task is not None:
                    await task
            finally:
                self._redirect.exit()

    async def _setup(self, client: _Client) -> None:
        """Runs once logged in, before the gateway: buttons, alert guild, command sync."""
        client.add_dynamic_items(AlertButton)
        if self._channel_id is not None:
            channel_id = self._channel_id
            channel = await deliver(
                lambda: client.fetch_channel(channel_id),
                what=f"the lookup of DISCORD_CHANNEL_ID {channel_id}",
                attempts=self._attempts, base_delay=self._base_delay, secrets=[self._token],
            )
            guild = getattr(channel, "guild", None)
            self.interactions.alert_guild_id = guild.id if guild is not None else None
        else:
            log.warning("DISCORD_CHANNEL_ID is not set: alerts will not be posted to Discord")
        if self._guild_id is not None:
            guild_obj = discord.Object(id=self._guild_id)
            client.tree.copy_global_to(guild=guild_obj)
            synced = await client.tree.sync(guild=guild_obj)
            log.info("synced %d Discord commands to guild %s", len(synced), self._guild_id)
        else:
            synced = await client.tree.sync()
            log.info("synced %d Discord commands globally (may take a while to show)",
                     len(synced))

    # -- alerts ----------------------------------------------------------------------------

    async def notify(self, alert: Alert) -> None:
        """Post the alert as an embed (with its buttons) to DISCORD_CHANNEL_ID."""
        if self._channel_id is None:
            return
        client: discord.Client | None = self._client or self._rest
        if client is None:
            raise not_running("Discord", alert)
        channel = client.get_partial_messageable(self._channel_id)
        embed = alert_embed(alert)
        view = actions_view(alert.actions)
        # One nonce for every attempt: Discord then drops a retry of a send that did arrive.
        nonce = str(secrets.randbits(63))

        async def send() -> discord.Message:
            if view is None:
                return await channel.send(embed=embed, nonce=nonce)
            return await channel.send(embed=embed, view=view, nonce=nonce)

        await deliver(send, what=f"alert {alert.title!r}", attempts=self._attempts,
                      base_delay=self._base_delay, secrets=[self._token])

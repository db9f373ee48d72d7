"""Discord: slash commands, alert embeds with persistent buttons, and a webhook-only mode.

`DiscordAdapter` runs a discord.py Client inside our loop (`client.start` as a task; `stop`
closes it and awaits the task). Slash commands and button presses become neutral `Command`s
for the core's dispatch; alerts become embeds in DISCORD_CHANNEL_ID. The adapter only reports
who is asking (user id, role ids, whether they are in the alert channel's guild); the core
decides what they may do.

`DiscordWebhookAdapter` (adapters.discord.webhook, importable from here too) posts the same
embeds through DISCORD_WEBHOOK_URL, with no bot, no gateway and no buttons.

Both talk to DISCORD_API_BASE_URL (and the bot to DISCORD_GATEWAY_URL when set), see
`adapters.discord.delivery.ApiRedirect`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import discord
from discord import app_commands

from adapters.discord.delivery import ApiRedirect, deliver, scrub
from adapters.discord.render import (
    AlertButton,
    actions_view,
    alert_embed,
    chunks,
    escape,
    pressed_embed,
)
from adapters.discord.webhook import DiscordWebhookAdapter
from bot.chat.messages import Alert, Command, Dispatch, Reply, Sender
from bot.chat.text_safety import safe_text
from bot.config.settings import Settings
from bot.errors import ConfigError, DockWardenError

__all__ = ["Completions", "DiscordAdapter", "DiscordWebhookAdapter"]

log = logging.getLogger(__name__)

Completions = Callable[[str, str, Sender], Awaitable[list[str]]]
"""`completions(kind, prefix, sender)`: autocomplete candidates ("container"|"update") that
`sender` may see (none for people who may not read)."""

# Commands that may run long (registry round trips, pulls, health gates): acknowledged at once
# with a deferred response, answered by a follow-up.
SLOW_COMMANDS = frozenset({"approve", "pull", "check", "rollback"})
_CHOICES_LIMIT = 25


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
        self.tree = _Tree(self)
        _add_commands(self.tree, adapter)

    async def setup_hook(self) -> None:
        await self.adapter._setup(self)

    async def on_ready(self) -> None:
        log.info("Discord gateway ready as %s", self.user)
        self.adapter._ready.set()

    async def handle_press(
        self, interaction: discord.Interaction[Any], verb: str, target: str, label: str
    ) -> None:
        await self.adapter._press(interaction, verb, target, label)


class _Tree(app_commands.CommandTree[_Client]):
    """A command tree that logs failures with their traceback and tells the user."""

    async def on_error(
        self, interaction: discord.Interaction[_Client], error: app_commands.AppCommandError
    ) -> None:
        name = interaction.command.name if interaction.command else "?"
        log.error("Discord command /%s failed", name, exc_info=error)
        text = "Something went wrong; the bot's log has the details."
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not tell the user that /%s failed", name)


def _add_commands(tree: _Tree, adapter: DiscordAdapter) -> None:
    """The slash commands; each turns into one neutral Command."""

    async def containers(
        interaction: discord.Interaction[_Client], current: str
    ) -> list[app_commands.Choice[str]]:
        return await adapter._choices(interaction, "container", current)

    async def updates(
        interaction: discord.Interaction[_Client], current: str
    ) -> list[app_commands.Choice[str]]:
        return await adapter._choices(interaction, "update", current)

    @tree.command(name="status", description="Watched containers and pending updates")
    async def status_(interaction: discord.Interaction[_Client]) -> None:
        await adapter._command(interaction, "status", ())

    @tree.command(name="check", description="Check now for newer images")
    @app_commands.describe(name="Container to check (all when omitted)")
    @app_commands.autocomplete(name=containers)
    async def check_(interaction: discord.Interaction[_Client], name: str | None = None) -> None:
        await adapter._command(interaction, "check", (name,) if name else ())

    @tree.command(name="updates", description="Updates waiting for approval")
    @app_commands.describe(page="Page of the list (1 when omitted)")
    async def updates_(
        interaction: discord.Interaction[_Client], page: app_commands.Range[int, 1] | None = None
    ) -> None:
        await adapter._command(interaction, "updates", (str(page),) if page else ())

    @tree.command(name="approve", description="Approve a pending update")
    @app_commands.describe(id="Update id (or container name)")
    @app_commands.autocomplete(id=updates)
    async def approve_(interaction: discord.Interaction[_Client], id: str) -> None:
        await adapter._command(interaction, "approve", (id,))

    @tree.command(name="pull", description="Update a container to its newest image now")
    @app_commands.describe(name="Container")
    @app_commands.autocomplete(name=containers)
    async def pull_(interaction: discord.Interaction[_Client], name: str) -> None:
        await adapter._command(interaction, "pull", (name,))

    @tree.command(name="ignore", description="Stop alerting about a container's current update")
    @app_commands.describe(name="Container")
    @app_commands.autocomplete(name=containers)
    async def ignore_(interaction: discord.Interaction[_Client], name: str) -> None:
        await adapter._command(interaction, "ignore", (name,))

    @tree.command(name="snooze", description="Silence a container's alerts for a while")
    @app_commands.describe(name="Container", duration="How long, e.g. 6h, 2d")
    @app_commands.autocomplete(name=containers)
    async def snooze_(
        interaction: discord.Interaction[_Client], name: str, duration: str
    ) -> None:
        await adapter._command(interaction, "snooze", (name, duration))

    @tree.command(name="rollback", description="Back to the image before the last update")
    @app_commands.describe(name="Container")
    @app_commands.autocomplete(name=containers)
    async def rollback_(interaction: discord.Interaction[_Client], name: str) -> None:
        await adapter._command(interaction, "rollback", (name,))

    @tree.command(name="history", description="Recent updates")
    @app_commands.describe(name="Container (all when omitted)")
    @app_commands.autocomplete(name=containers)
    async def history_(
        interaction: discord.Interaction[_Client], name: str | None = None
    ) -> None:
        await adapter._command(interaction, "history", (name,) if name else ())

    @tree.command(name="help", description="What DockWarden can do")
    async def help_(interaction: discord.Interaction[_Client]) -> None:
        await adapter._command(interaction, "help", ())


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
        self._admin_ids = frozenset(settings.discord_admin_ids)
        self._admin_role_ids = frozenset(settings.discord_admin_role_ids)
        self._completions = completions
        self._guild_ready_timeout = guild_ready_timeout
        self._ready_timeout = ready_timeout
        self._attempts = retry_attempts
        self._base_delay = retry_base_delay
        self._redirect = ApiRedirect(settings.discord_api_base_url, settings.discord_gateway_url)
        self._gateway_name = settings.discord_gateway_url or "Discord's own"
        self._api_base = settings.discord_api_base_url
        self._dispatch: Dispatch | None = None
        self._client: _Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._rest: discord.Client | None = None  # logged in without a gateway (alerts only)
        self._ready = asyncio.Event()
        self._alert_guild_id: int | None = None
        self._stopping = False
        self._handlers: set[asyncio.Task[Any]] = set()  # commands and presses being answered
        self.failure: BaseException | None = None
        """Why the client task ended on its own, if it did (it should not)."""

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, dispatch: Dispatch) -> None:
        """Log in, sync the commands, connect the gateway; return once READY."""
        self._dispatch = dispatch
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
            f"{type(failure).__name__}: {scrub(str(failure), [self._token])}"
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
                f"{scrub(str(exc), [self._token])[:200]}"
            ) from None

    async def _run(self, client: _Client) -> None:
        """The client's life; a failure is kept in `failure` and logged, not lost."""
        try:
            await client.start(self._token, reconnect=True)
        except Exception as exc:
            self.failure = exc
            if self._ready.is_set() and not self._stopping:  # before READY, start() says it
                log.error("the Discord client stopped: %s: %s", type(exc).__name__,
                          scrub(str(exc), [self._token]))

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Let answers under way finish (bounded), close the client, await it, restore URLs."""
        self._stopping = True
        client, task = self._client, self._task
        self._client = self._task = None
        rest, self._rest = self._rest, None
        if rest is not None:
            await rest.close()
        try:
            if self._handlers:
                _, late = await asyncio.wait(set(self._handlers), timeout=drain_timeout)
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
            self._alert_guild_id = guild.id if guild is not None else None
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
            raise DockWardenError(f"Discord adapter is not running; alert {alert.title!r} lost")
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

    # -- commands and presses --------------------------------------------------------------

    def _sender(self, interaction: discord.Interaction[Any]) -> Sender:
        user = interaction.user
        roles = tuple(role.id for role in user.roles) if isinstance(user, discord.Member) else ()
        home = self._alert_guild_id or self._guild_id
        return Sender(
            platform="discord",
            user_id=user.id,
            display=user.display_name,
            role_ids=roles,
            in_alert_place=interaction.guild_id is not None and interaction.guild_id == home,
        )

    def _listed(self, sender: Sender) -> bool:
        """Whether the sender is on the admin lists (only to choose who sees an answer)."""
        return sender.user_id in self._admin_ids or bool(
            self._admin_role_ids.intersection(sender.role_ids)
        )

    async def _ask(self, command: Command) -> Reply:
        """The core's reply; a failure becomes a short private answer, logged in full."""
        if self._dispatch is None:
            return Reply("DockWarden is not running.", ephemeral=True)
        try:
            return await self._dispatch(command)
        except DockWardenError as exc:  # may quote an engine or registry: the safe form only
            return Reply(safe_text(str(exc)), ephemeral=True)
        except Exception:
            log.exception("dispatching /%s from Discord user %s failed",
                          command.name, command.sender.user_id)
            return Reply("Something went wrong; the bot's log has the details.", ephemeral=True)

    def _track(self) -> None:
        """Count the running task as an answer under way, until it ends (for `stop`)."""
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _command(
        self, interaction: discord.Interaction[Any], name: str, args: tuple[str, ...]
    ) -> None:
        """Run one slash command: slow ones are acknowledged first and answered by follow-up."""
        self._track()
        command = Command(name, args, self._sender(interaction))
        log.info("Discord /%s from user %s", name, command.sender.user_id)
        if name not in SLOW_COMMANDS:
            await self._respond(interaction, await self._ask(command))
            return
        # Whether the answer is private must be fixed now; a sender off the admin lists is
        # likely refused, and a refusal is for their eyes only.
        private = not self._listed(command.sender)
        await interaction.response.defer(thinking=True, ephemeral=private)
        reply = await self._ask(command)
        await self._follow_up(interaction, reply, ephemeral=private or reply.ephemeral)

    async def _respond(self, interaction: discord.Interaction[Any], reply: Reply) -> None:
        parts = chunks(escape(reply.text))
        view = actions_view(reply.actions)
        if view is not None and len(parts) == 1:
            await interaction.response.send_message(parts[0], ephemeral=reply.ephemeral, view=view)
            return
        await interaction.response.send_message(parts[0], ephemeral=reply.ephemeral)
        if len(parts) > 1 or view is not None:
            await self._follow_up(interaction, Reply("\n".join(parts[1:]), reply.actions),
                                  ephemeral=reply.ephemeral, escaped=True)

    async def _follow_up(
        self, interaction: discord.Interaction[Any], reply: Reply, *, ephemeral: bool,
        escaped: bool = False,
    ) -> None:
        parts = chunks(reply.text if escaped else escape(reply.text))
        view = actions_view(reply.actions)
        for index, part in enumerate(parts):
            last = index == len(parts) - 1

            async def send(part: str = part, last: bool = last) -> None:
                if last and view is not None:
                    await interaction.followup.send(part, ephemeral=ephemeral, view=view)
                else:
                    await interaction.followup.send(part, ephemeral=ephemeral)

            await deliver(send, what="a command's answer", attempts=self._attempts,
                          base_delay=self._base_delay, secrets=[self._token])

    async def _press(
        self, interaction: discord.Interaction[Any], verb: str, target: str, label: str
    ) -> None:
        """A button press: acknowledge, ask the core, then mark the alert or answer privately."""
        self._track()
        try:
            await interaction.response.defer()
            command = Command(verb, (target,), self._sender(interaction))
            log.info("Discord button %s on %s from user %s", verb, target,
                     command.sender.user_id)
            reply = await self._ask(command)
            if reply.refused or reply.ephemeral:
                await self._follow_up(interaction, reply, ephemeral=True)
                return
            message = interaction.message
            original = message.embeds[0] if message is not None and message.embeds else None
            embed = pressed_embed(original, command.sender.display, label or verb, reply.text)
            await deliver(
                lambda: interaction.edit_original_response(embed=embed, view=None),
                what="the alert's update", attempts=self._attempts,
                base_delay=self._base_delay, secrets=[self._token],
            )
            await self._follow_up(interaction, reply, ephemeral=True)
        except Exception:
            log.exception("handling the %s button on %s failed", verb, target)

    async def _choices(
        self, interaction: discord.Interaction[Any], kind: str, current: str
    ) -> list[app_commands.Choice[str]]:
        """Autocomplete candidates the core shows this sender; none when it has no source or
        fails."""
        if self._completions is None:
            return []
        try:
            values = await self._completions(kind, current, self._sender(interaction))
        except Exception:
            log.exception("autocomplete of %s names failed", kind)
            return []
        return [app_commands.Choice(name=v[:100], value=v[:100]) for v in values[:_CHOICES_LIMIT]]

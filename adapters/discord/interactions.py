"""Discord input: slash commands, button presses and autocomplete, answered in Discord's idiom.

Each becomes a neutral `Command` for the core's dispatch. Slow commands are deferred at once
(Discord drops an interaction left unanswered for 3 seconds) and answered by follow-up; a press
marks the alert's embed with who pressed what and the outcome. The adapter only reports who is
asking (user id, role ids, whether they are in the alert channel's guild); the core decides
what they may do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from adapters import common
from adapters.discord.delivery import deliver
from adapters.discord.render import actions_view, chunks, escape, pressed_embed
from bot.chat.messages import Command, Dispatch, Reply, Sender
from bot.chat.text_safety import safe_text
from bot.errors import DockWardenError

log = logging.getLogger(__name__)

Completions = Callable[[str, str, Sender], Awaitable[list[str]]]
"""`completions(kind, prefix, sender)`: autocomplete candidates ("container"|"update") that
`sender` may see (none for people who may not read)."""

CHOICES_LIMIT = 25


class DiscordInteractions:
    """Turns interactions into commands for the core and draws the core's replies."""

    def __init__(
        self,
        *,
        token: str,
        guild_id: int | None,
        admin_ids: frozenset[int],
        admin_role_ids: frozenset[int],
        completions: Completions | None,
        attempts: int,
        base_delay: float,
    ) -> None:
        self._token = token
        self._guild_id = guild_id
        self._admin_ids = admin_ids
        self._admin_role_ids = admin_role_ids
        self._completions = completions
        self._attempts = attempts
        self._base_delay = base_delay
        self.dispatch: Dispatch | None = None
        """The core's dispatch, set by the adapter's start."""
        self.alert_guild_id: int | None = None
        """The guild of DISCORD_CHANNEL_ID, once looked up."""
        self.handlers: set[asyncio.Task[Any]] = set()
        """Commands and presses being answered (the adapter's stop lets them finish)."""

    def _sender(self, interaction: discord.Interaction[Any]) -> Sender:
        user = interaction.user
        roles = tuple(role.id for role in user.roles) if isinstance(user, discord.Member) else ()
        home = self.alert_guild_id or self._guild_id
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
        try:
            return await common.ask(self.dispatch, command)
        except DockWardenError as exc:  # may quote an engine or registry: the safe form only
            return Reply(safe_text(str(exc)), ephemeral=True)
        except Exception:
            log.exception("dispatching /%s from Discord user %s failed",
                          command.name, command.sender.user_id)
            return Reply(common.failure_note(command.name), ephemeral=True)

    def _track(self) -> None:
        """Count the running task as an answer under way, until it ends (for `stop`)."""
        task = asyncio.current_task()
        if task is not None:
            self.handlers.add(task)
            task.add_done_callback(self.handlers.discard)

    async def _deliver(self, send: Callable[[], Awaitable[Any]], what: str) -> None:
        await deliver(send, what=what, attempts=self._attempts, base_delay=self._base_delay,
                      secrets=[self._token])

    async def command(
        self, interaction: discord.Interaction[Any], name: str, args: tuple[str, ...]
    ) -> None:
        """Run one slash command: slow ones are acknowledged first and answered by follow-up."""
        self._track()
        command = Command(name, args, self._sender(interaction))
        log.info("Discord /%s from user %s", name, command.sender.user_id)
        if not common.is_slow(name):
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

            await self._deliver(send, "a command's answer")

    async def press(
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
            await self._deliver(
                lambda: interaction.edit_original_response(embed=embed, view=None),
                "the alert's update",
            )
            await self._follow_up(interaction, reply, ephemeral=True)
        except Exception:
            log.exception("handling the %s button on %s failed", verb, target)

    async def choices(
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
        return [app_commands.Choice(name=v[:100], value=v[:100]) for v in values[:CHOICES_LIMIT]]

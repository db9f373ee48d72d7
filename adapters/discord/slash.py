"""Discord's slash commands, built from the command catalogue (bot/chat/catalogue.py).

Each catalogue entry becomes one application command: its summary is the description, each
argument an option (required or not, with its help). Discord wants option names of plain
lowercase words, so an argument `id|name` becomes the option `id` (the first alternative) and
`name...` the option `name` (its words are split into several arguments, as the router reads
them). Options naming an update id or a container autocomplete from the core; a `page` is a
whole number from 1.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from adapters.common import failure_note
from bot.chat.catalogue import COMMANDS, Argument, CommandSpec

log = logging.getLogger(__name__)

RunCommand = Callable[[discord.Interaction[Any], str, tuple[str, ...]], Awaitable[None]]
Choices = Callable[[discord.Interaction[Any], str, str], Awaitable[list[app_commands.Choice[str]]]]

DESCRIPTION_LIMIT = 100  # characters of a command's or an option's description
COMPLETION_KINDS = {"id": "update", "name": "container"}  # option -> what the core completes
OPTION_TYPES: dict[str, Any] = {"page": app_commands.Range[int, 1]}


def option_name(argument: Argument) -> str:
    """The Discord option an argument becomes: `id|name` -> `id`, `name...` -> `name`."""
    return argument.name.split("|", 1)[0].removesuffix("...")


def arguments(spec: CommandSpec, options: dict[str, Any]) -> tuple[str, ...]:
    """The command's words from the options given, in the catalogue's order."""
    words: list[str] = []
    for argument in spec.arguments:
        value = options.get(option_name(argument))
        if value is None or value == "":
            continue
        text = str(value)
        words.extend(text.split() if argument.name.endswith("...") else [text])
    return tuple(words)


class CommandTree(app_commands.CommandTree[Any]):
    """A command tree that logs failures with their traceback and tells the user."""

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        """Log the failure and say so privately to whoever ran the command."""
        name = interaction.command.name if interaction.command else "?"
        log.error("Discord command /%s failed", name, exc_info=error)
        text = failure_note(name)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not tell the user that /%s failed", name)


def slash_command(spec: CommandSpec, run: RunCommand, choices: Choices) -> app_commands.Command[
    Any, Any, None
]:
    """One catalogue entry as an application command whose options become its arguments."""

    async def callback(interaction: discord.Interaction[Any], **options: Any) -> None:
        await run(interaction, spec.name, arguments(spec, options))

    # discord.py reads the options from the callback's signature: give it one per argument
    parameters = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    descriptions: dict[str, str] = {}
    completers: dict[str, Any] = {}
    for argument in spec.arguments:
        name = option_name(argument)
        kind: Any = OPTION_TYPES.get(name, str)
        parameters.append(inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY,
            annotation=kind if argument.required else kind | None,
            default=inspect.Parameter.empty if argument.required else None,
        ))
        descriptions[name] = argument.help[:DESCRIPTION_LIMIT]
        if name in COMPLETION_KINDS:
            completers[name] = _completer(COMPLETION_KINDS[name], choices)
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    decorated: Any = app_commands.describe(**descriptions)(callback)
    if completers:
        decorated = app_commands.autocomplete(**completers)(decorated)
    return app_commands.Command(
        name=spec.name, description=spec.summary[:DESCRIPTION_LIMIT], callback=decorated
    )


def _completer(
    kind: str, choices: Choices
) -> Callable[[discord.Interaction[Any], str], Awaitable[list[app_commands.Choice[str]]]]:
    async def complete(
        interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return await choices(interaction, kind, current)

    return complete


def add_commands(tree: CommandTree, run: RunCommand, choices: Choices) -> None:
    """Every catalogue command on `tree`, in the catalogue's order."""
    for spec in COMMANDS:
        tree.add_command(slash_command(spec, run, choices))

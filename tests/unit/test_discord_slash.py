"""Discord's slash commands built from the command catalogue: options, flags, descriptions."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from adapters.discord.slash import (
    CommandTree,
    add_commands,
    arguments,
    option_name,
    slash_command,
)
from bot.chat.catalogue import COMMANDS, Argument, command


async def run(interaction: discord.Interaction[Any], name: str, args: tuple[str, ...]) -> None:
    """Never called here: the tests read the commands built, not what they do."""


async def choices(
    interaction: discord.Interaction[Any], kind: str, current: str
) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=kind, value=kind)]


def test_option_names_are_plain_words_from_the_argument() -> None:
    assert option_name(Argument("id|name", True, "")) == "id"
    assert option_name(Argument("name|id", True, "")) == "name"
    assert option_name(Argument("name...", False, "")) == "name"
    assert option_name(Argument("page", False, "")) == "page"


def test_options_become_the_words_in_catalogue_order_and_several_names_split() -> None:
    snooze = command("snooze")
    assert arguments(snooze, {"duration": "2h", "name": "web"}) == ("web", "2h")
    assert arguments(snooze, {"name": "web", "duration": None}) == ("web",)
    assert arguments(command("check"), {"name": "web  worker"}) == ("web", "worker")
    assert arguments(command("updates"), {"page": 2}) == ("2",)
    assert arguments(command("status"), {}) == ()


def test_every_catalogue_command_is_one_slash_command_with_its_summary_and_options() -> None:
    tree = CommandTree(discord.Client(intents=discord.Intents.none()))
    add_commands(tree, run, choices)
    built = tree.get_commands()
    assert [c.name for c in built] == [spec.name for spec in COMMANDS]
    for spec, slash in zip(COMMANDS, built, strict=True):
        assert isinstance(slash, app_commands.Command)
        assert slash.description == spec.summary
        assert [(p.name, p.required, p.description) for p in slash.parameters] == [
            (option_name(a), a.required, a.help) for a in spec.arguments]


def test_update_ids_and_container_names_autocomplete_and_a_page_is_a_number_from_1() -> None:
    def options(name: str) -> dict[str, Any]:
        slash = slash_command(command(name), run, choices)
        return {p.name: p for p in slash.parameters}

    assert options("approve")["id"].autocomplete is True
    assert options("snooze")["name"].autocomplete is True
    assert options("snooze")["duration"].autocomplete is False
    page = options("updates")["page"]
    assert page.type is discord.AppCommandOptionType.integer and page.min_value == 1

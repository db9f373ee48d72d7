"""Drawing neutral alerts, replies and actions in Discord's idiom: embeds, buttons, 2000-char text.

Every piece of text is markdown-escaped before it is drawn (`escape`): container names like
`my_app_db` and whatever a registry or a stranger wrote must show as typed, never as italics
or a masked link.

Buttons are `AlertButton`s, a `discord.ui.DynamicItem` whose custom_id
(`dockwarden:<verb>:<target>`) carries everything a press needs. Registered once per client
(`client.add_dynamic_items(AlertButton)`), they keep working on messages posted before a
restart: discord.py matches the custom_id against the template, with no stored view.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any, Protocol, runtime_checkable

import discord

from bot.chat.messages import Action, Alert, AlertKind

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
CUSTOM_ID_PREFIX = "dockwarden"
_CUSTOM_ID_LIMIT = 100
_MAX_FIELDS = 25

COLOURS: dict[AlertKind, discord.Colour] = {
    AlertKind.UPDATE_AVAILABLE: discord.Colour.blue(),
    AlertKind.UNSUPPORTED_CHALLENGE: discord.Colour.orange(),
    AlertKind.AUTH_FAILED: discord.Colour.orange(),
    AlertKind.REGISTRY_UNREACHABLE: discord.Colour.gold(),
    AlertKind.RATE_LIMITED: discord.Colour.gold(),
    AlertKind.UPDATE_SUCCEEDED: discord.Colour.green(),
    AlertKind.UPDATE_FAILED: discord.Colour.red(),
    AlertKind.RECOVERED: discord.Colour.green(),
    AlertKind.ENGINE_UNREACHABLE: discord.Colour.dark_red(),
}

_STYLES: dict[str, discord.ButtonStyle] = {
    "approve": discord.ButtonStyle.success,
    "ignore": discord.ButtonStyle.secondary,
    "snooze": discord.ButtonStyle.secondary,
    "rollback": discord.ButtonStyle.danger,
}


def escape(text: str) -> str:
    """`text` shown literally in Discord markdown (`my_app_db` stays upright, no masked links)."""
    return discord.utils.escape_markdown(text)


def _cut(text: str, limit: int) -> str:
    """`text` shortened to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def custom_id(verb: str, target: str) -> str:
    """The custom_id of a button asking for `verb` on `target`."""
    return f"{CUSTOM_ID_PREFIX}:{verb}:{target}"


def alert_embed(alert: Alert) -> discord.Embed:
    """The embed an alert is posted as: title, text, one field per alert field, colour by kind."""
    embed = discord.Embed(
        title=_cut(escape(alert.title), 256),
        description=_cut(escape(alert.text), 4096) if alert.text else None,
        colour=COLOURS.get(alert.kind, discord.Colour.default()),
    )
    for item in alert.fields[:_MAX_FIELDS]:
        value = item.value or "—"
        embed.add_field(name=_cut(escape(item.name), 256), value=_cut(escape(value), 1024),
                        inline=len(value) <= 40)
    if alert.update_id:
        embed.set_footer(text=f"update {alert.update_id}")  # footers show no markdown
    return embed


def pressed_embed(
    original: discord.Embed | None, who: str, label: str, outcome: str
) -> discord.Embed:
    """The alert's embed after a press: a field saying who pressed what, and what came of it."""
    # Embed.copy() shares the field list with the original; a dict round trip does not.
    embed = (discord.Embed.from_dict(copy.deepcopy(original.to_dict()))
             if original is not None else discord.Embed())
    if len(embed.fields) >= _MAX_FIELDS:
        embed.remove_field(-1)
    embed.add_field(
        name=_cut(escape(f"{who} pressed {label}"), 256), value=_cut(escape(outcome or "—"), 1024),
        inline=False,
    )
    return embed


def chunks(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """`text` split into messages Discord accepts, at line ends where possible."""
    if not text:
        return ["—"]
    parts: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            parts.append(current)
            current = ""
        current += line
    if current:
        parts.append(current)
    return [part.rstrip("\n") or "—" for part in parts]


@runtime_checkable
class PressHandler(Protocol):
    """What the client behind an AlertButton offers: handling one press."""

    async def handle_press(
        self, interaction: discord.Interaction[Any], verb: str, target: str, label: str
    ) -> None:
        """Turn a press into a command and answer it."""


class AlertButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=rf"{CUSTOM_ID_PREFIX}:(?P<verb>[a-z_]+):(?P<target>.+)",
):
    """A button whose custom_id says what to do; it survives restarts."""

    def __init__(self, verb: str, target: str, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or verb.capitalize(),
                style=_STYLES.get(verb, discord.ButtonStyle.primary),
                custom_id=custom_id(verb, target),
            )
        )
        self.verb = verb
        self.target = target

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> AlertButton:
        """Rebuild the button from a press on any message, old or new."""
        label = item.label if isinstance(item, discord.ui.Button) else None
        return cls(match["verb"], match["target"], label)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Hand the press to the adapter behind the client."""
        client = interaction.client
        if not isinstance(client, PressHandler):
            log.warning("button %s pressed on a client that cannot handle it", self.custom_id)
            return
        await client.handle_press(interaction, self.verb, self.target, self.item.label or "")


def actions_view(actions: tuple[Action, ...]) -> discord.ui.View | None:
    """A persistent view with one AlertButton per action, or None when there are none."""
    usable = [a for a in actions if len(custom_id(a.verb, a.target)) <= _CUSTOM_ID_LIMIT]
    for action in actions:
        if action not in usable:
            log.warning("action %s on a target too long for a Discord button; not drawn",
                        action.verb)
    if not usable:
        return None
    view = discord.ui.View(timeout=None)
    for action in usable[:25]:
        view.add_item(AlertButton(action.verb, action.target, action.text))
    return view

"""The chat commands, each declared once: name, arguments, /help line, who may use it, how slow.

The router's routing table and /help, Telegram's command menu, Discord's slash commands and the
console's help are all built from `COMMANDS`; a command is added here and given a handler in
`bot.chat.handlers`, and every chat platform offers it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Argument:
    """One argument of a command, as the router reads it."""

    name: str  # as shown in usage: "name", "duration", "id|name"; "name..." takes several
    required: bool
    help: str  # one short phrase (Discord option description)


@dataclass(frozen=True)
class CommandSpec:
    """One chat command."""

    name: str  # "snooze"
    summary: str  # the /help line
    arguments: tuple[Argument, ...] = ()
    changes_state: bool = False  # admins only (approve, pull, ignore, snooze, rollback)
    slow: bool = False  # may take long (check, approve, pull, rollback): adapters acknowledge first


_UPDATE = Argument("id|name", True, "Update id (or container name: its newest update)")

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("status", "Engine, last pass, counts and pending updates."),
    CommandSpec(
        "check",
        "Run a check pass now (or join the one under way); new alerts are posted as usual.",
        (Argument("name...", False, "Containers to check (all when omitted)"),),
        slow=True,
    ),
    CommandSpec(
        "updates",
        "Pending updates with their ids.",
        (Argument("page", False, "Page of the list (1 when omitted)"),),
    ),
    CommandSpec(
        "approve",
        "Approve an update (by id, or a container's newest) and apply it now.",
        (_UPDATE,),
        changes_state=True,
        slow=True,
    ),
    CommandSpec(
        "pull",
        "Update a container to its newest digest now.",
        (Argument("name", True, "Container"),),
        changes_state=True,
        slow=True,
    ),
    CommandSpec(
        "ignore",
        "Ignore an update (by id, or a container's newest); a newer digest is alerted again.",
        (_UPDATE,),
        changes_state=True,
    ),
    CommandSpec(
        "snooze",
        "No update alerts for a container for a while (default 1d).",
        (
            Argument("name|id", True, "Container (or an update id: its container)"),
            Argument("duration", False, "How long, e.g. 30m, 2h, 1d (1d when omitted)"),
        ),
        changes_state=True,
    ),
    CommandSpec(
        "rollback",
        "Put a container back on the image it ran before its last update.",
        (Argument("name", True, "Container"),),
        changes_state=True,
        slow=True,
    ),
    CommandSpec(
        "history",
        "Recent actions and their outcomes (for one container when named).",
        (Argument("name", False, "Container (all when omitted)"),),
    ),
    CommandSpec("help", "Every command and what it does."),
)

_BY_NAME = {spec.name: spec for spec in COMMANDS}


def command(name: str) -> CommandSpec:
    """The command called `name` (KeyError for an unknown one)."""
    return _BY_NAME[name]


def usage(spec: CommandSpec) -> str:
    """How the command is typed: `/snooze <name|id> [duration]`."""
    words = [f"<{a.name}>" if a.required else f"[{a.name}]" for a in spec.arguments]
    return " ".join((f"/{spec.name}", *words))

"""The neutral boundary between the core and the chat adapters.

Adapters turn platform input into `Command`s carrying their `Sender`, hand them to the core's
`Dispatch`, and draw the `Reply` (text plus `Action` buttons) in their platform's idiom. The core
pushes `Alert`s through `ChatAdapter.notify`. Nothing here knows Telegram or Discord.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class AlertKind(StrEnum):
    """The alert kinds (the README lists them)."""

    UPDATE_AVAILABLE = "update_available"
    UNSUPPORTED_CHALLENGE = "unsupported_challenge"
    AUTH_FAILED = "auth_failed"
    REGISTRY_UNREACHABLE = "registry_unreachable"
    RATE_LIMITED = "rate_limited"
    UPDATE_SUCCEEDED = "update_succeeded"
    UPDATE_FAILED = "update_failed"
    RECOVERED = "recovered"
    ENGINE_UNREACHABLE = "engine_unreachable"


@dataclass(frozen=True)
class Action:
    """A button under a reply or alert: what pressing it asks the core to do."""

    verb: str  # "approve" | "ignore" | "snooze"
    target: str  # the update id (or container name)
    label: str = ""

    @property
    def text(self) -> str:
        """The button's caption."""
        return self.label or self.verb.capitalize()


@dataclass(frozen=True)
class Sender:
    """Who sent a command, as the adapter established it."""

    platform: str  # "telegram" | "discord" | "console" | "cli"
    user_id: int
    display: str
    role_ids: tuple[int, ...] = ()
    in_alert_place: bool = False  # sent from an alert chat / the alert channel's guild


@dataclass(frozen=True)
class Command:
    """A platform-neutral chat command: `/name args...` or a button press."""

    name: str
    args: tuple[str, ...]
    sender: Sender


@dataclass(frozen=True)
class Reply:
    """The core's answer: neutral text and optional buttons."""

    text: str
    actions: tuple[Action, ...] = ()
    ephemeral: bool = False  # only the sender should see it (refusals)
    refused: bool = False
    silent: bool = False  # send nothing where the platform allows it (a refused flood)


@dataclass(frozen=True)
class Field:
    """A labelled value shown in an alert (Discord draws them as embed fields)."""

    name: str
    value: str


@dataclass(frozen=True)
class Alert:
    """Something the core tells every alert place, once."""

    kind: AlertKind
    title: str
    text: str
    fields: tuple[Field, ...] = ()
    actions: tuple[Action, ...] = ()
    update_id: str | None = None
    container: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


Dispatch = Callable[[Command], Awaitable[Reply]]


class ChatAdapter(Protocol):
    """What every chat platform adapter offers the core."""

    name: str

    async def start(self, dispatch: Dispatch) -> None:
        """Connect and begin passing commands to `dispatch`; returns once running."""

    async def stop(self) -> None:
        """Disconnect; pending alerts are flushed or reported as lost."""

    async def notify(self, alert: Alert) -> None:
        """Deliver one alert to every alert place; raises only when it could not be delivered."""

"""The chat router: a neutral Command in, a Reply out, behind one authorisation check.

Routes are built from the catalogue (bot/chat/catalogue.py), each with its handler from
bot/chat/handlers.py. Refusals are answered, logged and recorded (bot/chat/access.py); usage
errors are answered with the command's usage; any other DockWardenError with a safe form of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.chat import replies
from bot.chat.access import Authorizer, Refuser
from bot.chat.catalogue import COMMANDS, CommandSpec
from bot.chat.handlers import HANDLERS, ChatContext, Handler, same_key
from bot.chat.messages import Command, Reply, Sender
from bot.chat.throttle import Cooldown, SenderLimiter
from bot.domain.model import APPROVABLE_STATES
from bot.errors import DockWardenError, UsageError
from bot.store.db import Store
from bot.usecases.ports import Resolve, RunPass
from bot.usecases.update_service import UpdateService

if TYPE_CHECKING:
    from bot.update.hosts import HostRollbacks

CHECK_COOLDOWN = 60.0  # seconds between passes that non-admins may start with /check


@dataclass(frozen=True)
class Route:
    """One command: its catalogue entry and its handler."""

    spec: CommandSpec
    handler: Handler


class CommandRouter:
    """Routes neutral commands to their handlers, after authorisation."""

    def __init__(
        self,
        store: Store,
        authorizer: Authorizer,
        run_pass: RunPass,
        updates: UpdateService,
        *,
        engine_label: str = "Docker engine",
        schedule: str = "",
        pass_running: Callable[[], bool] = lambda: False,
        check_cooldown: float = CHECK_COOLDOWN,
        rollbacks: HostRollbacks | None = None,
        resolve: Resolve | None = None,
    ) -> None:
        self.store = store
        self.authorizer = authorizer
        self.updates = updates
        self.context = ChatContext(
            store, authorizer, run_pass, updates, Cooldown(check_cooldown),
            engine_label=engine_label, schedule=schedule, pass_running=pass_running,
            rollbacks=rollbacks, resolve=resolve or same_key,
        )
        self.refusals = SenderLimiter()  # per sender: how many refusals are recorded, answered
        self.refuser = Refuser(store, self.refusals)
        self.routes: dict[str, Route] = {
            spec.name: Route(spec, HANDLERS[spec.name]) for spec in COMMANDS
        }

    @property
    def open_checks(self) -> Cooldown:
        """The non-admins' shared cool-down between /check passes."""
        return self.context.open_checks

    async def dispatch(self, command: Command) -> Reply:
        """Answer one command (the adapters' Dispatch)."""
        name = command.name.lower().lstrip("/")
        route = self.routes.get(name)
        if route is None:
            return Reply(replies.unknown_command(name), ephemeral=True)
        if not self.authorizer.allows(route.spec, command.sender):
            return self.refuser.refuse(route.spec, command)
        try:
            return await route.handler(self.context, command)
        except UsageError as exc:
            return Reply(replies.usage_error(str(exc), route.spec), ephemeral=True)
        except DockWardenError as exc:
            # The text may quote an engine or a registry: only a bounded, link-free form of it.
            return Reply(replies.failed(name, str(exc)))

    async def completions(self, kind: str, prefix: str, sender: Sender) -> list[str]:
        """Autocomplete candidates ("container" names or "update" ids) for those who may read."""
        if not self.authorizer.may_read(sender):
            return []  # names and ids are for the people the read-only commands are for
        if kind == "update":
            values = [u.id for u in self.store.updates(APPROVABLE_STATES)]
        else:
            values = self.store.containers()
        return [v for v in values if v.startswith(prefix)]
